//! Every role in a process of its own: the peers file that says where each role
//! listens (and where the servers a role starts listen), one role of a scenario run
//! over TCP, and a launcher that starts every role as a child process on loopback and
//! merges their results into one report.
//!
//! Roles already own everything they use and pass values only in messages, so a role
//! runs the same way in a process of its own: [`run_role`] projects the scenario's
//! program, connects to every peer (the handshake refuses a peer running another
//! program or other options, naming it and what differs), runs its local program and
//! returns its [`RoleResult`]. [`launch`] starts one child process per role, hands
//! them each other's addresses, and merges their results with
//! [`ScenarioReport::from_roles`], exactly as the in-process runner merges its roles'.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use stormchor_choreography::{Program, project_all};
use stormchor_runtime::tcp::{Liveness, RoleOptions, TcpError, Terms, run_role_wrapped};
use stormchor_runtime::{Layer, RoleSetup, RunConfig};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::effect::Kit;
use crate::node::{KitRole, Node};
use crate::report::{RoleResult, ScenarioReport};
use crate::scenario::{
    Scenario, ScenarioError, ScenarioOptions, check_options, kit_layers, run_deadline,
};
use crate::value::Carry;

/// The environment variable a launched role reads the address to listen on from
/// (its presence says the role was started by [`launch`]).
pub const LISTEN_VAR: &str = "STORMCHOR_PROCESS_LISTEN";
/// The environment variable naming the file a launched role writes its result to.
pub const RESULT_VAR: &str = "STORMCHOR_PROCESS_RESULT";
/// The environment variable giving a launched role the run's start (nanoseconds
/// since the Unix epoch), so that every role's times line up.
pub const STARTED_VAR: &str = "STORMCHOR_PROCESS_STARTED";
/// The environment variable giving a launched role its launcher's process id.
pub const PARENT_VAR: &str = "STORMCHOR_PROCESS_PARENT";
/// The line a launched role prints on its standard output once it listens.
pub const LISTENING: &str = "stormchor-listening";

/// How long a launched role may take to say where it listens, and to be told its
/// peers.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a role could not run in a process of its own, or a launch failed (a role that
/// ran and failed is a [`RoleResult`] that says so instead).
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The peers file cannot be read.
    #[error("cannot read the peers file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The peers file is wrong.
    #[error("peers file {origin}: {problem}")]
    Peers {
        /// The file (or "the launcher").
        origin: String,
        /// What is wrong, and where.
        problem: String,
    },
    /// The scenario has no such role.
    #[error("the {scenario} scenario has no role `{role}`{hint}; its roles are {known}")]
    UnknownRole {
        /// The scenario.
        scenario: String,
        /// The role asked for.
        role: String,
        /// ", did you mean `x`?" or nothing.
        hint: String,
        /// Its roles.
        known: String,
    },
    /// The scenario cannot run (its options, its choreography).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A role started by hand without a peers file.
    #[error("role {role} needs --peers FILE (every role's address; see docs/processes.md)")]
    NoPeers {
        /// The role.
        role: String,
    },
    /// The scenario does not run one role per process.
    #[error("the {scenario} scenario cannot run one role per process")]
    Unsupported {
        /// The scenario.
        scenario: String,
    },
    /// Listening, connecting to the peers, or the handshake failed.
    #[error("role {role}: {source}")]
    Tcp {
        /// The role.
        role: String,
        /// Why.
        #[source]
        source: Box<TcpError>,
    },
    /// Starting, instructing or collecting the role processes failed.
    #[error("{0}")]
    Launch(String),
}

/// Where every role listens, and where the servers a role starts listen: the peers
/// file, in TOML.
///
/// ```toml
/// [roles]                      # every role of the scenario, family members included
/// Coordinator = "10.213.0.1:7400"
/// Primary = "10.213.0.2:7400"
/// "Worker(0)" = "10.213.0.4:7400"
///
/// [servers]                    # the roles that host servers, and the address their servers listen on
/// Primary = "10.213.0.2"
/// ```
///
/// A role that starts a server but is not under `[servers]` has it listen on the host
/// of its own address.
///
/// # Example
/// ```
/// use stormchor_kit::process::Peers;
///
/// let peers = Peers::parse(
///     "[roles]\nPrimary = \"127.0.0.1:7400\"\n\"Worker(0)\" = \"127.0.0.1:7401\"\n\n[servers]\nPrimary = \"127.0.0.1\"\n",
///     "peers.toml",
/// )
/// .expect("valid");
/// assert_eq!(peers.address("Worker(0)").map(|a| a.port()), Some(7401));
/// assert_eq!(peers.server_host("Primary").map(|h| h.to_string()), Some("127.0.0.1".to_owned()));
/// assert!(Peers::parse("[roles]\nPrimary = \"nowhere\"\n", "peers.toml").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers {
    origin: String,
    roles: BTreeMap<String, SocketAddr>,
    servers: BTreeMap<String, IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersFile {
    roles: BTreeMap<String, String>,
    #[serde(default)]
    servers: BTreeMap<String, String>,
}

impl Peers {
    /// Every role at its address; servers on their role's host.
    pub fn new(roles: BTreeMap<String, SocketAddr>) -> Peers {
        Peers {
            origin: "from the launcher".to_owned(),
            roles,
            servers: BTreeMap::new(),
        }
    }

    /// These peers, with `role`'s servers listening on `host`.
    pub fn with_server(mut self, role: impl Into<String>, host: IpAddr) -> Peers {
        self.servers.insert(role.into(), host);
        self
    }

    /// Reads a peers file.
    pub fn load(path: &Path) -> Result<Peers, ProcessError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProcessError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Peers::parse(&text, &path.display().to_string())
    }

    /// Parses a peers file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Peers, ProcessError> {
        let problem = |problem: String| ProcessError::Peers {
            origin: origin.to_owned(),
            problem,
        };
        let file: PeersFile =
            toml::from_str(text).map_err(|e| problem(e.to_string().trim_end().to_owned()))?;
        let mut roles = BTreeMap::new();
        for (role, address) in file.roles {
            let resolved = address
                .to_socket_addrs()
                .ok()
                .and_then(|mut all| all.next())
                .ok_or_else(|| {
                    problem(format!(
                        "[roles] {role} = {address:?} is not an address (host:port)"
                    ))
                })?;
            roles.insert(role, resolved);
        }
        let mut servers = BTreeMap::new();
        for (role, host) in file.servers {
            if !roles.contains_key(&role) {
                return Err(problem(format!(
                    "[servers] {role}: no such role under [roles]"
                )));
            }
            let ip: IpAddr = host.parse().map_err(|_| {
                problem(format!("[servers] {role} = {host:?} is not an IP address"))
            })?;
            servers.insert(role, ip);
        }
        Ok(Peers {
            origin: origin.to_owned(),
            roles,
            servers,
        })
    }

    /// The peers file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("[roles]\n");
        for (role, address) in &self.roles {
            out.push_str(&format!("{role:?} = \"{address}\"\n"));
        }
        if !self.servers.is_empty() {
            out.push_str("\n[servers]\n");
            for (role, host) in &self.servers {
                out.push_str(&format!("{role:?} = \"{host}\"\n"));
            }
        }
        out
    }

    /// `role`'s address.
    pub fn address(&self, role: &str) -> Option<SocketAddr> {
        self.roles.get(role).copied()
    }

    /// Where the servers `role` starts listen: its `[servers]` entry, else the host of
    /// its own address.
    pub fn server_host(&self, role: &str) -> Option<IpAddr> {
        self.servers
            .get(role)
            .copied()
            .or_else(|| self.address(role).map(|a| a.ip()))
    }

    /// Where they came from (the peers file).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Checks that these peers are exactly `roles` (a scenario's): a missing or an
    /// unknown role is an error naming it.
    pub fn check_roles(&self, roles: &[String]) -> Result<(), ProcessError> {
        let problem = |problem: String| ProcessError::Peers {
            origin: self.origin.clone(),
            problem,
        };
        if let Some(missing) = roles.iter().find(|r| !self.roles.contains_key(*r)) {
            return Err(problem(format!(
                "no address for role {missing} under [roles] (the scenario's roles are {})",
                roles.join(", ")
            )));
        }
        if let Some(extra) = self.roles.keys().find(|r| !roles.contains(r)) {
            let names: Vec<&str> = roles.iter().map(String::as_str).collect();
            let hint = crate::closest(extra, &names)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            return Err(problem(format!(
                "[roles] {extra} is not a role of the scenario{hint}; its roles are {}",
                roles.join(", ")
            )));
        }
        Ok(())
    }
}

/// What peers must agree on besides the program: the scenario and its options (not
/// when the run started: each host has its own clock).
pub fn terms(scenario: &str, options: &ScenarioOptions) -> Terms {
    let schema = match &options.schema_file {
        None => "none".to_owned(),
        // Hosts may keep the file at different paths; its content must be the same.
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => format!("{} bytes, hash {:016x}", bytes.len(), fnv(&bytes)),
            Err(_) => format!("unreadable ({})", path.display()),
        },
    };
    Terms::new()
        .with("scenario", scenario)
        .with("workers", options.workers)
        .with("duration", format!("{:?}", options.duration))
        .with("rounds", options.rounds)
        .with("seed", options.seed)
        .with("fault", options.fault.map_or("none", |f| f.name()))
        .with(
            "target",
            options
                .target
                .as_deref()
                .map_or_else(|| "none".to_owned(), stormchor_postgres::redact),
        )
        .with("schema", schema)
        .with("on-user-tables", options.touch_user_tables)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash: u64, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where one role runs: its bound listener, its peers, how long it waits for them,
/// and how it tells that one is down.
#[derive(Debug)]
pub struct Placement {
    /// The role's listener, bound to its address in `peers`.
    pub listener: std::net::TcpListener,
    /// Every role's address.
    pub peers: Peers,
    /// How long to wait for every peer to connect.
    pub connect_timeout: Duration,
    /// Heartbeats, and the silence after which a peer is down (every role of a run
    /// must use the same; the handshake checks).
    pub liveness: Liveness,
}

/// Runs role `role` (its name as the report shows it: `Worker(0)`) of a kit program
/// in this process, connected to its peers over TCP; its servers listen on its
/// `server_host`. Every server it started is stopped and removed before it returns.
pub async fn run_role<R: KitRole>(
    name: &str,
    program: &Program<R, Carry>,
    options: &ScenarioOptions,
    kit: Kit<R>,
    role: &str,
    placement: Placement,
) -> Result<RoleResult, ProcessError> {
    let locals = project_all(program).map_err(|source| ScenarioError::Projection {
        scenario: name.to_owned(),
        source: Box::new(source),
    })?;
    let names: Vec<String> = locals.keys().map(|r| format!("{r:?}")).collect();
    let Some(me) = locals.keys().copied().find(|r| format!("{r:?}") == role) else {
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        return Err(ProcessError::UnknownRole {
            scenario: name.to_owned(),
            role: role.to_owned(),
            hint: crate::closest(role, &known)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default(),
            known: names.join(", "),
        });
    };
    let Placement {
        listener,
        peers,
        connect_timeout,
        liveness,
    } = placement;
    peers.check_roles(&names)?;
    let addresses: BTreeMap<R, SocketAddr> = locals
        .keys()
        .filter_map(|r| Some((*r, peers.address(&format!("{r:?}"))?)))
        .collect();
    if let Some(host) = peers.server_host(role) {
        stormchor_postgres::set_server_host(host);
    }
    let registry = Arc::new(kit.into_registry());
    let node = Node::new(role, me.member(), options);
    // A role lingers until every peer has ended: a node role's servers outlive every
    // use of them, as they do when every role runs in one process. Its endpoint has
    // the layers an in-process run gives every role.
    let layers = kit_layers();
    let outcome = run_role_wrapped(
        program,
        me,
        (listener, &addresses),
        RoleSetup::with_registry(node, registry),
        RunConfig::default().with_deadline(run_deadline(options)),
        &RoleOptions::new(connect_timeout)
            .with_terms(terms(name, options))
            .with_liveness(liveness)
            .lingering(),
        |role, endpoint| layers.layer(role, endpoint),
    )
    .await
    .map_err(|source| ProcessError::Tcp {
        role: role.to_owned(),
        source: Box::new(source),
    })?;
    let result = RoleResult::of(&me, &outcome);
    if let Some(state) = &outcome.state {
        state.data().release().await;
    }
    Ok(result)
}

/// Whether this process is a role started by [`launch`].
pub fn launched() -> bool {
    std::env::var_os(LISTEN_VAR).is_some()
}

/// The body of a role's process: runs `role` of `scenario` with `options`.
///
/// Started by hand, it reads its peers from the file `peers` and listens on its
/// address there. Started by [`launch`] ([`launched`]), it listens where the launcher
/// says, prints `stormchor-listening ADDRESS`, reads the peers file from its standard
/// input, takes the run's start from the launcher, dies with the launcher, and writes
/// its result as JSON where the launcher asks. `result` (by hand) is a file to write
/// the result to as well. It waits `connect_timeout` for its peers, and counts one
/// as down as `liveness` says.
pub async fn role_process(
    scenario: &dyn Scenario,
    mut options: ScenarioOptions,
    role: &str,
    (peers, result): (Option<&Path>, Option<&Path>),
    connect_timeout: Duration,
    liveness: Liveness,
) -> Result<RoleResult, ProcessError> {
    let (placement, result_file) = if launched() {
        follow_launcher(&mut options)?;
        let listen = std::env::var(LISTEN_VAR).unwrap_or_default();
        let listener = std::net::TcpListener::bind(listen.as_str()).map_err(|e| {
            ProcessError::Launch(format!("role {role} cannot listen on {listen}: {e}"))
        })?;
        let address = listener
            .local_addr()
            .map_err(|e| ProcessError::Launch(format!("role {role}: {e}")))?;
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{LISTENING} {address}")
                .and_then(|()| stdout.flush())
                .map_err(|e| {
                    ProcessError::Launch(format!("role {role} cannot tell its address: {e}"))
                })?;
        }
        // Standard input is read off the async threads (a blocking read); a launcher
        // that never closes it is a bounded wait, after which this process ends.
        let read = tokio::task::spawn_blocking(|| {
            use std::io::Read;
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        });
        let text = tokio::time::timeout(ANNOUNCE_TIMEOUT, read)
            .await
            .map_err(|_| {
                ProcessError::Launch(format!(
                    "role {role}: the launcher sent no peers within {ANNOUNCE_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| ProcessError::Launch(format!("role {role} cannot read its peers: {e}")))?
            .map_err(|e| ProcessError::Launch(format!("role {role} cannot read its peers: {e}")))?;
        let peers = Peers::parse(&text, "from the launcher")?;
        (
            Placement {
                listener,
                peers,
                connect_timeout,
                liveness,
            },
            std::env::var_os(RESULT_VAR).map(PathBuf::from),
        )
    } else {
        let Some(path) = peers else {
            return Err(ProcessError::NoPeers {
                role: role.to_owned(),
            });
        };
        let peers = Peers::load(path)?;
        let origin = path.display().to_string();
        // The role and the peers are checked before anything listens.
        let roles = scenario.roles(&options)?;
        if !roles.iter().any(|r| r == role) {
            let known: Vec<&str> = roles.iter().map(String::as_str).collect();
            return Err(ProcessError::UnknownRole {
                scenario: scenario.name().to_owned(),
                role: role.to_owned(),
                hint: crate::closest(role, &known)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default(),
                known: roles.join(", "),
            });
        }
        peers.check_roles(&roles)?;
        let address = peers.address(role).ok_or_else(|| ProcessError::Peers {
            origin: origin.clone(),
            problem: format!("no address for role {role} under [roles]"),
        })?;
        let listener =
            std::net::TcpListener::bind(address).map_err(|source| ProcessError::Tcp {
                role: role.to_owned(),
                source: Box::new(TcpError::Io {
                    what: format!("{role} cannot listen on {address} (from {origin})"),
                    source,
                }),
            })?;
        (
            Placement {
                listener,
                peers,
                connect_timeout,
                liveness,
            },
            None,
        )
    };
    let outcome = scenario.run_role(options, role, placement).await?;
    for path in result_file.iter().map(PathBuf::as_path).chain(result) {
        write_result(path, &outcome)?;
    }
    Ok(outcome)
}

/// A launched role takes the run's start from its launcher and dies with it.
fn follow_launcher(options: &mut ScenarioOptions) -> Result<(), ProcessError> {
    if let Some(nanos) = std::env::var(STARTED_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        options.started = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
    }
    // SIGTERM when the launcher dies: the role ends its load and removes its servers.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| ProcessError::Launch(format!("cannot follow the launcher: {e}")))?;
    let parent = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    if parent.is_some_and(|pid| pid != nix::unistd::getppid().as_raw()) {
        return Err(ProcessError::Launch(
            "the launcher ended before this role started".to_owned(),
        ));
    }
    Ok(())
}

fn write_result(path: &Path, result: &RoleResult) -> Result<(), ProcessError> {
    let fail = |e: String| {
        ProcessError::Launch(format!(
            "cannot write {}'s result to {}: {e}",
            result.role,
            path.display()
        ))
    };
    let text = serde_json::to_string(result).map_err(|e| fail(e.to_string()))?;
    // Written whole, then renamed: a reader never sees half a result.
    let partial = path.with_extension("part");
    std::fs::write(&partial, text).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&partial, path).map_err(|e| fail(e.to_string()))
}

/// The role processes of a launch: killed (their process groups) when dropped before
/// they were all reaped, so none outlives a failed or interrupted launch.
struct Children {
    list: Vec<(String, tokio::process::Child)>,
}

impl Children {
    fn signal_all(&self, signal: nix::sys::signal::Signal) {
        for (_, child) in &self.list {
            // `id` is `None` once the child is reaped: its number may be another's now.
            if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-pid), signal);
            }
        }
    }

    async fn wait_all(&mut self) -> Vec<std::io::Result<ExitStatus>> {
        let mut statuses = Vec::new();
        for (_, child) in &mut self.list {
            statuses.push(child.wait().await);
        }
        statuses
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.signal_all(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Runs every role of `scenario` as a child process on loopback and merges their
/// results into one report, the same report an in-process run gives.
///
/// `command(role)` is the command that runs one role ([`role_process`] inside, e.g.
/// `stormchor role SCENARIO ROLE` with the run's options); the launcher adds how it
/// talks to it (environment variables, standard input and output). Each child gets a
/// process group of its own; a Ctrl-C or SIGTERM of this process
/// ([`interrupt::request`](crate::interrupt::request)) is passed on to every child as
/// SIGTERM (SIGKILL a minute later), and every child still running when this returns
/// (a failure, a deadline) is killed. A role whose process ends without a result
/// (killed, crashed) is a failed role of the report.
pub async fn launch(
    scenario: &dyn Scenario,
    options: &ScenarioOptions,
    mut command: impl FnMut(&str) -> tokio::process::Command,
) -> Result<ScenarioReport, ProcessError> {
    check_options(scenario, options)?;
    let roles = scenario.roles(options)?;
    let began = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("stormchor-roles-")
        .tempdir()
        .map_err(|e| {
            ProcessError::Launch(format!("cannot make a directory for the results: {e}"))
        })?;
    let started = options
        .started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let result_path = |role: &str| dir.path().join(format!("{role}.json"));
    let mut children = Children { list: Vec::new() };
    for role in &roles {
        let mut child = command(role);
        child
            .env(LISTEN_VAR, "127.0.0.1:0")
            .env(RESULT_VAR, result_path(role))
            .env(STARTED_VAR, started.to_string())
            .env(PARENT_VAR, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let spawned = child.spawn().map_err(|e| {
            ProcessError::Launch(format!("cannot start the process of role {role}: {e}"))
        })?;
        children.list.push((role.clone(), spawned));
    }

    // Every role says where it listens; then each is told everyone's address.
    let mut addresses = BTreeMap::new();
    for (role, child) in &mut children.list {
        let Some(stdout) = child.stdout.take() else {
            return Err(ProcessError::Launch(format!("role {role} has no output")));
        };
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(ANNOUNCE_TIMEOUT, lines.next_line()).await;
        let address = match line {
            Ok(Ok(Some(line))) => line
                .strip_prefix(LISTENING)
                .and_then(|rest| rest.trim().parse::<SocketAddr>().ok()),
            Ok(Ok(None)) => {
                let status = child
                    .wait()
                    .await
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(ProcessError::Launch(format!(
                    "the process of role {role} ended before it listened ({status})"
                )));
            }
            Ok(Err(e)) => {
                return Err(ProcessError::Launch(format!("role {role}'s output: {e}")));
            }
            Err(_) => {
                return Err(ProcessError::Launch(format!(
                    "role {role} did not say where it listens within {ANNOUNCE_TIMEOUT:?}"
                )));
            }
        };
        let address = address.ok_or_else(|| {
            ProcessError::Launch(format!(
                "role {role} said something else than where it listens"
            ))
        })?;
        addresses.insert(role.clone(), address);
        // Whatever else it prints goes to our standard error.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
            }
        });
    }
    let peers = Peers::new(addresses).to_toml();
    for (role, child) in &mut children.list {
        let Some(mut stdin) = child.stdin.take() else {
            return Err(ProcessError::Launch(format!("role {role} has no input")));
        };
        stdin
            .write_all(peers.as_bytes())
            .await
            .map_err(|e| ProcessError::Launch(format!("cannot tell role {role} its peers: {e}")))?;
        drop(stdin);
    }

    // Every role runs to its end (each one's waits are bounded by the run's deadline).
    let limit = run_deadline(options).saturating_add(Duration::from_secs(120));
    let statuses = tokio::select! {
        statuses = children.wait_all() => statuses,
        () = crate::interrupt::requested_now() => {
            children.signal_all(nix::sys::signal::Signal::SIGTERM);
            match tokio::time::timeout(Duration::from_secs(60), children.wait_all()).await {
                Ok(statuses) => statuses,
                Err(_) => {
                    children.signal_all(nix::sys::signal::Signal::SIGKILL);
                    children.wait_all().await
                }
            }
        }
        () = tokio::time::sleep(limit) => {
            children.signal_all(nix::sys::signal::Signal::SIGKILL);
            let _ = children.wait_all().await;
            return Err(ProcessError::Launch(format!(
                "the role processes did not end within {limit:?}; they were killed"
            )));
        }
    };
    let mut results = Vec::new();
    let mut lost = false;
    for (role, status) in roles.iter().zip(statuses) {
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        let result = std::fs::read_to_string(result_path(role))
            .ok()
            .and_then(|text| serde_json::from_str::<RoleResult>(&text).ok())
            .unwrap_or_else(|| {
                lost = true;
                RoleResult::lost(
                    role.clone(),
                    format!("its process ended ({status}) without a result"),
                )
            });
        results.push(result);
    }
    if lost {
        reap_lost_servers().await;
    }
    Ok(ScenarioReport::from_roles(
        scenario.name(),
        options.seed,
        began.elapsed(),
        results,
        scenario.diagram(options),
    ))
}

/// What a role killed mid-run leaves: its servers die with it (each one's watchdog
/// kills it when its owner dies), but their directories (data, Unix socket, WAL
/// archive) and shared memory stay until a sweep; this sweeps them now, once every
/// role has ended (off the async threads: killing a server waits for it).
async fn reap_lost_servers() {
    // A sweep that panicked leaves them to the next run's sweep: nothing more to do.
    let _ = tokio::task::spawn_blocking(stormchor_postgres::remove_stale_directories).await;
}
