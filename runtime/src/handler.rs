//! The handler side of the interpreter: how a role sends and receives.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use stormchor_choreography::{Extension, Local, LoopControl, Message, RoleId};
use thiserror::Error;

use crate::registry::{ExtValue, ExtensionError, ExtensionRegistry};
use crate::transport::Frame;

/// Why a role could not go on. Boxed, so that results stay small on the hot path;
/// [`kind`](RunError::kind) tells what happened.
///
/// # Example
/// ```
/// use stormchor_runtime::{RunError, RunErrorKind};
///
/// let error = RunError::from(RunErrorKind::NoChannel { peer: "Backup".into() });
/// assert!(matches!(error.kind(), RunErrorKind::NoChannel { .. }));
/// assert_eq!(error.to_string(), "no channel to Backup");
/// ```
#[derive(Debug, Error)]
#[error(transparent)]
pub struct RunError(Box<RunErrorKind>);

impl RunError {
    /// What happened.
    pub fn kind(&self) -> &RunErrorKind {
        &self.0
    }
}

impl From<RunErrorKind> for RunError {
    fn from(kind: RunErrorKind) -> Self {
        RunError(Box::new(kind))
    }
}

impl From<ExtensionError> for RunError {
    fn from(error: ExtensionError) -> Self {
        RunErrorKind::Extension(error).into()
    }
}

/// The kinds of [`RunError`].
#[derive(Debug, Error)]
pub enum RunErrorKind {
    /// A peer failed, crashed or disconnected.
    #[error("peer {peer} failed: {reason}")]
    PeerFailed {
        /// The peer.
        peer: String,
        /// What happened to it.
        reason: String,
    },
    /// Sending to a peer failed.
    #[error("the link to {peer} broke: {reason}")]
    Link {
        /// The peer.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// The role has no channel to this peer (or a parallel part holds it).
    #[error("no channel to {peer}")]
    NoChannel {
        /// The peer.
        peer: String,
    },
    /// A frame of another kind than the program expects arrived.
    #[error("expected {expected} from {from}, but received {received}")]
    UnexpectedFrame {
        /// The sender.
        from: String,
        /// What the program expects.
        expected: String,
        /// What arrived.
        received: String,
    },
    /// A branch label that the choice does not have arrived.
    #[error("{from} sent branch #{index}, but the choice has {count} branches")]
    UnknownLabel {
        /// The sender.
        from: String,
        /// The index received.
        index: u32,
        /// How many branches there are.
        count: usize,
    },
    /// The chooser's logic picked a branch that does not exist.
    #[error("the role logic chose branch #{index}, but the choice has {count} branches")]
    BadChoice {
        /// The index chosen.
        index: usize,
        /// How many branches there are.
        count: usize,
    },
    /// An extension effect failed.
    #[error(transparent)]
    Extension(ExtensionError),
    /// A deadline passed.
    #[error("timed out after {limit:?}")]
    TimedOut {
        /// The deadline that passed.
        limit: Duration,
    },
    /// A finish of an effect the role has not started (a local program not made by
    /// projection).
    #[error("no effect started as `{handle}` runs at this role")]
    NotStarted {
        /// The handle.
        handle: String,
    },
    /// A fault injected on purpose.
    #[error("injected fault: {0}")]
    Injected(String),
}

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
/// independent handlers for the parts of a `par`.
///
/// [`Endpoint`](crate::Endpoint) implements it over any transport. Middleware
/// implements it by wrapping another handler, so layers stack in any order.
///
/// The provided methods `send`, `recv`, `choose`, `offer`, `decide`, `follow`,
/// `order`, `await_order` and `extension` are what the interpreter calls; they are built on the two required
/// frame methods, and a wrapper may override any of them.
pub trait ChoreoHandler<R: RoleId, M: Message>: Send + Sized {
    /// The role this handler runs.
    fn role(&self) -> R;

    /// Sends a frame to `to`.
    fn send_frame(
        &mut self,
        to: R,
        frame: Frame<M>,
    ) -> impl Future<Output = Result<(), RunError>> + Send;

    /// Receives the next frame from `from`.
    fn recv_frame(&mut self, from: R) -> impl Future<Output = Result<Frame<M>, RunError>> + Send;

    /// Hands the channels of each part to a handler of its own, for parts that run
    /// concurrently; the projection guarantees that parts use disjoint channels.
    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError>;

    /// Takes back the channels of handlers made by `split`.
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

    /// Carries out an extension effect with the registry; returns the value to keep.
    fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        registry: &'a ExtensionRegistry<E>,
        env: &'a E,
        effect: &'a Extension,
    ) -> impl Future<Output = Result<Option<ExtValue>, RunError>> + Send + 'a {
        let role = self.role();
        async move { Ok(registry.handle(env, effect, &role).await?) }
    }

    /// Starts an extension effect that runs in the background (`ext start`) while the
    /// role goes on: returns how to run it, which the role then polls alongside its
    /// program. The run must not borrow the handler (the role keeps sending and
    /// receiving meanwhile), so a layer wraps the inner handler's run with what it
    /// needs of its own state cloned in ([`StartedRun::map`]); it may call the run
    /// again to retry it.
    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        registry: &'s ExtensionRegistry<E>,
        env: &'s E,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let role = self.role();
        let effect = effect.clone();
        StartedRun::new(move || {
            let effect = effect.clone();
            Box::pin(async move { Ok(registry.handle(env, &effect, &role).await?) })
        })
    }

    /// The finish of a started effect (`ext finish`): `outcome` is what its run ended
    /// with; returns what the role goes on with (a layer may record it, or fail it).
    fn finish_extension<'a>(
        &'a mut self,
        effect: &'a Extension,
        outcome: Result<Option<ExtValue>, RunError>,
    ) -> impl Future<Output = Result<Option<ExtValue>, RunError>> + Send + 'a {
        let _ = effect;
        std::future::ready(outcome)
    }
}

/// The outcome of one run of an extension effect.
pub type ExtOutcome = Result<Option<ExtValue>, RunError>;

/// How to run a started extension effect ([`ChoreoHandler::start_extension`]): a
/// function that makes one run of it (one attempt), owning or sharing everything it
/// uses, so that the role's handler stays free while the effect runs.
///
/// # Example
/// ```
/// use stormchor_runtime::StartedRun;
///
/// let run = StartedRun::new(|| Box::pin(async { Ok(None) }));
/// // A layer wraps it: here, it fails every run.
/// let failing = run.map(|attempt| {
///     Box::pin(async move {
///         attempt.await?;
///         Err(stormchor_runtime::RunErrorKind::Injected("no".into()).into())
///     })
/// });
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// assert!(rt.block_on(failing.run()).is_err());
/// ```
#[derive(Clone)]
pub struct StartedRun<'s>(Arc<dyn Fn() -> BoxFuture<'s, ExtOutcome> + Send + Sync + 's>);

impl<'s> StartedRun<'s> {
    /// The run made by `attempt`.
    pub fn new(attempt: impl Fn() -> BoxFuture<'s, ExtOutcome> + Send + Sync + 's) -> Self {
        StartedRun(Arc::new(attempt))
    }

    /// One run (attempt) of the effect.
    pub fn run(&self) -> BoxFuture<'s, ExtOutcome> {
        (self.0)()
    }

    /// This run with `layer` around every attempt.
    pub fn map(
        self,
        layer: impl Fn(BoxFuture<'s, ExtOutcome>) -> BoxFuture<'s, ExtOutcome> + Send + Sync + 's,
    ) -> Self {
        StartedRun::new(move || layer(self.run()))
    }
}

impl Debug for StartedRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartedRun")
    }
}

fn unexpected<R: Debug, M: Debug>(from: R, expected: &str, frame: &Frame<M>) -> RunError {
    RunErrorKind::UnexpectedFrame {
        from: format!("{from:?}"),
        expected: expected.to_owned(),
        received: frame.describe(),
    }
    .into()
}
