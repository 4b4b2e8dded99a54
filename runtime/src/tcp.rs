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
//! goodbye (a crash, a killed process), or a malformed frame, puts a
//! [`PeerDown`] notice into every queue of the role, so whatever it
//! waits for, it ends with an error naming the peer.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bincode::Options;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stormchor_choreography::{Message, Program, ProjectionError, Projections, RoleId, project_all};
use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::interpreter::Interpreter;
use crate::runner::{RoleOutcome, RoleSetup, RunConfig};
use crate::state::{RoleLogic, RoleState};
use crate::transport::{Endpoint, Frame, FrameSink, Incoming, PeerDown};

/// The largest frame accepted, in bytes.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

const PROTOCOL: &str = "stormchor/2";

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

/// A sink that writes frames to a TCP connection.
#[derive(Debug)]
pub struct TcpSink<M> {
    writer: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    _message: PhantomData<fn(M)>,
}

impl<M: Serialize + Send + 'static> FrameSink<M> for TcpSink<M> {
    async fn send(&mut self, frame: Frame<M>) -> Result<(), String> {
        let bytes = encode(&Wire::Frame(frame))?;
        self.writer
            .send(bytes)
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    async fn close(&mut self, outcome: Result<(), String>) {
        let goodbye: Wire<M> = match outcome {
            Ok(()) => Wire::Done,
            Err(reason) => Wire::Failed(reason),
        };
        if let Ok(bytes) = encode(&goodbye) {
            // The peer may be gone already; there is nobody left to tell then.
            let _ = self.writer.send(bytes).await;
        }
        let _ = SinkExt::<Bytes>::close(&mut self.writer).await;
    }
}

/// An endpoint whose sinks are TCP connections.
pub type TcpEndpoint<R, M> = Endpoint<R, M, TcpSink<M>>;

/// A role connected to its peers over TCP, with the reader tasks of its connections.
/// Dropping it stops the readers and closes the sockets.
pub struct TcpSession<R, M> {
    /// The role's endpoint.
    pub endpoint: TcpEndpoint<R, M>,
    readers: JoinSet<()>,
}

impl<R: RoleId, M: Message + Serialize> TcpSession<R, M> {
    /// Says goodbye to every peer and stops the readers.
    pub async fn close(mut self, outcome: Result<(), String>) {
        self.endpoint.close(outcome).await;
        self.readers.abort_all();
        while self.readers.join_next().await.is_some() {}
    }

    /// Says goodbye to every peer, then waits (at most `within`) until every peer has
    /// said goodbye too or is gone: what this role owns (a server) outlives every
    /// peer's use of it.
    pub async fn close_after_peers(mut self, outcome: Result<(), String>, within: Duration) {
        self.endpoint.close(outcome).await;
        let _ = tokio::time::timeout(within, async {
            while self.readers.join_next().await.is_some() {}
        })
        .await;
        self.readers.abort_all();
        while self.readers.join_next().await.is_some() {}
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

/// [`connect_on`], refusing peers whose [`Terms`] differ from `agreement.1` (and
/// whose program's fingerprint differs from `agreement.0`).
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
    let (fingerprint, terms) = agreement;
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
    let mut readers = JoinSet::new();
    for (index, stream) in streams.into_iter().enumerate() {
        let Some(stream) = stream else {
            sinks.push(None);
            sources[index] = None;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        sinks.push(Some(TcpSink {
            writer: FramedWrite::new(write, codec()),
            _message: PhantomData,
        }));
        let peer = format!("{:?}", roles[index]);
        readers.spawn(read_frames::<M>(
            peer,
            FramedRead::new(read, codec()),
            index,
            senders.clone(),
        ));
    }
    Ok(TcpSession {
        endpoint: Endpoint::new(role, roles, sinks, sources),
        readers,
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
    let bytes = encode(value)?;
    let mut framed = FramedWrite::new(stream, codec());
    framed
        .send(bytes)
        .await
        .map_err(|e| format!("write failed: {e}"))
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

/// Moves frames from a connection into the role's queue for that peer.
async fn read_frames<M: DeserializeOwned + Send + 'static>(
    peer: String,
    mut reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    index: usize,
    queues: Vec<mpsc::UnboundedSender<Incoming<M>>>,
) {
    let reason = loop {
        match reader.next().await {
            Some(Ok(bytes)) => match decode::<Wire<M>>(&bytes) {
                Ok(Wire::Frame(frame)) => {
                    if queues[index].send(Ok(frame)).is_err() {
                        return;
                    }
                }
                Ok(Wire::Done) => return,
                Ok(Wire::Failed(reason)) => break reason,
                Err(error) => break format!("it sent a {error}"),
            },
            Some(Err(error)) => break format!("its connection broke: {error}"),
            None => break "its connection closed without a goodbye".to_owned(),
        }
    };
    let down = PeerDown { peer, reason };
    for queue in &queues {
        let _ = queue.send(Err(Box::new(down.clone())));
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
/// the terms they must share, and whether it outlives them.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_runtime::tcp::{RoleOptions, Terms};
///
/// let options = RoleOptions::new(Duration::from_secs(30))
///     .with_terms(Terms::new().with("seed", 1))
///     .lingering();
/// assert!(options.linger);
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
}

impl RoleOptions {
    /// No terms, no lingering.
    pub fn new(connect_timeout: Duration) -> Self {
        RoleOptions {
            connect_timeout,
            terms: Terms::new(),
            linger: false,
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
    let (connect_timeout, terms) = (options.connect_timeout, &options.terms);
    let locals = project_all(program)?;
    let local = locals
        .get(&role)
        .ok_or_else(|| TcpError::Setup(format!("{role:?} is not a role of this program")))?;
    if let Some(missing) = locals.keys().find(|r| !addresses.contains_key(r)) {
        return Err(TcpError::Setup(format!("{missing:?} has no address")));
    }
    let started = Instant::now();
    let mut session = connect_agreeing::<R, M>(
        role,
        listener,
        addresses,
        (fingerprint(&locals), terms),
        connect_timeout,
    )
    .await?;
    let RoleSetup { data, registry } = setup;
    let state = RoleState::new(role, locals.keys().copied(), data);
    let interpreter = Interpreter::new(&state, &registry).with_trace(config.trace);
    let (result, trace) = interpreter
        .run_within(local, &mut session.endpoint, config.deadline)
        .await;
    let elapsed = started.elapsed();
    let goodbye = result
        .as_ref()
        .map(|_| ())
        .map_err(|failure| failure.error.to_string());
    if options.linger {
        session
            .close_after_peers(goodbye, config.deadline.saturating_sub(elapsed))
            .await;
    } else {
        session.close(goodbye).await;
    }
    Ok(RoleOutcome {
        result,
        trace,
        elapsed,
        state: Some(state),
    })
}

/// Runs every role of `program` in this process, each in its own task and each
/// talking to the others over TCP on loopback: the TCP transport end to end, without
/// separate processes.
pub async fn run_all_over_tcp<R, M, S>(
    program: &Program<R, M>,
    mut setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
    connect_timeout: Duration,
) -> Result<BTreeMap<R, Result<RoleOutcome<R, M, S>, TcpError>>, TcpError>
where
    R: RoleId,
    M: Message + Serialize + DeserializeOwned,
    S: RoleLogic<R, M>,
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
    let mut tasks = JoinSet::new();
    for role in roles {
        let (program, addresses, setup, config) = (
            program.clone(),
            addresses.clone(),
            setup(role),
            config.clone(),
        );
        let listener = listeners.take(role).ok_or_else(|| {
            TcpError::Setup(format!("{role:?} has no listener (a role named twice?)"))
        })?;
        tasks.spawn(async move {
            let outcome = run_role_over_tcp_on(
                &program,
                role,
                listener,
                &addresses,
                setup,
                config,
                connect_timeout,
            )
            .await;
            (role, outcome)
        });
    }
    let mut outcomes = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((role, outcome)) = joined {
            outcomes.insert(role, outcome);
        }
    }
    Ok(outcomes)
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
            .field("endpoint", &self.endpoint)
            .field("readers", &self.readers.len())
            .finish()
    }
}

impl<R, M> TcpSession<R, M> {
    /// The number of live connection readers.
    pub fn readers(&self) -> usize {
        self.readers.len()
    }
}
