//! The TCP transport: each role in its own process (or host), one connection per pair
//! of roles.
//!
//! Every frame travels as a length-prefixed bincode record. When two roles connect,
//! the lower role (by `Ord`) dials the higher one and both exchange a hello that names
//! both roles and carries a fingerprint of the projected program and the run's terms
//! ([`Terms`]: named values every peer must share, e.g. a scenario's options); peers
//! running another program, with other terms, or expecting another role, refuse to
//! start with an error naming the peer and what differs.
//!
//! On each connection, a reader task decodes frames into the role's queue for that
//! peer. A peer that fails says so before closing; a connection that breaks without a
//! goodbye (a crash, a killed process), a malformed frame, or a peer silent for longer
//! than its [`Liveness`] allows (a host that is gone, a partition: each side sends a
//! heartbeat on every connection once a second by default) is a dead peer: a
//! [`PeerDown`] notice goes into every queue of the role and rings the role's
//! [`Alarm`], so whatever it waits for, or whatever extension effect it is inside, it
//! ends with an error naming the peer and the step. A peer that failed in order (its
//! goodbye says why) ends the role's waits the same way, but an effect under way runs
//! to its end first.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bincode::Options;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stormchor_choreography::{Message, Program, ProjectionError, Projections, RoleId, project_all};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::effects::{Dispatch, Effects};
use crate::handler::{Handler, RunError, RunErrorKind};
use crate::interpreter::{Interpreter, RoleFailure};
use crate::layer::Layer;
use crate::runner::{RoleOutcome, RoleSetup, RunConfig, RunReport};
use crate::state::{RoleLogic, RoleState};
use crate::transport::{Alarm, Bell, Endpoint, Frame, FrameSink, Incoming, PeerDown, Transport};

/// The largest frame accepted, in bytes.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

const PROTOCOL: &str = "stormchor/4";

/// How long a goodbye may take to write before the connection is given up on.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a role that was told a peer is down may take to end on its own (the
/// effect it is in fails at once; a step that does not watch the alarm is cut off
/// after this).
const DOWN_GRACE: Duration = Duration::from_secs(2);

/// What can go wrong while setting up a role over TCP.
#[derive(Debug, Error)]
pub enum TcpError {
    /// The program does not project.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The role is not in the program, or has no address.
    #[error("{0}")]
    Setup(String),
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A peer runs another program or plays another role.
    #[error("handshake with {peer} failed: {reason}")]
    Handshake {
        /// The peer (role or address).
        peer: String,
        /// Why.
        reason: String,
    },
    /// Not every peer connected in time.
    #[error("timed out after {waited:?} waiting for {missing}")]
    ConnectTimeout {
        /// How long it waited.
        waited: Duration,
        /// The peers still missing.
        missing: String,
    },
}

/// What the wire carries: frames, and the goodbyes that end a connection.
#[derive(Debug, Serialize, Deserialize)]
enum Wire<M> {
    Frame(Frame<M>),
    Done,
    Failed(String),
    /// Nothing but "still here" (after the first three, so they keep their tags).
    Beat,
    /// The goodbye of a role whose part is over and that stays until every peer has
    /// said goodbye (its servers outlive their use): the connection stays open, so
    /// that its closing before this side's goodbye means the role died.
    Staying,
}

/// How peers tell each other they are alive: each sends a heartbeat on every
/// connection every `heartbeat`, and a peer heard nothing from (no frame, no
/// heartbeat) for `silence` is down. A connection that closes or breaks is down at
/// once, whatever these say; they matter when a host vanishes without closing
/// anything (a power cut, a partition). Every peer of a run must use the same.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_runtime::tcp::Liveness;
///
/// let default = Liveness::default();
/// assert_eq!((default.heartbeat, default.silence), (Duration::from_secs(1), Duration::from_secs(5)));
/// assert!(Liveness::new(Duration::from_millis(200), Duration::from_secs(2)).is_ok());
/// assert!(Liveness::new(Duration::from_secs(2), Duration::from_secs(2)).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// How often a role sends a heartbeat on each connection.
    pub heartbeat: Duration,
    /// How long a peer may be silent before it counts as down.
    pub silence: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            heartbeat: Duration::from_secs(1),
            silence: Duration::from_secs(5),
        }
    }
}

impl Liveness {
    /// Heartbeats every `heartbeat`, down after `silence`; `silence` must be longer
    /// than `heartbeat` (at least twice, so one late heartbeat is not a death), and
    /// both more than zero.
    pub fn new(heartbeat: Duration, silence: Duration) -> Result<Self, TcpError> {
        if heartbeat.is_zero() || silence < heartbeat.saturating_mul(2) {
            return Err(TcpError::Setup(format!(
                "liveness: a peer silent for {silence:?} counts as down, so heartbeats must \
                 come at least twice as often, and more than never (not every {heartbeat:?})"
            )));
        }
        Ok(Liveness { heartbeat, silence })
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a heartbeat every {:?}, down after {:?} of silence",
            self.heartbeat, self.silence
        )
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Hello {
    protocol: String,
    fingerprint: u64,
    from: String,
    to: String,
    terms: Vec<(String, String)>,
}

/// Named values every peer of a run must share besides the program (a scenario's
/// name and options): a peer with other terms is refused at the handshake, with the
/// terms that differ.
///
/// # Example
/// ```
/// use stormchor_runtime::tcp::Terms;
///
/// let ours = Terms::new().with("seed", 1).with("workers", 2);
/// let theirs = Terms::new().with("seed", 2).with("workers", 2);
/// assert_eq!(
///     ours.differences(&theirs, "Coordinator", "Worker(0)"),
///     vec!["seed is 1 at Coordinator, 2 at Worker(0)".to_owned()]
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terms(BTreeMap<String, String>);

impl Terms {
    /// No terms.
    pub fn new() -> Self {
        Terms::default()
    }

    /// These terms and `name = value`.
    pub fn with(mut self, name: impl Into<String>, value: impl std::fmt::Display) -> Self {
        self.0.insert(name.into(), value.to_string());
        self
    }

    /// Every term, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// One line per term that differs between these (held at `here`) and `other`
    /// (held at `there`); empty when they agree.
    pub fn differences(&self, other: &Terms, here: &str, there: &str) -> Vec<String> {
        let names: std::collections::BTreeSet<&String> =
            self.0.keys().chain(other.0.keys()).collect();
        let show = |v: Option<&String>| v.map_or_else(|| "not set".to_owned(), Clone::clone);
        names
            .into_iter()
            .filter(|name| self.0.get(*name) != other.0.get(*name))
            .map(|name| {
                format!(
                    "{name} is {} at {here}, {} at {there}",
                    show(self.0.get(name)),
                    show(other.0.get(name))
                )
            })
            .collect()
    }

    fn to_wire(&self) -> Vec<(String, String)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn from_wire(pairs: Vec<(String, String)>) -> Self {
        Terms(pairs.into_iter().collect())
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum HelloReply {
    Welcome,
    Refused(String),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(MAX_FRAME as u64)
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Decodes one frame's bytes (without the length prefix) as a wire record.
///
/// Public so that it can be fuzzed: it never panics and never allocates more than the
/// input's size allows.
pub fn decode_frame<M: DeserializeOwned>(bytes: &[u8]) -> Result<Frame<M>, String> {
    match decode::<Wire<M>>(bytes)? {
        Wire::Frame(frame) => Ok(frame),
        Wire::Done => Err("a goodbye where a frame was expected".to_owned()),
        Wire::Failed(reason) => Err(format!(
            "a failure notice where a frame was expected: {reason}"
        )),
        Wire::Beat => Err("a heartbeat where a frame was expected".to_owned()),
        Wire::Staying => Err("a goodbye where a frame was expected".to_owned()),
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)
        .map_err(|e| format!("malformed frame of {} bytes: {e}", bytes.len()))
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, String> {
    options()
        .serialize(value)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode a frame: {e}"))
}

/// Writes one record made by [`encode`] on `framed` (its length, 4 bytes big-endian,
/// then its bytes): every frame, heartbeat, goodbye and handshake record goes through
/// here.
async fn write_frame<W: AsyncWrite + Unpin>(
    framed: &mut FramedWrite<W, LengthDelimitedCodec>,
    record: Bytes,
) -> Result<(), String> {
    framed
        .send(record)
        .await
        .map_err(|e| format!("write failed: {e}"))
}

/// A fingerprint of a projected program: peers compare it before they start.
///
/// It is an FNV-1a hash of every role's local program in its text form, so it changes
/// when any message, branch, loop or extension effect of any role changes.
pub fn fingerprint<R: RoleId, M: Message>(locals: &Projections<R, M>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for local in locals.values() {
        for byte in local.to_string().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The writing half of a connection, shared by the role's sink and the heartbeat
/// task; closed once the goodbye is written.
#[derive(Debug)]
struct Writer {
    framed: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    closed: bool,
}

type SharedWriter = Arc<tokio::sync::Mutex<Writer>>;

/// A sink that writes frames to a TCP connection.
#[derive(Debug)]
pub struct TcpSink<M> {
    writer: SharedWriter,
    _message: PhantomData<fn(M)>,
}

impl Writer {
    /// Writes `record`, unless the goodbye was written.
    async fn write(&mut self, record: Bytes) -> Result<(), String> {
        if self.closed {
            return Err("the connection is closed".to_owned());
        }
        write_frame(&mut self.framed, record).await
    }
}

impl<M: Serialize + Send + 'static> FrameSink<M> for TcpSink<M> {
    async fn send(&mut self, frame: Frame<M>) -> Result<(), String> {
        let record = encode(&Wire::Frame(frame))?;
        self.writer.lock().await.write(record).await
    }

    async fn close(&mut self, outcome: Result<(), String>) {
        goodbye::<M>(&self.writer, outcome, false).await;
    }
}

/// Writes the goodbye (once, within [`GOODBYE_TIMEOUT`]) and closes the writing half.
async fn goodbye<M: Serialize>(writer: &SharedWriter, outcome: Result<(), String>, staying: bool) {
    let write = async {
        let mut writer = writer.lock().await;
        if writer.closed {
            return;
        }
        let goodbye: Wire<M> = match outcome {
            Ok(()) if staying => Wire::Staying,
            Ok(()) => Wire::Done,
            Err(reason) => Wire::Failed(reason),
        };
        if let Ok(record) = encode(&goodbye) {
            // The peer may be gone already; there is nobody left to tell then.
            let _ = writer.write(record).await;
        }
        writer.closed = true;
        // A role that stays keeps its side open until it ends (the socket closes
        // then, or when its process dies).
        if staying {
            let _ = SinkExt::<Bytes>::flush(&mut writer.framed).await;
        } else {
            let _ = SinkExt::<Bytes>::close(&mut writer.framed).await;
        }
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, write).await;
}

/// Sends a heartbeat on `writer` every `every` until the goodbye or a broken write.
async fn beat(writer: SharedWriter, every: Duration) {
    let Ok(record) = encode(&Wire::<()>::Beat) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if writer.lock().await.write(record.clone()).await.is_err() {
            return;
        }
    }
}

/// An endpoint whose sinks are TCP connections.
pub type TcpEndpoint<R, M> = Endpoint<R, M, TcpSink<M>>;

/// The handler a TCP session gives its role (and [`run_role_wrapped`] hands to its
/// `wrap`): the TCP endpoint, and effects dispatched to the registry that fail when
/// a peer is dead.
pub type TcpHandler<R, M> = Handler<TcpEndpoint<R, M>, Dispatch>;

/// A role connected to its peers over TCP, with the reader and heartbeat tasks of
/// its connections. Dropping it stops them and closes the sockets.
pub struct TcpSession<R, M> {
    /// The role's handler (its effects' alarm rings when a peer is dead).
    pub handler: TcpHandler<R, M>,
    connections: Connections<M>,
}

/// A session's connections without the handler: what says goodbye and stops the
/// tasks, also when the endpoint is inside middleware or was dropped with a part of
/// a `par`.
struct Connections<M> {
    writers: Vec<SharedWriter>,
    readers: JoinSet<()>,
    beaters: JoinSet<()>,
    alarm: Alarm,
    /// Set once this role says goodbye: a peer that stayed may close from then on.
    farewell: Arc<AtomicBool>,
    _message: PhantomData<fn(M)>,
}

impl<M: Serialize> Connections<M> {
    async fn goodbye(&mut self, outcome: Result<(), String>, staying: bool) {
        self.farewell.store(true, Ordering::SeqCst);
        for writer in &self.writers {
            goodbye::<M>(writer, outcome.clone(), staying).await;
        }
        self.beaters.abort_all();
        while self.beaters.join_next().await.is_some() {}
    }

    async fn stop_readers(&mut self) {
        self.readers.abort_all();
        while self.readers.join_next().await.is_some() {}
    }

    /// Says goodbye and, if `linger` is set, waits (at most that long) until every
    /// peer has said goodbye too or is gone, then stops the readers.
    async fn close(&mut self, outcome: Result<(), String>, linger: Option<Duration>) {
        self.goodbye(outcome, linger.is_some()).await;
        if let Some(within) = linger {
            let _ = tokio::time::timeout(within, async {
                while self.readers.join_next().await.is_some() {}
            })
            .await;
        }
        self.stop_readers().await;
    }
}

impl<R: RoleId, M: Message + Serialize> TcpSession<R, M> {
    /// Says goodbye to every peer and stops the readers.
    pub async fn close(mut self, outcome: Result<(), String>) {
        self.connections.close(outcome, None).await;
    }

    /// Says goodbye to every peer, then waits (at most `within`) until every peer has
    /// said goodbye too or is gone: what this role owns (a server) outlives every
    /// peer's use of it.
    pub async fn close_after_peers(mut self, outcome: Result<(), String>, within: Duration) {
        self.connections.close(outcome, Some(within)).await;
    }

    /// The alarm that rings when a peer is down.
    pub fn alarm(&self) -> Alarm {
        self.connections.alarm.clone()
    }
}

/// Connects `role` to every other role of `roles` over TCP.
///
/// `addresses` gives every role's listening address; this role listens on its own.
/// Roles lower in `Ord` dial higher ones. Waits at most `timeout` for all peers.
/// Roles that share a host should rather bind their listeners first
/// ([`LoopbackListeners`]) and call [`connect_on`], so no other process can take a
/// port between choosing and binding it.
pub async fn connect<R, M>(
    role: R,
    addresses: &BTreeMap<R, SocketAddr>,
    fingerprint: u64,
    timeout: Duration,
) -> Result<TcpSession<R, M>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
{
    let address = *addresses
        .get(&role)
        .ok_or_else(|| TcpError::Setup(format!("{role:?} has no address")))?;
    let listener = std::net::TcpListener::bind(address).map_err(|source| TcpError::Io {
        what: format!("{role:?} cannot listen on {address}"),
        source,
    })?;
    connect_on(role, listener, addresses, fingerprint, timeout).await
}

/// [`connect`] on a listener that is already bound (to `addresses[&role]`).
pub async fn connect_on<R, M>(
    role: R,
    listener: std::net::TcpListener,
    addresses: &BTreeMap<R, SocketAddr>,
    fingerprint: u64,
    timeout: Duration,
) -> Result<TcpSession<R, M>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
{
    connect_agreeing(
        role,
        listener,
        addresses,
        (fingerprint, &Terms::new()),
        timeout,
    )
    .await
}

/// [`connect_agreeing`] with the default [`Liveness`].
pub async fn connect_agreeing<R, M>(
    role: R,
    listener: std::net::TcpListener,
    addresses: &BTreeMap<R, SocketAddr>,
    agreement: (u64, &Terms),
    timeout: Duration,
) -> Result<TcpSession<R, M>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
{
    connect_live(
        role,
        listener,
        addresses,
        agreement,
        timeout,
        Liveness::default(),
    )
    .await
}

/// [`connect_on`], refusing peers whose [`Terms`] differ from `agreement.1` (and
/// whose program's fingerprint differs from `agreement.0`), with heartbeats and the
/// silence after which a peer is down as `liveness` says (peers must agree on it
/// too).
pub async fn connect_live<R, M>(
    role: R,
    listener: std::net::TcpListener,
    addresses: &BTreeMap<R, SocketAddr>,
    agreement: (u64, &Terms),
    timeout: Duration,
    liveness: Liveness,
) -> Result<TcpSession<R, M>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
{
    let (fingerprint, terms) = agreement;
    let terms = &terms.clone().with("liveness", liveness);
    let roles: Arc<[R]> = addresses.keys().copied().collect();
    let me = roles
        .binary_search(&role)
        .map_err(|_| TcpError::Setup(format!("{role:?} has no address")))?;
    let listen_error = |source| TcpError::Io {
        what: format!("{role:?} cannot listen on {}", addresses[&role]),
        source,
    };
    listener.set_nonblocking(true).map_err(listen_error)?;
    let listener = TcpListener::from_std(listener).map_err(listen_error)?;
    let deadline = Instant::now() + timeout;
    let mut streams: Vec<Option<TcpStream>> = (0..roles.len()).map(|_| None).collect();

    // Dial the higher roles.
    for (index, peer) in roles.iter().enumerate().skip(me + 1) {
        let stream = dial(role, *peer, addresses[peer], (fingerprint, terms), deadline).await?;
        streams[index] = Some(stream);
    }
    // Accept the lower ones.
    let mut missing: Vec<usize> = (0..me).collect();
    while !missing.is_empty() {
        let accepted = tokio::time::timeout_at(deadline.into(), listener.accept()).await;
        let (mut stream, address) = match accepted {
            Ok(Ok(pair)) => pair,
            Ok(Err(source)) => {
                return Err(TcpError::Io {
                    what: format!("{role:?} cannot accept connections"),
                    source,
                });
            }
            Err(_) => {
                return Err(TcpError::ConnectTimeout {
                    waited: timeout,
                    missing: missing
                        .iter()
                        .map(|i| format!("{:?}", roles[*i]))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        let mut hello = read_record::<Hello>(&mut stream, deadline)
            .await
            .map_err(|reason| TcpError::Handshake {
                peer: address.to_string(),
                reason,
            })?;
        let expected = missing
            .iter()
            .position(|i| format!("{:?}", roles[*i]) == hello.from);
        let differences = terms.differences(
            &Terms::from_wire(std::mem::take(&mut hello.terms)),
            &format!("{role:?}"),
            &hello.from,
        );
        let refusal = if hello.protocol != PROTOCOL {
            Some(format!("it speaks {:?}, not {PROTOCOL:?}", hello.protocol))
        } else if !differences.is_empty() {
            Some(format!(
                "the run's terms differ: {}",
                differences.join("; ")
            ))
        } else if hello.fingerprint != fingerprint {
            Some(format!(
                "it runs another program (fingerprint {:016x}, ours {fingerprint:016x})",
                hello.fingerprint
            ))
        } else if hello.to != format!("{role:?}") {
            Some(format!(
                "it expected role {} here, but this is {role:?}",
                hello.to
            ))
        } else if expected.is_none() {
            Some(format!("{} is not a role this one waits for", hello.from))
        } else {
            None
        };
        if let Some(reason) = refusal {
            let _ = write_record(&mut stream, &HelloReply::Refused(reason.clone())).await;
            return Err(TcpError::Handshake {
                peer: format!("{} at {address}", hello.from),
                reason,
            });
        }
        write_record(&mut stream, &HelloReply::Welcome)
            .await
            .map_err(|reason| TcpError::Handshake {
                peer: hello.from.clone(),
                reason,
            })?;
        if let Some(position) = expected {
            let index = missing.remove(position);
            streams[index] = Some(stream);
        }
    }

    // Queues, readers and sinks.
    let mut senders = Vec::new();
    let mut sources = Vec::new();
    for _ in 0..roles.len() {
        let (tx, rx) = mpsc::unbounded_channel::<Incoming<M>>();
        senders.push(tx);
        sources.push(Some(rx));
    }
    let mut sinks = Vec::new();
    let mut writers = Vec::new();
    let mut readers = JoinSet::new();
    let mut beaters = JoinSet::new();
    let (bell, alarm) = Alarm::new();
    let farewell = Arc::new(AtomicBool::new(false));
    for (index, stream) in streams.into_iter().enumerate() {
        let Some(stream) = stream else {
            sinks.push(None);
            sources[index] = None;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(Writer {
            framed: FramedWrite::new(write, codec()),
            closed: false,
        }));
        sinks.push(Some(TcpSink {
            writer: writer.clone(),
            _message: PhantomData,
        }));
        beaters.spawn(beat(writer.clone(), liveness.heartbeat));
        writers.push(writer);
        let peer = format!("{:?}", roles[index]);
        readers.spawn(read_frames::<M>(
            Reader {
                peer,
                index,
                queues: senders.clone(),
                bell: bell.clone(),
                liveness,
                farewell: farewell.clone(),
            },
            FramedRead::new(read, codec()),
        ));
    }
    Ok(TcpSession {
        handler: Handler::new(
            Endpoint::new(role, roles, sinks, sources),
            Dispatch::new().with_alarm(alarm.clone()),
        ),
        connections: Connections {
            writers,
            readers,
            beaters,
            alarm,
            farewell,
            _message: PhantomData,
        },
    })
}

/// Dials `peer` until it answers or the deadline passes, then shakes hands.
async fn dial<R: RoleId>(
    role: R,
    peer: R,
    address: SocketAddr,
    agreement: (u64, &Terms),
    deadline: Instant,
) -> Result<TcpStream, TcpError> {
    let (fingerprint, terms) = agreement;
    let mut stream = loop {
        match TcpStream::connect(address).await {
            Ok(stream) => break stream,
            Err(source) if Instant::now() >= deadline => {
                return Err(TcpError::Io {
                    what: format!("{role:?} cannot reach {peer:?} at {address}"),
                    source,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let hello = Hello {
        protocol: PROTOCOL.to_owned(),
        fingerprint,
        from: format!("{role:?}"),
        to: format!("{peer:?}"),
        terms: terms.to_wire(),
    };
    let handshake = |reason: String| TcpError::Handshake {
        peer: format!("{peer:?} at {address}"),
        reason,
    };
    write_record(&mut stream, &hello).await.map_err(handshake)?;
    match read_record::<HelloReply>(&mut stream, deadline)
        .await
        .map_err(handshake)?
    {
        HelloReply::Welcome => Ok(stream),
        HelloReply::Refused(reason) => Err(handshake(format!("it refused us: {reason}"))),
    }
}

async fn write_record<T: Serialize>(stream: &mut TcpStream, value: &T) -> Result<(), String> {
    write_frame(&mut FramedWrite::new(stream, codec()), encode(value)?).await
}

/// Reads exactly one length-prefixed record: nothing the peer sends after it is
/// consumed, so the connection's reader later starts at the first frame.
async fn read_record<T: DeserializeOwned>(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<T, String> {
    let read = async {
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_FRAME {
            return Ok(Err(format!(
                "a handshake record of {len} bytes is too large"
            )));
        }
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await?;
        Ok::<_, std::io::Error>(decode(&payload))
    };
    match tokio::time::timeout_at(deadline.into(), read).await {
        Ok(Ok(record)) => record,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err("the connection closed during the handshake".to_owned())
        }
        Ok(Err(e)) => Err(format!("read failed: {e}")),
        Err(_) => Err("no answer before the deadline".to_owned()),
    }
}

/// What a connection's reader needs besides the connection.
struct Reader<M> {
    /// The peer at the other end.
    peer: String,
    /// Its index among the roles.
    index: usize,
    /// Every queue of the role (the notice that the peer is down goes into each).
    queues: Vec<mpsc::UnboundedSender<Incoming<M>>>,
    bell: Bell,
    liveness: Liveness,
    /// Whether this role has said goodbye.
    farewell: Arc<AtomicBool>,
}

/// Moves frames from a connection into the role's queue for that peer; a peer that
/// fails, whose connection breaks, or that is silent for too long is down.
async fn read_frames<M: DeserializeOwned + Send + 'static>(
    reader: Reader<M>,
    mut frames: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
) {
    let Reader {
        peer,
        index,
        queues,
        bell,
        liveness,
        farewell,
    } = reader;
    let mut heard = Instant::now();
    let quiet = tokio::time::sleep(liveness.silence);
    tokio::pin!(quiet);
    // The peer said goodbye and stays (no more heartbeats): only its connection
    // closing before this role's goodbye says something now, that it died.
    let mut staying = false;
    let (reason, ring) = loop {
        tokio::select! {
            biased;
            next = frames.next() => {
                heard = Instant::now();
                if staying {
                    if farewell.load(Ordering::SeqCst) {
                        return;
                    }
                    let how = match next {
                        Some(Ok(_)) => continue,
                        Some(Err(error)) => format!("its connection broke: {error}"),
                        None => "its connection closed".to_owned(),
                    };
                    break (
                        format!(
                            "its part was over and it stayed for its peers, then {how} \
                             before this role was done (its process died?)"
                        ),
                        true,
                    );
                }
                match next {
                    Some(Ok(bytes)) => match decode::<Wire<M>>(&bytes) {
                        Ok(Wire::Frame(frame)) => {
                            if queues[index].send(Ok(frame)).is_err() {
                                return;
                            }
                        }
                        Ok(Wire::Beat) => {}
                        Ok(Wire::Done) => return,
                        // Both parts are over: nothing more to hear from it.
                        Ok(Wire::Staying) if farewell.load(Ordering::SeqCst) => return,
                        Ok(Wire::Staying) => staying = true,
                        // A peer that failed in order: waits end with its reason, but
                        // an effect under way runs on (it may be gathering evidence).
                        Ok(Wire::Failed(reason)) => break (reason, false),
                        Err(error) => break (format!("it sent a {error}"), true),
                    },
                    Some(Err(error)) => break (format!("its connection broke: {error}"), true),
                    None => break ("its connection closed without a goodbye".to_owned(), true),
                }
            }
            () = &mut quiet, if !staying => {
                let silent = heard.elapsed();
                if silent >= liveness.silence {
                    break (
                        format!(
                            "nothing heard from it for {:.1} s (peers send a heartbeat every \
                             {:?}; its host may be down or cut off)",
                            silent.as_secs_f64(),
                            liveness.heartbeat
                        ),
                        true,
                    );
                }
                quiet.as_mut().reset((heard + liveness.silence).into());
            }
        }
    };
    let down = PeerDown { peer, reason };
    for queue in &queues {
        let _ = queue.send(Err(Box::new(down.clone())));
    }
    if ring {
        bell.ring(down);
    }
}

/// Runs one role of `program` in this process, talking to its peers over TCP.
///
/// Every process runs the same program and passes the same `addresses`; each starts
/// its own role. The call connects to every peer (waiting at most `connect_timeout`),
/// runs the role under `config.deadline`, says goodbye and closes every connection.
pub async fn run_role_over_tcp<R, M, S>(
    program: &Program<R, M>,
    role: R,
    addresses: &BTreeMap<R, SocketAddr>,
    setup: RoleSetup<R, M, S>,
    config: RunConfig,
    connect_timeout: Duration,
) -> Result<RoleOutcome<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
{
    let address = *addresses
        .get(&role)
        .ok_or_else(|| TcpError::Setup(format!("{role:?} has no address")))?;
    let listener = std::net::TcpListener::bind(address).map_err(|source| TcpError::Io {
        what: format!("{role:?} cannot listen on {address}"),
        source,
    })?;
    run_role_over_tcp_on(
        program,
        role,
        listener,
        addresses,
        setup,
        config,
        connect_timeout,
    )
    .await
}

/// [`run_role_over_tcp`] on a listener that is already bound (to `addresses[&role]`).
pub async fn run_role_over_tcp_on<R, M, S>(
    program: &Program<R, M>,
    role: R,
    listener: std::net::TcpListener,
    addresses: &BTreeMap<R, SocketAddr>,
    setup: RoleSetup<R, M, S>,
    config: RunConfig,
    connect_timeout: Duration,
) -> Result<RoleOutcome<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
{
    run_role_with(
        program,
        role,
        listener,
        addresses,
        setup,
        config,
        &RoleOptions::new(connect_timeout),
    )
    .await
}

/// How a role runs over TCP besides its program: how long it waits for its peers,
/// the terms they must share, whether it outlives them, and how it tells a dead peer.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_runtime::tcp::{Liveness, RoleOptions, Terms};
///
/// let options = RoleOptions::new(Duration::from_secs(30))
///     .with_terms(Terms::new().with("seed", 1))
///     .with_liveness(Liveness::new(Duration::from_millis(500), Duration::from_secs(3)).expect("valid"))
///     .lingering();
/// assert!(options.linger);
/// assert_eq!(options.liveness.silence, Duration::from_secs(3));
/// ```
#[derive(Clone, Debug)]
pub struct RoleOptions {
    /// How long to wait for every peer to connect.
    pub connect_timeout: Duration,
    /// What every peer must share besides the program.
    pub terms: Terms,
    /// After its program, wait (within the role's deadline) until every peer has ended
    /// its own, so that what the role owns (a server) outlives every peer's use of it.
    pub linger: bool,
    /// Heartbeats, and the silence after which a peer is down.
    pub liveness: Liveness,
}

impl RoleOptions {
    /// No terms, no lingering, the default [`Liveness`].
    pub fn new(connect_timeout: Duration) -> Self {
        RoleOptions {
            connect_timeout,
            terms: Terms::new(),
            linger: false,
            liveness: Liveness::default(),
        }
    }

    /// These options, with `terms`.
    pub fn with_terms(mut self, terms: Terms) -> Self {
        self.terms = terms;
        self
    }

    /// These options, lingering until every peer ends.
    pub fn lingering(mut self) -> Self {
        self.linger = true;
        self
    }

    /// These options, with `liveness`.
    pub fn with_liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = liveness;
        self
    }
}

/// [`run_role_over_tcp_on`] with `options`: peers whose [`Terms`] differ are refused,
/// and a lingering role returns only once every peer has ended (or its deadline
/// passed).
pub async fn run_role_with<R, M, S>(
    program: &Program<R, M>,
    role: R,
    listener: std::net::TcpListener,
    addresses: &BTreeMap<R, SocketAddr>,
    setup: RoleSetup<R, M, S>,
    config: RunConfig,
    options: &RoleOptions,
) -> Result<RoleOutcome<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
{
    run_role_wrapped(
        program,
        role,
        (listener, addresses),
        setup,
        config,
        options,
        |_, handler| handler,
    )
    .await
}

/// [`run_role_with`], with the role's handler wrapped by `wrap` (middleware, as
/// [`run_all_with`](crate::run_all_with) wraps the in-memory one; `|role, handler|
/// layers.layer(role, handler)` for a [`Layers`](crate::Layers) stack). `place` is
/// the role's bound listener and every role's address.
///
/// When a peer is dead (its connection broke without a goodbye, or it was silent past
/// the [`Liveness`] limit), the extension effect the role is in fails at once with the
/// peer's notice; a step that does not end within two seconds of the notice is cut
/// off, and the role fails naming the peer.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_choreography::Program;
/// use stormchor_runtime::tcp::{run_role_wrapped, LoopbackListeners, RoleOptions};
/// use stormchor_runtime::{Layer, MetricsLayer, Metrics, RoleSetup, RunConfig};
///
/// let program: Program<&str, u64> = Program::new().role("a");
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
/// let mut listeners = LoopbackListeners::bind(["a"]).expect("a port");
/// let addresses = listeners.addresses().clone();
/// let listener = listeners.take("a").expect("a's listener");
/// let metrics = Metrics::new();
/// let outcome = rt
///     .block_on(run_role_wrapped(
///         &program,
///         "a",
///         (listener, &addresses),
///         RoleSetup::new(()),
///         RunConfig::default(),
///         &RoleOptions::new(Duration::from_secs(5)),
///         |role, handler| MetricsLayer::new(metrics.clone()).layer(role, handler),
///     ))
///     .expect("connected");
/// assert!(outcome.result.is_ok());
/// ```
pub async fn run_role_wrapped<R, M, S, T, E>(
    program: &Program<R, M>,
    role: R,
    place: (std::net::TcpListener, &BTreeMap<R, SocketAddr>),
    setup: RoleSetup<R, M, S>,
    config: RunConfig,
    options: &RoleOptions,
    wrap: impl FnOnce(R, TcpHandler<R, M>) -> Handler<T, E>,
) -> Result<RoleOutcome<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
    T: Transport<R, M>,
    E: Effects<R>,
{
    let (listener, addresses) = place;
    let (connect_timeout, terms) = (options.connect_timeout, &options.terms);
    let locals = project_all(program)?;
    let local = locals
        .get(&role)
        .ok_or_else(|| TcpError::Setup(format!("{role:?} is not a role of this program")))?;
    if let Some(missing) = locals.keys().find(|r| !addresses.contains_key(r)) {
        return Err(TcpError::Setup(format!("{missing:?} has no address")));
    }
    let started = Instant::now();
    let TcpSession {
        handler,
        mut connections,
    } = connect_live::<R, M>(
        role,
        listener,
        addresses,
        (fingerprint(&locals), terms),
        connect_timeout,
        options.liveness,
    )
    .await?;
    let RoleSetup { data, registry } = setup;
    let state = RoleState::new(role, locals.keys().copied(), data);
    let mut handler = wrap(role, handler);
    let interpreter = Interpreter::new(&state, &registry).with_trace(config.trace);
    let (result, trace) = {
        let run = interpreter.run_within(local, &mut handler, config.deadline);
        let mut alarm = connections.alarm.clone();
        let cut_off = async {
            let down = alarm.rung().await;
            tokio::time::sleep(DOWN_GRACE).await;
            down
        };
        tokio::select! {
            biased;
            ended = run => ended,
            down = cut_off => (Err(cut_off_failure(role, down)), Vec::new()),
        }
    };
    let elapsed = started.elapsed();
    let goodbye = result
        .as_ref()
        .map(|_| ())
        .map_err(|failure| failure.error.to_string());
    let linger = options
        .linger
        .then(|| config.deadline.saturating_sub(elapsed));
    connections.close(goodbye, linger).await;
    // The handler (and the endpoint's queues in it) outlives the lingering: readers
    // that still deliver a frame do not end early.
    drop(handler);
    let peer_down = result
        .is_ok()
        .then(|| connections.alarm.rung_already())
        .flatten();
    Ok(RoleOutcome {
        result,
        trace,
        elapsed,
        state: Some(state),
        peer_down,
    })
}

/// The failure of a role cut off [`DOWN_GRACE`] after it was told `down`.
#[cold]
fn cut_off_failure<R: RoleId>(role: R, down: PeerDown) -> RoleFailure {
    RoleFailure {
        role: format!("{role:?}"),
        path: Vec::new(),
        effect: format!("a step that did not end within {DOWN_GRACE:?} of the notice"),
        place: None,
        error: RunError::from(RunErrorKind::PeerFailed {
            peer: down.peer,
            reason: down.reason,
        }),
    }
}

/// Runs every role of `program` in this process, each in its own task and each
/// talking to the others over TCP on loopback: the TCP transport end to end, without
/// separate processes. The report is [`run_all`](crate::run_all)'s: a role that
/// panicked is a failed role (and its peers fail naming it).
///
/// It fails as a whole (with the first role's error, in role order) when a role could
/// not connect.
pub async fn run_all_over_tcp<R, M, S>(
    program: &Program<R, M>,
    setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
    connect_timeout: Duration,
) -> Result<RunReport<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
{
    run_all_over_tcp_with(program, setup, config, connect_timeout, |_, handler| {
        handler
    })
    .await
}

/// [`run_all_over_tcp`], with every role's handler wrapped by `wrap` (middleware),
/// as [`run_all_with`](crate::run_all_with) does in memory.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_choreography::Program;
/// use stormchor_runtime::tcp::run_all_over_tcp_with;
/// use stormchor_runtime::{Layer, MetricsLayer, Metrics, RoleSetup, RunConfig};
///
/// let program: Program<&str, u64> = Program::new().send("a", "b", 1).send("b", "a", 2);
/// let metrics = Metrics::new();
/// let wrap = { let metrics = metrics.clone(); move |role, handler| MetricsLayer::new(metrics.clone()).layer(role, handler) };
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
/// let report = rt
///     .block_on(run_all_over_tcp_with(&program, |_| RoleSetup::new(()), RunConfig::default(), Duration::from_secs(5), wrap))
///     .expect("connected");
/// assert!(report.is_success());
/// assert_eq!(metrics.snapshot()["send"].count, 2);
/// ```
pub async fn run_all_over_tcp_with<R, M, S, T, E, W>(
    program: &Program<R, M>,
    mut setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
    connect_timeout: Duration,
    wrap: W,
) -> Result<RunReport<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
    T: Transport<R, M> + 'static,
    E: Effects<R> + 'static,
    W: Fn(R, TcpHandler<R, M>) -> Handler<T, E> + Send + Sync + 'static,
{
    let roles = project_all(program)?.into_keys().collect::<Vec<_>>();
    // Every role's port is bound before any role starts, and stays bound: no other
    // process can take it in between.
    let mut listeners =
        LoopbackListeners::bind(roles.iter().copied()).map_err(|source| TcpError::Io {
            what: "cannot listen on loopback".to_owned(),
            source,
        })?;
    let addresses = Arc::new(listeners.addresses().clone());
    let program = Arc::new(program.clone());
    let wrap = Arc::new(wrap);
    let options = RoleOptions::new(connect_timeout);
    let mut tasks = JoinSet::new();
    let mut task_roles = BTreeMap::new();
    for role in roles {
        let (program, addresses, setup, config, wrap, options) = (
            program.clone(),
            addresses.clone(),
            setup(role),
            config.clone(),
            wrap.clone(),
            options.clone(),
        );
        let listener = listeners.take(role).ok_or_else(|| {
            TcpError::Setup(format!("{role:?} has no listener (a role named twice?)"))
        })?;
        let handle = tasks.spawn(async move {
            run_role_wrapped(
                &program,
                role,
                (listener, &addresses),
                setup,
                config,
                &options,
                |role, handler| wrap(role, handler),
            )
            .await
        });
        task_roles.insert(handle.id(), role);
    }
    let mut outcomes = BTreeMap::new();
    let mut errors = BTreeMap::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((id, Ok(outcome))) => {
                if let Some(role) = task_roles.get(&id) {
                    outcomes.insert(*role, outcome);
                }
            }
            Ok((id, Err(error))) => {
                if let Some(role) = task_roles.get(&id) {
                    errors.insert(*role, error);
                }
            }
            Err(error) => {
                let Some(role) = task_roles.get(&error.id()).copied() else {
                    continue;
                };
                // Its connections closed as it unwound: every peer is told.
                let reason = if error.is_panic() {
                    "it panicked"
                } else {
                    "it was cancelled"
                };
                outcomes.insert(role, RoleOutcome::lost(role, reason));
            }
        }
    }
    if let Some((_, error)) = errors.into_iter().next() {
        return Err(error);
    }
    Ok(RunReport { outcomes })
}

/// [`run_all_over_tcp`], with every role's handler wrapped in `layers` (a
/// [`Layers`](crate::Layers) stack, the same that [`run_all_layered`](crate::run_all_layered)
/// takes in memory).
pub async fn run_all_over_tcp_layered<R, M, S, L, T, E>(
    program: &Program<R, M>,
    setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
    connect_timeout: Duration,
    layers: L,
) -> Result<RunReport<R, M, S>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
    L: Layer<R, TcpHandler<R, M>, Handler = Handler<T, E>> + Send + Sync + 'static,
    T: Transport<R, M> + 'static,
    E: Effects<R> + 'static,
{
    run_all_over_tcp_with(
        program,
        setup,
        config,
        connect_timeout,
        move |role, handler| layers.layer(role, handler),
    )
    .await
}

/// Free loopback addresses, one per role, for roles in separate processes that bind
/// their own address ([`run_role_over_tcp`]).
///
/// The ports are released when this returns: another process may take one before its
/// role binds it, and that role then fails with `AddrInUse` (the caller retries with
/// new addresses). Roles in one process use [`LoopbackListeners`] instead.
pub fn loopback_addresses<R: RoleId>(
    roles: impl IntoIterator<Item = R>,
) -> std::io::Result<BTreeMap<R, SocketAddr>> {
    Ok(LoopbackListeners::bind(roles)?.addresses)
}

/// Listeners bound on loopback ports the system picks, one per role, and the
/// addresses they listen on: the ports are held from the start, so nothing else can
/// take them before the roles connect.
///
/// # Example
/// ```
/// use stormchor_runtime::tcp::LoopbackListeners;
///
/// let mut listeners = LoopbackListeners::bind(["a", "b"]).expect("bound");
/// let addresses = listeners.addresses().clone();
/// let a = listeners.take("a").expect("a's listener");
/// assert_eq!(a.local_addr().expect("address"), addresses["a"]);
/// ```
#[derive(Debug)]
pub struct LoopbackListeners<R> {
    addresses: BTreeMap<R, SocketAddr>,
    listeners: BTreeMap<R, std::net::TcpListener>,
}

impl<R: RoleId> LoopbackListeners<R> {
    /// Binds one listener per role on `127.0.0.1`, port 0.
    pub fn bind(roles: impl IntoIterator<Item = R>) -> std::io::Result<Self> {
        let mut addresses = BTreeMap::new();
        let mut listeners = BTreeMap::new();
        for role in roles {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            addresses.insert(role, listener.local_addr()?);
            listeners.insert(role, listener);
        }
        Ok(LoopbackListeners {
            addresses,
            listeners,
        })
    }

    /// Every role's address.
    pub fn addresses(&self) -> &BTreeMap<R, SocketAddr> {
        &self.addresses
    }

    /// Takes `role`'s listener, to pass to [`connect_on`] or [`run_role_over_tcp_on`].
    pub fn take(&mut self, role: R) -> Option<std::net::TcpListener> {
        self.listeners.remove(&role)
    }
}

impl<R: RoleId, M> Debug for TcpSession<R, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpSession")
            .field("endpoint", &self.handler.transport)
            .field("readers", &self.connections.readers.len())
            .finish()
    }
}

impl<R, M> TcpSession<R, M> {
    /// The number of live connection readers.
    pub fn readers(&self) -> usize {
        self.connections.readers.len()
    }
}
