//! Transports: how frames travel between roles.
//!
//! Every role owns an [`Endpoint`]: for each peer, a sink it sends frames into and a
//! source it reads frames from. Sources are always in-process queues; a transport
//! decides how frames reach them. The in-memory transport connects sinks straight to
//! the peers' queues; the TCP transport writes frames to a socket and a reader task
//! on the other side feeds the queue. When a peer fails or its connection breaks,
//! a [`PeerDown`] notice is pushed into every queue of the roles that could wait on
//! it, so a waiting role ends with an error naming the peer instead of hanging. When
//! the peer is dead (a panic, a crash, a broken or silent connection) the role's
//! [`Alarm`] rings too, so a role inside an extension effect has that effect fail with
//! the notice at once (both transports; the alarm is its handler's
//! [`Dispatch`]'s).
//!
//! [`Transport`] is the transport side of a role's handler, which [`Endpoint`]
//! implements and transport middleware wraps.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stormchor_choreography::{Local, LoopControl, Message, RoleId};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::effects::Dispatch;
use crate::handler::{Handler, RunError, RunErrorKind};

/// What travels on a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame<M> {
    /// A message value.
    Message(M),
    /// The index of the branch a choice took.
    Label(u32),
    /// A loop decision: `true` to run another round.
    Loop(bool),
    /// An order frame: the sender's extension effects before this point have finished,
    /// so the receiver's next ordered effect may start (docs/choreography.md, effect
    /// order). Projection inserts them; they carry nothing.
    Order,
}

impl<M> Frame<M> {
    /// A short description for error messages.
    pub fn describe(&self) -> String
    where
        M: std::fmt::Debug,
    {
        match self {
            Frame::Message(msg) => format!("message {msg:?}"),
            Frame::Label(index) => format!("branch label #{index}"),
            Frame::Loop(go) => format!(
                "loop decision {}",
                if *go { "\"go on\"" } else { "\"stop\"" }
            ),
            Frame::Order => "order frame".to_owned(),
        }
    }
}

/// How long an effect that failed on a role with an [`Alarm`] waits for the alarm
/// before its failure is its own: a peer that died within this is the cause.
pub(crate) const CAUSE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Notice that a peer failed or its connection broke.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{peer} failed: {reason}")]
pub struct PeerDown {
    /// The peer.
    pub peer: String,
    /// Why.
    pub reason: String,
}

/// What a role's queue holds: a frame, or the notice that a peer is down (boxed, to
/// keep the frames that make up nearly all the traffic small).
pub type Incoming<M> = Result<Frame<M>, Box<PeerDown>>;

/// The channels a part of a role's program uses: the peers it sends to and the peers
/// it receives from (messages, labels and loop decisions alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channels<R> {
    /// Peers this part sends to.
    pub sends_to: Vec<R>,
    /// Peers this part receives from.
    pub receives_from: Vec<R>,
}

impl<R: RoleId> Channels<R> {
    /// The channels `effects` use, nested effects included.
    pub fn of<M>(effects: &[Local<R, M>]) -> Self {
        let mut channels = Channels {
            sends_to: Vec::new(),
            receives_from: Vec::new(),
        };
        let mut stack = vec![effects];
        while let Some(seq) = stack.pop() {
            for effect in seq {
                match effect {
                    Local::Send { to, .. } => channels.sends_to.push(*to),
                    Local::Recv { from, .. } => channels.receives_from.push(*from),
                    Local::Select { tell, branches, .. } => {
                        channels.sends_to.extend(tell);
                        stack.extend(branches.iter().map(|(_, b)| b.as_slice()));
                    }
                    Local::Branch {
                        from,
                        tell,
                        branches,
                        ..
                    } => {
                        channels.receives_from.push(*from);
                        channels.sends_to.extend(tell);
                        stack.extend(branches.iter().map(|(_, b)| b.as_slice()));
                    }
                    Local::Loop { control, body, .. } => {
                        match control {
                            LoopControl::Decide { tell } => channels.sends_to.extend(tell),
                            LoopControl::Follow { decider } => {
                                channels.receives_from.push(*decider)
                            }
                            LoopControl::Count(_) => {}
                        }
                        stack.push(body);
                    }
                    Local::Par { parts } => stack.extend(parts.iter().map(Vec::as_slice)),
                    Local::Timeout { body, .. } => stack.push(body),
                    Local::OrderSend { to, .. } => channels.sends_to.push(*to),
                    Local::OrderRecv { from, .. } => channels.receives_from.push(*from),
                    Local::Ext(_) => {}
                }
            }
        }
        for list in [&mut channels.sends_to, &mut channels.receives_from] {
            list.sort_unstable();
            list.dedup();
        }
        channels
    }
}

/// The transport side of a running role: send and receive frames, and split into
/// independent transports for the parts of a `par`.
///
/// [`Endpoint`] implements it over any [`FrameSink`]. Middleware implements it by
/// wrapping another transport, so layers stack in any order; the effect side of the
/// role ([`Effects`](crate::Effects)) is not its concern.
///
/// The provided methods `send`, `recv`, `choose`, `offer`, `decide`, `follow`, `order`
/// and `await_order` are what the interpreter calls; they are built on the two frame
/// methods, and an implementation may override any of them (a wrapper that does
/// should call the wrapped transport's).
///
/// # Example
/// A layer that only changes the transport (here: counts the frames sent):
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use stormchor_choreography::{Message, RoleId};
/// use stormchor_runtime::{memory_mesh, Channels, Frame, RunError, Transport};
///
/// struct CountSends<T> { inner: T, sent: Arc<AtomicU64> }
///
/// impl<R: RoleId, M: Message, T: Transport<R, M>> Transport<R, M> for CountSends<T> {
///     fn role(&self) -> R { self.inner.role() }
///     async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
///         self.sent.fetch_add(1, Ordering::Relaxed);
///         self.inner.send_frame(to, frame).await
///     }
///     async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
///         self.inner.recv_frame(from).await
///     }
///     fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
///         let sent = &self.sent;
///         Ok(self.inner.split(parts)?.into_iter().map(|inner| CountSends { inner, sent: sent.clone() }).collect())
///     }
///     fn join(&mut self, parts: Vec<Self>) {
///         self.inner.join(parts.into_iter().map(|part| part.inner).collect());
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let sent = Arc::new(AtomicU64::new(0));
///     let mut b = handlers.pop().expect("b");
///     let mut a = handlers.pop().expect("a").map_transport(|inner| CountSends { inner, sent: sent.clone() });
///     a.transport.send("b", 1).await.expect("sent");
///     a.transport.choose("b", 0).await.expect("sent");
///     assert_eq!(b.transport.recv("a").await.expect("received"), 1);
///     assert_eq!(sent.load(Ordering::Relaxed), 2);
/// });
/// ```
pub trait Transport<R: RoleId, M: Message>: Send + Sized {
    /// The role this transport runs.
    fn role(&self) -> R;

    /// Sends a frame to `to`.
    fn send_frame(
        &mut self,
        to: R,
        frame: Frame<M>,
    ) -> impl Future<Output = Result<(), RunError>> + Send;

    /// Receives the next frame from `from`.
    fn recv_frame(&mut self, from: R) -> impl Future<Output = Result<Frame<M>, RunError>> + Send;

    /// Hands the channels of each part to a transport of its own, for parts that run
    /// concurrently; the projection guarantees that parts use disjoint channels.
    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError>;

    /// Takes back the channels of transports made by `split`.
    fn join(&mut self, parts: Vec<Self>);

    /// Sends a message value.
    fn send(&mut self, to: R, msg: M) -> impl Future<Output = Result<(), RunError>> + Send {
        self.send_frame(to, Frame::Message(msg))
    }

    /// Receives a message value.
    fn recv(&mut self, from: R) -> impl Future<Output = Result<M, RunError>> + Send {
        async move {
            match self.recv_frame(from).await? {
                Frame::Message(msg) => Ok(msg),
                other => Err(unexpected(from, "a message", &other)),
            }
        }
    }

    /// Tells `to` which branch this role took.
    fn choose(&mut self, to: R, branch: u32) -> impl Future<Output = Result<(), RunError>> + Send {
        self.send_frame(to, Frame::Label(branch))
    }

    /// Learns from `from` which branch to take.
    fn offer(&mut self, from: R) -> impl Future<Output = Result<u32, RunError>> + Send {
        async move {
            match self.recv_frame(from).await? {
                Frame::Label(branch) => Ok(branch),
                other => Err(unexpected(from, "a branch label", &other)),
            }
        }
    }

    /// Tells `to` whether the loop goes on.
    fn decide(&mut self, to: R, go_on: bool) -> impl Future<Output = Result<(), RunError>> + Send {
        self.send_frame(to, Frame::Loop(go_on))
    }

    /// Learns from `from` whether the loop goes on.
    fn follow(&mut self, from: R) -> impl Future<Output = Result<bool, RunError>> + Send {
        async move {
            match self.recv_frame(from).await? {
                Frame::Loop(go_on) => Ok(go_on),
                other => Err(unexpected(from, "a loop decision", &other)),
            }
        }
    }

    /// Sends `to` an order frame: this role's effects so far have finished.
    fn order(&mut self, to: R) -> impl Future<Output = Result<(), RunError>> + Send {
        self.send_frame(to, Frame::Order)
    }

    /// Waits for an order frame from `from`.
    fn await_order(&mut self, from: R) -> impl Future<Output = Result<(), RunError>> + Send {
        async move {
            match self.recv_frame(from).await? {
                Frame::Order => Ok(()),
                other => Err(unexpected(from, "an order frame", &other)),
            }
        }
    }
}

/// The error for a frame of another kind than the program expects.
#[cold]
fn unexpected<R: Debug, M: Debug>(from: R, expected: &str, frame: &Frame<M>) -> RunError {
    RunErrorKind::UnexpectedFrame {
        from: format!("{from:?}"),
        expected: expected.to_owned(),
        received: frame.describe(),
    }
    .into()
}

/// The sending half of a channel to one peer.
pub trait FrameSink<M>: Send + 'static {
    /// Sends a frame; fails when the peer is gone.
    fn send(&mut self, frame: Frame<M>) -> impl Future<Output = Result<(), String>> + Send;

    /// Says goodbye: the role is done (`Ok`) or failed (`Err` with the reason). After
    /// a goodbye the peer no longer expects frames from this sink.
    fn close(&mut self, outcome: Result<(), String>) -> impl Future<Output = ()> + Send {
        let _ = outcome;
        async {}
    }
}

/// A sink into an in-process queue.
#[derive(Debug)]
pub struct MemorySink<M>(mpsc::UnboundedSender<Incoming<M>>);

impl<M: Send + 'static> FrameSink<M> for MemorySink<M> {
    async fn send(&mut self, frame: Frame<M>) -> Result<(), String> {
        self.0
            .send(Ok(frame))
            .map_err(|_| "its queue is closed".to_owned())
    }
}

/// A role's channels to its peers, by peer: the bottom of the transport side of a
/// handler. Implements [`Transport`].
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, Transport};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut handlers, _notifier) = memory_mesh::<&str, u32>(&["a", "b"]);
///     let mut b = handlers.pop().expect("b").transport;
///     let mut a = handlers.pop().expect("a").transport;
///     a.send("b", 7).await.expect("sent");
///     assert_eq!(b.recv("a").await.expect("received"), 7);
/// });
/// ```
pub struct Endpoint<R, M, T> {
    role: R,
    roles: Arc<[R]>,
    sinks: Vec<Option<T>>,
    sources: Vec<Option<mpsc::UnboundedReceiver<Incoming<M>>>>,
}

/// Rings when a peer of a role is down, so that a role inside a long extension
/// effect learns it at once rather than at its next send or receive: a
/// [`Dispatch`] with an alarm ([`Dispatch::with_alarm`]) fails the effect it is
/// running with the peer's [`PeerDown`] notice.
///
/// # Example
/// ```
/// use stormchor_runtime::{Alarm, PeerDown};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (bell, mut alarm) = Alarm::new();
///     assert!(alarm.rung_already().is_none());
///     bell.ring(PeerDown { peer: "Backup".into(), reason: "its process died".into() });
///     bell.ring(PeerDown { peer: "Primary".into(), reason: "later".into() });
///     assert_eq!(alarm.rung().await.peer, "Backup", "the first notice stays");
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Alarm(tokio::sync::watch::Receiver<Option<PeerDown>>);

/// What rings an [`Alarm`] (every clone of it).
#[derive(Clone, Debug)]
pub struct Bell(Arc<tokio::sync::watch::Sender<Option<PeerDown>>>);

impl Alarm {
    /// A bell and the alarm it rings.
    pub fn new() -> (Bell, Alarm) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (Bell(Arc::new(tx)), Alarm(rx))
    }

    /// The notice, if the alarm has rung.
    pub fn rung_already(&self) -> Option<PeerDown> {
        self.0.borrow().clone()
    }

    /// Waits until the alarm rings (forever, if its bell is dropped unrung); returns
    /// the first notice.
    pub async fn rung(&mut self) -> PeerDown {
        let held = match self.0.wait_for(Option::is_some).await {
            Ok(held) => held.clone(),
            Err(_) => None,
        };
        match held {
            Some(down) => down,
            None => std::future::pending().await,
        }
    }
}

impl Bell {
    /// Rings the alarm with `down`, unless it rang already (the first notice stays).
    pub fn ring(&self, down: PeerDown) {
        self.0.send_if_modified(|held| {
            if held.is_none() {
                *held = Some(down);
                true
            } else {
                false
            }
        });
    }
}

impl<R: RoleId, M, T> std::fmt::Debug for Endpoint<R, M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<R: RoleId, M: Message, T: FrameSink<M>> Endpoint<R, M, T> {
    /// An endpoint of `role` among the sorted `roles`, with one optional sink and source
    /// per role (indexed like `roles`).
    pub fn new(
        role: R,
        roles: Arc<[R]>,
        sinks: Vec<Option<T>>,
        sources: Vec<Option<mpsc::UnboundedReceiver<Incoming<M>>>>,
    ) -> Self {
        Endpoint {
            role,
            roles,
            sinks,
            sources,
        }
    }

    fn sink(&mut self, to: R) -> Result<&mut T, RunError> {
        let index = self.index(to)?;
        self.sinks
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or_else(|| {
                RunErrorKind::NoChannel {
                    peer: format!("{to:?}"),
                }
                .into()
            })
    }

    fn source(&mut self, from: R) -> Result<&mut mpsc::UnboundedReceiver<Incoming<M>>, RunError> {
        let index = self.index(from)?;
        self.sources
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or_else(|| {
                RunErrorKind::NoChannel {
                    peer: format!("{from:?}"),
                }
                .into()
            })
    }

    /// Says goodbye to every peer: the role is done (`Ok`) or failed (`Err`).
    pub async fn close(&mut self, outcome: Result<(), String>) {
        for sink in self.sinks.iter_mut().flatten() {
            sink.close(outcome.clone()).await;
        }
    }

    fn index(&self, peer: R) -> Result<usize, RunError> {
        self.roles.binary_search(&peer).map_err(|_| {
            RunError::from(RunErrorKind::NoChannel {
                peer: format!("{peer:?}"),
            })
        })
    }
}

impl<R: RoleId, M: Message, T: FrameSink<M>> Transport<R, M> for Endpoint<R, M, T> {
    fn role(&self) -> R {
        self.role
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let sink = self.sink(to)?;
        sink.send(frame).await.map_err(|reason| {
            RunError::from(RunErrorKind::Link {
                peer: format!("{to:?}"),
                reason,
            })
        })
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        let source = self.source(from)?;
        incoming(from, source.recv().await)
    }

    // The message paths in one step each, without going through the frame methods.
    async fn send(&mut self, to: R, msg: M) -> Result<(), RunError> {
        let sink = self.sink(to)?;
        match sink.send(Frame::Message(msg)).await {
            Ok(()) => Ok(()),
            Err(reason) => Err(RunErrorKind::Link {
                peer: format!("{to:?}"),
                reason,
            }
            .into()),
        }
    }

    async fn recv(&mut self, from: R) -> Result<M, RunError> {
        let source = self.source(from)?;
        match source.recv().await {
            Some(Ok(Frame::Message(msg))) => Ok(msg),
            other => Err(not_a_message(from, other)),
        }
    }

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        let mut split = Vec::with_capacity(parts.len());
        for part in parts {
            let mut sinks: Vec<Option<T>> = (0..self.roles.len()).map(|_| None).collect();
            let mut sources: Vec<Option<_>> = (0..self.roles.len()).map(|_| None).collect();
            for peer in &part.sends_to {
                let index = self.index(*peer)?;
                sinks[index] = self.sinks[index].take();
            }
            for peer in &part.receives_from {
                let index = self.index(*peer)?;
                sources[index] = self.sources[index].take();
            }
            split.push(Endpoint {
                role: self.role,
                roles: self.roles.clone(),
                sinks,
                sources,
            });
        }
        Ok(split)
    }

    fn join(&mut self, parts: Vec<Self>) {
        for part in parts {
            for (slot, sink) in self.sinks.iter_mut().zip(part.sinks) {
                if sink.is_some() {
                    *slot = sink;
                }
            }
            for (slot, source) in self.sources.iter_mut().zip(part.sources) {
                if source.is_some() {
                    *slot = source;
                }
            }
        }
    }
}

/// An endpoint whose sinks are in-process queues.
pub type MemoryEndpoint<R, M> = Endpoint<R, M, MemorySink<M>>;

/// The handler [`memory_mesh`] gives a role (and [`run_all_with`](crate::run_all_with)
/// hands to its `wrap`): an in-memory endpoint, and effects dispatched to the
/// registry that fail when the role's alarm rings.
pub type MemoryHandler<R, M> = Handler<MemoryEndpoint<R, M>, Dispatch>;

/// The error for a queue item that is not the message a role waits for.
#[cold]
fn not_a_message<R: RoleId, M: Debug>(from: R, item: Option<Incoming<M>>) -> RunError {
    match incoming(from, item) {
        Ok(frame) => RunErrorKind::UnexpectedFrame {
            from: format!("{from:?}"),
            expected: "a message".to_owned(),
            received: frame.describe(),
        }
        .into(),
        Err(error) => error,
    }
}

/// What a received queue item means for the role waiting on `from`.
fn incoming<R: RoleId, M>(from: R, item: Option<Incoming<M>>) -> Result<Frame<M>, RunError> {
    match item {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(down)) => Err(RunErrorKind::PeerFailed {
            peer: down.peer,
            reason: down.reason,
        }
        .into()),
        None => Err(RunErrorKind::PeerFailed {
            peer: format!("{from:?}"),
            reason: "it closed its channel".to_owned(),
        }
        .into()),
    }
}

/// Pushes [`PeerDown`] notices into the queues of every role, and rings their
/// alarms.
#[derive(Clone, Debug)]
pub struct Notifier<M> {
    /// `queues[r]`: senders into every queue of role `r`.
    queues: Arc<[Vec<mpsc::UnboundedSender<Incoming<M>>>]>,
    /// `bells[r]`: the bell of role `r`'s alarm.
    bells: Arc<[Bell]>,
}

impl<M> Notifier<M> {
    /// Tells every role but `except` (an index) that `down.peer` failed: whatever
    /// they wait for ends with it (an effect under way runs to its end first).
    pub fn notify_all(&self, except: Option<usize>, down: &PeerDown) {
        for (role, queues) in self.queues.iter().enumerate() {
            if Some(role) == except {
                continue;
            }
            for queue in queues {
                // A closed queue belongs to a role that has finished: nothing to tell.
                let _ = queue.send(Err(Box::new(down.clone())));
            }
        }
    }

    /// [`notify_all`](Notifier::notify_all) for a peer that died (it panicked): every
    /// other role's alarm rings too, so an effect under way fails at once.
    pub fn notify_dead(&self, except: Option<usize>, down: &PeerDown) {
        self.notify_all(except, down);
        for (role, bell) in self.bells.iter().enumerate() {
            if Some(role) != except {
                bell.ring(down.clone());
            }
        }
    }
}

/// In-memory handlers for `roles` (sorted and deduplicated first), their endpoints
/// connected by unbounded queues, in role order; and a [`Notifier`] into all their
/// queues, which also rings their alarms.
pub fn memory_mesh<R: RoleId, M: Message>(roles: &[R]) -> (Vec<MemoryHandler<R, M>>, Notifier<M>) {
    let mut sorted = roles.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let roles: Arc<[R]> = sorted.into();
    let n = roles.len();
    // senders[to][from], receivers[to][from]
    let mut senders: Vec<Vec<Option<mpsc::UnboundedSender<Incoming<M>>>>> = Vec::with_capacity(n);
    let mut receivers: Vec<Vec<Option<mpsc::UnboundedReceiver<Incoming<M>>>>> =
        Vec::with_capacity(n);
    let mut notify: Vec<Vec<mpsc::UnboundedSender<Incoming<M>>>> = Vec::with_capacity(n);
    for to in 0..n {
        let (mut tx_row, mut rx_row, mut notify_row) = (Vec::new(), Vec::new(), Vec::new());
        for from in 0..n {
            if from == to {
                tx_row.push(None);
                rx_row.push(None);
            } else {
                let (tx, rx) = mpsc::unbounded_channel();
                notify_row.push(tx.clone());
                tx_row.push(Some(tx));
                rx_row.push(Some(rx));
            }
        }
        senders.push(tx_row);
        receivers.push(rx_row);
        notify.push(notify_row);
    }
    let mut bells = Vec::with_capacity(n);
    let endpoints = (0..n)
        .map(|me| {
            let sinks = (0..n)
                .map(|to| senders[to][me].take().map(MemorySink))
                .collect();
            let sources = std::mem::take(&mut receivers[me]);
            let (bell, alarm) = Alarm::new();
            bells.push(bell);
            Handler::new(
                Endpoint::new(roles[me], roles.clone(), sinks, sources),
                Dispatch::new().with_alarm(alarm),
            )
        })
        .collect();
    (
        endpoints,
        Notifier {
            queues: notify.into(),
            bells: bells.into(),
        },
    )
}
