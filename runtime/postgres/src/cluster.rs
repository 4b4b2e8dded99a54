//! Throwaway PostgreSQL clusters.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User, geteuid};
use tempfile::TempDir;
use thiserror::Error;
use tokio_postgres::Client;
use tokio_postgres::types::PgLsn;

use super::cleanup::{self, check_interrupted, end_watchdog, start_watchdog};
use super::connection::connect;
use super::sync::lock;

/// What can go wrong with a cluster.
#[derive(Debug, Error)]
pub enum PgError {
    /// A server program could not be found.
    #[error(
        "PostgreSQL program `{program}` not found (looked in {searched}); install the server with `apt-get install -y postgresql`, or set PG_BIN to the directory holding initdb and postgres"
    )]
    MissingBinary {
        /// The program.
        program: String,
        /// Where it was looked for.
        searched: String,
    },
    /// Running as root without an unprivileged user to run the server as.
    #[error(
        "initdb and postgres refuse to run as root, and there is no `postgres` user to run them as; create one (`useradd --system postgres`, or install the server package, which does) or run as an unprivileged user"
    )]
    NoUnprivilegedUser,
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed (the end of it).
        output: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A connect failed.
    #[error("cannot connect to `{target}`: {problem}")]
    Connect {
        /// The server, password hidden.
        target: String,
        /// What went wrong, in words.
        problem: String,
        /// The error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A connect got no answer in time: something may accept TCP there without
    /// speaking PostgreSQL.
    #[error(
        "cannot connect to `{target}`: no answer within {waited:?} (is a PostgreSQL server listening there? set connect_timeout=SECONDS in the connection string to wait longer)"
    )]
    ConnectTimeout {
        /// The server, password hidden.
        target: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The run was interrupted (see [`interrupt`](super::interrupt)).
    #[error("interrupted while {what}")]
    Interrupted {
        /// What was going on.
        what: String,
    },
    /// The server did not come up or go down in time.
    #[error("{what} did not happen within {waited:?}; the end of the server log:\n{log}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The end of the server log.
        log: String,
    },
    /// The server process exited on its own.
    #[error("the server exited while starting ({status}); the end of the server log:\n{log}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of the server log.
        log: String,
    },
    /// Connecting or a query failed.
    #[error("{what}: {}", super::connection::sql_problem(.source))]
    Sql {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Discovery was asked for a schema the server does not have.
    #[error("no schema named `{schema}` on the server; its schemas are {known}")]
    UnknownSchema {
        /// The schema asked for.
        schema: String,
        /// The schemas there are (the system's left out).
        known: String,
    },
    /// The operation needs process control, which an external server does not offer.
    #[error(
        "{operation} needs control of the server process, which stormchor does not have for an external server ({target})"
    )]
    NoProcessControl {
        /// The operation.
        operation: String,
        /// The server.
        target: String,
    },
    /// The cluster is not running (or is already running).
    #[error("the cluster is {state}; cannot {operation}")]
    State {
        /// Its state.
        state: &'static str,
        /// What was asked.
        operation: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgError {
    let what = what.into();
    move |source| PgError::Io { what, source }
}

/// Runs `work`, which blocks (the file system, `/proc`, a child's exit, `pg_config`),
/// on tokio's blocking threads, so that no async caller blocks its runtime's workers;
/// waits for it at most `limit` (a `work` that overruns goes on on its thread, and the
/// caller gets an error naming `what`).
pub(crate) async fn off_runtime<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl FnOnce() -> Result<T, PgError> + Send + 'static,
) -> Result<T, PgError> {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(failed)) => Err(PgError::Io {
            what: what.to_owned(),
            source: std::io::Error::other(failed.to_string()),
        }),
        Err(_) => Err(PgError::Io {
            what: what.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not done within {limit:?}"),
            ),
        }),
    }
}

/// How long the blocking preparations of a cluster (directories, `pg_config`) may take.
const PREPARE_LIMIT: Duration = Duration::from_secs(60);

/// The directory of the PostgreSQL server programs.
///
/// # Example
/// ```no_run
/// use stormchor_postgres::PgBinaries;
///
/// let binaries = PgBinaries::locate().expect("PostgreSQL installed");
/// println!("initdb is {}", binaries.program("initdb").expect("found").display());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgBinaries {
    dir: PathBuf,
}

impl PgBinaries {
    /// Runs client program `program` (e.g. `pg_amcheck`) with `args` as the servers'
    /// user and returns what it printed; fails with its output when it fails.
    pub async fn run_client(&self, program: &str, args: &[String]) -> Result<String, PgError> {
        let run_as = RunAs::detect()?;
        let mut command = run_as.command(self.program(program)?);
        command.args(args).current_dir(std::env::temp_dir());
        run(&mut command).await
    }

    /// [`locate`](PgBinaries::locate) for async code: the search (it runs `pg_config` and
    /// reads directories) runs on a blocking thread, for at most a minute.
    pub async fn locate_async() -> Result<Self, PgError> {
        off_runtime(
            "locating the PostgreSQL programs",
            PREPARE_LIMIT,
            PgBinaries::locate,
        )
        .await
    }

    /// Finds the programs: the directory in `PG_BIN`, else `pg_config --bindir`, else the
    /// newest `/usr/lib/postgresql/*/bin`. It blocks (it runs `pg_config`): async code
    /// calls [`locate_async`](PgBinaries::locate_async).
    pub fn locate() -> Result<Self, PgError> {
        let mut searched = Vec::new();
        if let Some(dir) = std::env::var_os("PG_BIN") {
            return PgBinaries::at(dir);
        }
        searched.push("$PG_BIN (unset)".to_owned());
        if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
            if output.status.success() {
                let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
                if let Ok(found) = PgBinaries::at(&dir) {
                    return Ok(found);
                }
                searched.push(dir.display().to_string());
            }
        } else {
            searched.push("pg_config --bindir (no pg_config)".to_owned());
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versions.sort();
        if let Some((_, dir)) = versions
            .iter()
            .rev()
            .find(|(_, dir)| PgBinaries::at(dir).is_ok())
        {
            return PgBinaries::at(dir);
        }
        searched.push("/usr/lib/postgresql/*/bin".to_owned());
        Err(PgError::MissingBinary {
            program: "initdb".to_owned(),
            searched: searched.join(", "),
        })
    }

    /// The programs in `dir`; fails unless `initdb` and `postgres` are there.
    pub fn at(dir: impl AsRef<Path>) -> Result<Self, PgError> {
        let found = PgBinaries {
            dir: dir.as_ref().to_path_buf(),
        };
        found.program("initdb")?;
        found.program("postgres")?;
        Ok(found)
    }

    /// The path of a program, if it exists.
    pub fn program(&self, name: &str) -> Result<PathBuf, PgError> {
        let path = self.dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(PgError::MissingBinary {
                program: name.to_owned(),
                searched: self.dir.display().to_string(),
            })
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// How to shut a server down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Wait for clients to disconnect (SIGTERM).
    Smart,
    /// Roll back open transactions and disconnect clients (SIGINT).
    Fast,
    /// Stop at once; the next start runs crash recovery (SIGQUIT).
    Immediate,
}

/// Settings of a new cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The programs; found with [`PgBinaries::locate`] when `None`.
    pub binaries: Option<PgBinaries>,
    /// Extra server settings, as `name = value`.
    pub settings: Vec<(String, String)>,
    /// How long to wait for the server to accept connections.
    pub start_timeout: Duration,
    /// Whether the server fsyncs. Off by default: a killed server process loses
    /// nothing either way (the kernel keeps what was written); only a machine crash would.
    pub fsync: bool,
    /// Archive WAL into this archive (for point-in-time recovery).
    pub archive: Option<Arc<WalArchive>>,
    /// The port to try first; `None` picks a free one. When the server cannot bind it
    /// (something else listens there), the cluster starts on a free port instead.
    pub port: Option<u16>,
    /// Create the cluster with data checksums (`initdb --data-checksums`): a page
    /// whose contents changed behind the server's back fails its read with
    /// `invalid page in block`, and `pg_amcheck` reports it. Off by default.
    pub data_checksums: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            binaries: None,
            settings: Vec::new(),
            start_timeout: Duration::from_secs(60),
            fsync: false,
            archive: None,
            port: None,
            data_checksums: false,
        }
    }
}

/// Who runs the server programs: this process's user, or the `postgres` user when
/// this process runs as root.
#[derive(Clone, Copy, Debug)]
struct RunAs(Option<(Uid, Gid)>);

impl RunAs {
    fn detect() -> Result<Self, PgError> {
        if !geteuid().is_root() {
            return Ok(RunAs(None));
        }
        match User::from_name("postgres") {
            Ok(Some(user)) => Ok(RunAs(Some((user.uid, user.gid)))),
            _ => Err(PgError::NoUnprivilegedUser),
        }
    }

    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(program);
        // A process group of its own: a Ctrl-C in the terminal reaches stormchor only,
        // which stops the run in order.
        command
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .process_group(0);
        if let Some((uid, gid)) = self.0 {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        command
    }

    /// Hands `path` to the server's user.
    fn own(&self, path: &Path) -> Result<(), PgError> {
        if let Some((uid, gid)) = self.0 {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(io(
                format!("cannot hand {} to the postgres user", path.display()),
            ))?;
        }
        Ok(())
    }

    /// A new temporary directory the server's user owns.
    /// Its name starts with [`cleanup::DIRECTORY_PREFIX`] and it holds an owner file,
    /// so that a later run removes it if this process dies without removing it.
    fn temp_dir(&self, prefix: &str) -> Result<TempDir, PgError> {
        cleanup::remove_stale_directories_once();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(io("cannot create a temporary directory"))?;
        cleanup::mark_owned(dir.path())?;
        self.own(dir.path())?;
        Ok(dir)
    }
}

/// Runs a command to its end; fails with its output when it fails, and at once with
/// [`PgError::Interrupted`] when the run is interrupted (the program's process group is
/// killed then).
async fn run(command: &mut Command) -> Result<String, PgError> {
    let line = format!("{command:?}");
    check_interrupted(&format!("about to run {line}"))?;
    let mut command =
        tokio::process::Command::from(std::mem::replace(command, Command::new("true")));
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io(format!("cannot run {line}")))?;
    let pid = child.id().map(|pid| pid as i32);
    let output = tokio::select! {
        output = child.wait_with_output() => output.map_err(io(format!("cannot run {line}")))?,
        () = cleanup::interrupted() => {
            // Its process group: pg_basebackup streams WAL from a child of its own.
            if let Some(pid) = pid {
                tokio::task::spawn_blocking(move || cleanup::kill_group(pid))
                    .await
                    .ok();
            }
            return Err(PgError::Interrupted { what: format!("running {line}") });
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(PgError::Command {
            command: line,
            status: output.status.to_string(),
            output: tail(&text, 20),
        })
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The address this process's throwaway servers listen on (loopback unless a role in
/// a process of its own, on a host of its own, says otherwise).
static SERVER_HOST: Mutex<Option<std::net::IpAddr>> = Mutex::new(None);

/// Makes every throwaway server this process starts from now on listen on `host`
/// (only there) instead of `127.0.0.1`, and accept clients from the subnets of the
/// host (`samenet` in `pg_hba.conf`, as trusted as loopback is): a role in a process
/// of its own on a host of its own calls it with its host's address, so that roles on
/// other hosts reach its servers.
///
/// # Example
/// ```
/// use stormchor_postgres::{server_host, set_server_host};
///
/// set_server_host("127.0.0.1".parse().expect("an address"));
/// assert_eq!(server_host().to_string(), "127.0.0.1");
/// ```
pub fn set_server_host(host: std::net::IpAddr) {
    *lock(&SERVER_HOST) = Some(host);
}

/// The address this process's throwaway servers listen on ([`set_server_host`]).
pub fn server_host() -> std::net::IpAddr {
    lock(&SERVER_HOST).unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// Lets clients of the host's subnets in (a server that listens on a host's address
/// for roles on other hosts): appended once to `pg_hba.conf`.
fn allow_same_networks(data: &Path, run_as: RunAs) -> Result<(), PgError> {
    const LINES: &str = "\n# stormchor: roles on other hosts of the run's networks\nhost all all samenet trust\nhost replication all samenet trust\n";
    let path = data.join("pg_hba.conf");
    let text = fs::read_to_string(&path).map_err(io("cannot read pg_hba.conf"))?;
    if !text.contains("# stormchor: roles on other hosts") {
        fs::write(&path, text + LINES).map_err(io("cannot write pg_hba.conf"))?;
        run_as.own(&path)?;
    }
    Ok(())
}

/// Ports handed to clusters of this process that are still alive: never handed twice.
static PORTS_IN_USE: Mutex<std::collections::BTreeSet<u16>> =
    Mutex::new(std::collections::BTreeSet::new());

/// A port for a new server: one below the system's ephemeral range (where the kernel
/// picks ports for `bind(0)` and outgoing connections, so they cannot take it while the
/// server is down for a restart), that nothing listens on now and that no other
/// cluster of this process holds. Another process may still take it before the
/// server binds it: the start then moves to another port (`start_server`).
fn free_port(host: std::net::IpAddr) -> Result<u16, PgError> {
    use rand::{Rng, SeedableRng};
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ cleanup::registrations();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let range = if low > 12_000 {
        low - 10_000..low
    } else {
        0..0
    };
    for _ in 0..200 {
        let port = if range.is_empty() {
            // No room below the ephemeral range: let the kernel pick.
            std::net::TcpListener::bind((host, 0))
                .and_then(|l| l.local_addr())
                .map_err(io("cannot find a free port"))?
                .port()
        } else {
            rng.random_range(range.clone())
        };
        let mut in_use = lock(&PORTS_IN_USE);
        if in_use.contains(&port) || std::net::TcpListener::bind((host, port)).is_err() {
            continue;
        }
        in_use.insert(port);
        return Ok(port);
    }
    Err(PgError::Io {
        what: "cannot find a free port".to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    })
}

fn release_port(port: u16) {
    lock(&PORTS_IN_USE).remove(&port);
}

/// Whether the server log says the postmaster could not listen on its port.
fn could_not_bind(log: &str) -> bool {
    log.contains("could not bind")
        || log.contains("Address already in use")
        || log.contains("could not create any TCP/IP sockets")
        || log.contains("could not create listen socket")
}

/// A directory that collects archived WAL, shared (in an `Arc`) by a primary, its
/// backups and its restores.
///
/// Each holder lets go of it with [`release`](WalArchive::release) and the last one
/// removes the directory, without blocking the runtime: async code ends an archive
/// with it. Dropping the last holder removes the directory too, but blocks the
/// dropping thread: that is the last resort (a panic, an early return).
///
/// # Example
/// ```no_run
/// use stormchor_postgres::{ClusterOptions, PgCluster, WalArchive};
///
/// # async fn demo() -> Result<(), stormchor_postgres::PgError> {
/// let archive = WalArchive::create().await?;
/// let primary = PgCluster::start(ClusterOptions {
///     archive: Some(archive.clone()),
///     ..ClusterOptions::default()
/// })
/// .await?;
/// let backup = primary.base_backup().await?; // holds the archive too
/// primary.shutdown().await?;
/// backup.remove().await?;
/// archive.release().await?; // the last holder: the directory goes
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WalArchive {
    dir: TempDir,
}

impl WalArchive {
    /// A new, empty archive. It creates a directory (blocking file-system work): async
    /// code uses [`create`](WalArchive::create).
    pub fn new() -> Result<Arc<Self>, PgError> {
        let run_as = RunAs::detect()?;
        Ok(Arc::new(WalArchive {
            dir: run_as.temp_dir("stormchor-wal-")?,
        }))
    }

    /// [`new`](WalArchive::new) on a blocking thread.
    pub async fn create() -> Result<Arc<Self>, PgError> {
        off_runtime("creating a WAL archive", PREPARE_LIMIT, WalArchive::new).await
    }

    /// Lets go of this holder's share of the archive; the last holder removes its
    /// directory (its owner file last), without blocking the runtime. Fails when the
    /// directory cannot be removed whole (the owner file stays then, and the next run's
    /// sweep of stale directories removes the rest).
    pub async fn release(self: Arc<Self>) -> Result<(), PgError> {
        match Arc::into_inner(self) {
            Some(last) => remove_owned_directory(last.dir, "the WAL archive").await,
            None => Ok(()),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl AsRef<Path> for WalArchive {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// Where a point-in-time recovery stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// Just after this WAL position.
    Lsn(PgLsn),
    /// At this time, written as PostgreSQL reads it (`2026-11-23 12:00:00.123+00`).
    Time(String),
    /// At the restore point of this name (made with `pg_create_restore_point`).
    Name(String),
    /// Just after this transaction id committed.
    Xid(String),
    /// As soon as the backup is consistent (`recovery_target = 'immediate'`).
    Immediate,
}

/// A throwaway PostgreSQL cluster in a temporary directory.
///
/// It listens on a free loopback port and accepts `postgres` without a password.
/// [`shutdown`](PgCluster::shutdown) kills the server (and every process it started)
/// and removes the directory without blocking the runtime: async code ends a cluster
/// with it. Dropping a cluster that was not shut down does the same as the last resort
/// (a test that panics, an early return): it blocks the dropping thread until the
/// processes are gone and the directory is removed.
///
/// # Example
/// ```no_run
/// use stormchor_postgres::{ClusterOptions, PgCluster, StopMode};
///
/// # async fn demo() -> Result<(), stormchor_postgres::PgError> {
/// let mut cluster = PgCluster::start(ClusterOptions::default()).await?;
/// let client = cluster.connect().await?;
/// client.batch_execute("CREATE TABLE t (id int)").await.expect("created");
/// cluster.kill().await?; // a crash
/// cluster.restart().await?; // crash recovery
/// cluster.stop(StopMode::Fast).await?;
/// cluster.shutdown().await?; // the directory goes
/// # Ok(()) }
/// ```
pub struct PgCluster {
    binaries: PgBinaries,
    run_as: RunAs,
    root: Option<TempDir>,
    data: PathBuf,
    /// The address it listens on.
    host: std::net::IpAddr,
    port: u16,
    settings: Vec<(String, String)>,
    start_timeout: Duration,
    archive: Option<Arc<WalArchive>>,
    postmaster: Option<Child>,
    /// The postmaster's watchdog (see the `cleanup` module).
    watchdog: Option<Child>,
    registration: u64,
    /// Whether the server has accepted connections once (its port is then known to
    /// every client and never changes).
    started_once: bool,
    /// Whether `port` came from [`free_port`] (and goes back when the cluster ends).
    port_reserved: bool,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("data", &self.data)
            .field("port", &self.port)
            .field("running", &self.postmaster.is_some())
            .finish()
    }
}

impl PgCluster {
    /// Creates a cluster with `initdb` in a new temporary directory and starts it.
    pub async fn start(options: ClusterOptions) -> Result<Self, PgError> {
        let binaries = options.binaries.clone();
        let (binaries, run_as, root, initdb) =
            off_runtime("preparing a cluster", PREPARE_LIMIT, move || {
                let binaries = match binaries {
                    Some(binaries) => binaries,
                    None => PgBinaries::locate()?,
                };
                let run_as = RunAs::detect()?;
                let root = run_as.temp_dir("stormchor-pg-")?;
                let initdb = binaries.program("initdb")?;
                Ok((binaries, run_as, root, initdb))
            })
            .await?;
        let data = root.path().join("data");
        let mut initdb = run_as.command(initdb);
        initdb.args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        if options.data_checksums {
            initdb.arg("--data-checksums");
        }
        if let Err(error) = run(initdb.arg("--pgdata").arg(&data).current_dir(root.path())).await {
            remove_directory(root).await;
            return Err(error);
        }
        PgCluster::start_from_parts(binaries, run_as, root, data, options).await
    }

    /// [`from_parts`](PgCluster::from_parts) (it writes files) on a blocking thread, then
    /// the server; a server that does not start is shut down.
    async fn start_from_parts(
        binaries: PgBinaries,
        run_as: RunAs,
        root: TempDir,
        data: PathBuf,
        options: ClusterOptions,
    ) -> Result<Self, PgError> {
        let mut cluster = off_runtime("preparing a cluster", PREPARE_LIMIT, move || {
            PgCluster::from_parts(binaries, run_as, root, data, &options)
        })
        .await?;
        match cluster.start_server().await {
            Ok(()) => Ok(cluster),
            Err(error) => {
                let _ = cluster.shutdown().await;
                Err(error)
            }
        }
    }

    fn from_parts(
        binaries: PgBinaries,
        run_as: RunAs,
        root: TempDir,
        data: PathBuf,
        options: &ClusterOptions,
    ) -> Result<Self, PgError> {
        let host = server_host();
        if !host.is_loopback() {
            allow_same_networks(&data, run_as)?;
        }
        let mut settings = vec![
            ("listen_addresses".to_owned(), host.to_string()),
            (
                "unix_socket_directories".to_owned(),
                root.path().display().to_string(),
            ),
            (
                "fsync".to_owned(),
                if options.fsync { "on" } else { "off" }.to_owned(),
            ),
            ("max_connections".to_owned(), "200".to_owned()),
            ("wal_level".to_owned(), "replica".to_owned()),
            ("max_wal_senders".to_owned(), "10".to_owned()),
        ];
        if let Some(archive) = &options.archive {
            settings.push(("archive_mode".to_owned(), "on".to_owned()));
            settings.push((
                "archive_command".to_owned(),
                // Never overwrite an archived segment; copy under a temporary name and
                // rename, so a crash mid-copy leaves no half segment; and succeed when
                // the same segment is there already (a crash after the copy, before the
                // server recorded it), else the archiver would retry it forever.
                format!(
                    "{{ test ! -f {dir}/%f && cp %p {dir}/%f.part && mv {dir}/%f.part {dir}/%f; }} || cmp -s %p {dir}/%f",
                    dir = archive.path().display()
                ),
            ));
        }
        settings.extend(options.settings.iter().cloned());
        let registration = cleanup::register(root.path());
        Ok(PgCluster {
            registration,
            binaries,
            run_as,
            root: Some(root),
            data,
            host,
            port: match options.port {
                Some(port) => port,
                None => free_port(host)?,
            },
            settings,
            start_timeout: options.start_timeout,
            archive: options.archive.clone(),
            postmaster: None,
            watchdog: None,
            started_once: false,
            port_reserved: options.port.is_none(),
        })
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// A libpq connection string for database `postgres`.
    pub fn connection_string(&self) -> String {
        self.connection_string_for("postgres")
    }

    /// A libpq connection string for `database`.
    pub fn connection_string_for(&self, database: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={database}",
            self.host, self.port
        )
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(
            self.postmaster.as_mut().map(Child::try_wait),
            Some(Ok(None))
        )
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.as_ref().map(Child::id)
    }

    /// A new connection; its driver runs as a task of the current runtime.
    pub async fn connect(&self) -> Result<Client, PgError> {
        connect(&self.connection_string()).await
    }

    fn log_path(&self) -> PathBuf {
        self.data.with_file_name("server.log")
    }

    async fn log_tail(&self) -> String {
        tokio::fs::read_to_string(self.log_path())
            .await
            .map(|log| tail(&log, 30))
            .unwrap_or_default()
    }

    /// Starts the postmaster and waits until it accepts connections. A first start
    /// whose postmaster cannot bind its port (another process took it) moves to a new
    /// port; a restart keeps its port (clients hold its connection string) and tries
    /// again until its start timeout.
    async fn start_server(&mut self) -> Result<(), PgError> {
        let first_start = !self.started_once;
        let deadline = Instant::now() + self.start_timeout;
        loop {
            match self.start_postmaster(deadline).await {
                Err(PgError::Exited { status, log }) if could_not_bind(&log) => {
                    if Instant::now() >= deadline {
                        return Err(PgError::Exited { status, log });
                    }
                    if first_start {
                        let port = free_port(self.host)?;
                        if self.port_reserved {
                            release_port(self.port);
                        }
                        self.port = port;
                        self.port_reserved = true;
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Ok(()) => {
                    self.started_once = true;
                    return Ok(());
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// One attempt of [`PgCluster::start_server`]: the server log of this attempt only
    /// goes into its errors.
    async fn start_postmaster(&mut self, deadline: Instant) -> Result<(), PgError> {
        if self.postmaster.is_some() {
            return Err(PgError::State {
                state: "running",
                operation: "start it".to_owned(),
            });
        }
        let log_path = self.log_path();
        let (log, log_err, log_start) =
            off_runtime("opening the server log", PREPARE_LIMIT, move || {
                let log = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log_path)
                    .map_err(io("cannot open the server log"))?;
                let log_start = log.metadata().map_or(0, |m| m.len());
                let log_err = log.try_clone().map_err(io("cannot open the server log"))?;
                Ok((log, log_err, log_start))
            })
            .await?;
        let mut command = self.run_as.command(self.binaries.program("postgres")?);
        command
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string());
        for (name, value) in &self.settings {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        let child = command
            .current_dir(self.data.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io("cannot start postgres"))?;
        let pid = child.id() as i32;
        cleanup::set_postmaster(self.registration, Some(pid));
        self.postmaster = Some(child);
        match start_watchdog(pid) {
            Ok(watchdog) => self.watchdog = Some(watchdog),
            Err(error) => {
                self.kill_server().await;
                return Err(error);
            }
        }
        let log_path = self.log_path();
        let attempt_log = async || {
            let log = tokio::fs::read(&log_path).await.unwrap_or_default();
            let start = usize::try_from(log_start).unwrap_or(0).min(log.len());
            tail(&String::from_utf8_lossy(&log[start..]), 30)
        };
        loop {
            if let Some(Ok(Some(status))) = self.postmaster.as_mut().map(Child::try_wait) {
                self.forget_postmaster();
                return Err(PgError::Exited {
                    status: status.to_string(),
                    log: attempt_log().await,
                });
            }
            // Something else on the port may accept the connection and never answer:
            // each try is short.
            let attempt =
                tokio::time::timeout(Duration::from_secs(2), connect(&self.connection_string()))
                    .await;
            if let Ok(Ok(client)) = attempt {
                // Still replaying a backup or in crash recovery counts as up: it answers.
                // It must be this server, not another one that holds the port.
                if let Ok(row) = client.query_one("SHOW data_directory", &[]).await {
                    if self.is_our_data_dir(row.get(0)).await {
                        return Ok(());
                    }
                }
            }
            if cleanup::is_interrupted() {
                self.kill_server().await;
                return Err(PgError::Interrupted {
                    what: "starting the server".to_owned(),
                });
            }
            if Instant::now() >= deadline {
                self.kill_server().await;
                return Err(PgError::Timeout {
                    what: "accepting connections".to_owned(),
                    waited: self.start_timeout,
                    log: attempt_log().await,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn is_our_data_dir(&self, reported: &str) -> bool {
        let reported = Path::new(reported);
        if reported == self.data {
            return true;
        }
        matches!(
            (tokio::fs::canonicalize(reported).await, tokio::fs::canonicalize(&self.data).await),
            (Ok(a), Ok(b)) if a == b
        )
    }

    /// Starts the stopped (or crashed) server again; it runs crash recovery if needed.
    pub async fn restart(&mut self) -> Result<(), PgError> {
        if self.is_running() {
            return Err(PgError::State {
                state: "running",
                operation: "restart it".to_owned(),
            });
        }
        self.forget_postmaster();
        self.start_server().await
    }

    /// Shuts the server down and waits until it is gone (at most a minute).
    pub async fn stop(&mut self, mode: StopMode) -> Result<(), PgError> {
        let Some(pid) = self.pid() else {
            return Err(PgError::State {
                state: "stopped",
                operation: "stop it".to_owned(),
            });
        };
        let signal = match mode {
            StopMode::Smart => Signal::SIGTERM,
            StopMode::Fast => Signal::SIGINT,
            StopMode::Immediate => Signal::SIGQUIT,
        };
        let _ = kill(Pid::from_raw(pid as i32), signal);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.is_running() {
            if Instant::now() >= deadline {
                return Err(PgError::Timeout {
                    what: format!("a {mode:?} shutdown"),
                    waited: Duration::from_secs(60),
                    log: self.log_tail().await,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.forget_postmaster();
        Ok(())
    }

    /// Kills the server and every process it started with SIGKILL: a crash. Returns
    /// once they are all gone.
    pub async fn kill(&mut self) -> Result<(), PgError> {
        if self.postmaster.is_none() {
            return Err(PgError::State {
                state: "stopped",
                operation: "kill it".to_owned(),
            });
        }
        let children = self.kill_server().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while any_lives(&children).await {
            if Instant::now() >= deadline {
                return Err(PgError::Timeout {
                    what: "the killed server's processes exiting".to_owned(),
                    waited: Duration::from_secs(30),
                    log: self.log_tail().await,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// SIGKILLs the postmaster and its children, reaps the postmaster; returns the
    /// children's pids (reaped by init, not us). It blocks (a `/proc` scan, the reaps):
    /// for [`Drop`]; async code calls [`kill_server`](PgCluster::kill_server).
    fn kill_now(&mut self) -> Vec<i32> {
        let Some(postmaster) = self.postmaster.take() else {
            self.forget_postmaster();
            return Vec::new();
        };
        let children = kill_process_tree(postmaster, self.watchdog.take());
        cleanup::set_postmaster(self.registration, None);
        children
    }

    /// [`kill_now`](PgCluster::kill_now) with the blocking part on a blocking thread.
    async fn kill_server(&mut self) -> Vec<i32> {
        let Some(postmaster) = self.postmaster.take() else {
            self.forget_postmaster();
            return Vec::new();
        };
        let watchdog = self.watchdog.take();
        let children = off_runtime("killing the server", Duration::from_secs(30), move || {
            Ok(kill_process_tree(postmaster, watchdog))
        })
        .await
        .unwrap_or_default();
        cleanup::set_postmaster(self.registration, None);
        children
    }

    /// Ends the cluster: kills the server and every process it started, waits (at most
    /// 5 s) until they are gone, removes its directory and lets go of its WAL archive
    /// ([`WalArchive::release`]), without blocking the runtime. Async code ends a
    /// cluster with this; dropping one is the last resort. Fails when a directory
    /// cannot be removed (it is left to the next run's sweep of stale directories then).
    pub async fn shutdown(mut self) -> Result<(), PgError> {
        let children = self.kill_server().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while any_lives(&children).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let removed = match self.root.take() {
            Some(root) => {
                let what = format!(
                    "cannot remove the cluster's directory {}",
                    root.path().display()
                );
                let data = self.data.clone();
                off_runtime(&what.clone(), PREPARE_LIMIT, move || {
                    cleanup::release_shared_memory(&data);
                    root.close().map_err(io(what))
                })
                .await
            }
            None => Ok(()),
        };
        let released = match self.archive.take() {
            Some(archive) => archive.release().await,
            None => Ok(()),
        };
        // `self` drops here: no server, no directory, no archive; it unregisters and
        // frees its port.
        removed.and(released)
    }

    /// The postmaster has exited (or is about to be restarted): its watchdog goes.
    fn forget_postmaster(&mut self) {
        self.postmaster = None;
        if let Some(watchdog) = self.watchdog.take() {
            end_watchdog(watchdog);
        }
        cleanup::set_postmaster(self.registration, None);
    }

    /// The arguments that point a client program (`psql`, `pgbench`) at this cluster.
    pub fn client_args(&self) -> Vec<String> {
        vec![
            format!("--host={}", self.host),
            format!("--port={}", self.port),
            "--username=postgres".to_owned(),
        ]
    }

    /// Runs one of the server's programs (e.g. `pgbench`) as the server's user and
    /// returns what it printed; fails with its output when it fails.
    pub async fn run_program(&self, program: &str, args: &[String]) -> Result<String, PgError> {
        run(self
            .run_as
            .command(self.binaries.program(program)?)
            .args(args)
            .current_dir(self.data.parent().unwrap_or(Path::new("/"))))
        .await
    }

    /// Takes a base backup with `pg_basebackup`, streaming the WAL it needs.
    pub async fn base_backup(&self) -> Result<BaseBackup, PgError> {
        self.take_backup(false).await
    }

    /// Takes a base backup set up to start as a streaming replica of this cluster.
    pub async fn replica_backup(&self) -> Result<BaseBackup, PgError> {
        self.take_backup(true).await
    }

    async fn take_backup(&self, replica: bool) -> Result<BaseBackup, PgError> {
        if self.postmaster.is_none() {
            return Err(PgError::State {
                state: "stopped",
                operation: "take a base backup".to_owned(),
            });
        }
        let (binaries, run_as, connection) =
            (self.binaries.clone(), self.run_as, self.connection_string());
        let (root, data, mut command) =
            off_runtime("preparing a base backup", PREPARE_LIMIT, move || {
                basebackup_command(&binaries, run_as, &connection)
            })
            .await?;
        if replica {
            command.arg("--write-recovery-conf");
        }
        if let Err(error) = run(&mut command).await {
            remove_directory(root).await;
            return Err(error);
        }
        Ok(BaseBackup {
            binaries: self.binaries.clone(),
            run_as: self.run_as,
            root,
            data,
            archive: self.archive.clone(),
        })
    }

    /// The current WAL insert position.
    pub async fn current_lsn(&self) -> Result<PgLsn, PgError> {
        let client = self.connect().await?;
        let row = client
            .query_one("SELECT pg_current_wal_lsn()", &[])
            .await
            .map_err(sql("reading the WAL position"))?;
        Ok(row.get(0))
    }

    /// Closes the current WAL segment so that it is archived.
    pub async fn switch_wal(&self) -> Result<(), PgError> {
        let client = self.connect().await?;
        client
            .batch_execute("SELECT pg_switch_wal()")
            .await
            .map_err(sql("switching the WAL segment"))
    }

    /// Closes the current WAL segment and waits (at most `timeout`) until the archiver
    /// has archived it, so that a recovery from the archive can reach every change made
    /// so far.
    ///
    /// It writes a WAL record first, so that the switch is never a no-op, takes the name
    /// of the segment the switch closed, and waits until `pg_stat_archiver` reports that
    /// segment (or a later one) as archived. A timeout names the segment and shows the
    /// archiver's failures (count, last failed segment and time).
    pub async fn archive_current_wal(&self, timeout: Duration) -> Result<(), PgError> {
        let client = self.connect().await?;
        // A non-transactional logical message is a WAL record of its own: the segment
        // holds something new, so the switch below closes it.
        let row = client
            .query_one(
                "SELECT pg_walfile_name(pg_switch_wal()) \
                 FROM (SELECT pg_logical_emit_message(false, 'stormchor', 'archive')) AS forced",
                &[],
            )
            .await
            .map_err(sql("switching the WAL segment"))?;
        let segment: String = row.get(0);
        let client = &client;
        let wanted = segment.as_str();
        let waited = self
            .poll(
                &format!("the archiver archiving WAL segment {segment}"),
                timeout,
                move || async move {
                    let row = client
                        .query_one("SELECT last_archived_wal FROM pg_stat_archiver", &[])
                        .await
                        .map_err(sql("reading the archiver's progress"))?;
                    let last: Option<String> = row.get(0);
                    Ok(last.is_some_and(|last| archived_at_least(&last, wanted)))
                },
            )
            .await;
        match waited {
            Err(PgError::Timeout { what, waited, log }) => {
                let failures = client
                    .query_one(
                        "SELECT failed_count, last_failed_wal, last_failed_time::text, \
                         last_archived_wal FROM pg_stat_archiver",
                        &[],
                    )
                    .await
                    .map(|row| {
                        let failed: i64 = row.get(0);
                        let last_failed: Option<String> = row.get(1);
                        let failed_at: Option<String> = row.get(2);
                        let archived: Option<String> = row.get(3);
                        format!(
                            "; the archiver archived up to {}, failed {failed} times (last: {} at {})",
                            archived.as_deref().unwrap_or("nothing"),
                            last_failed.as_deref().unwrap_or("none"),
                            failed_at.as_deref().unwrap_or("never"),
                        )
                    })
                    .unwrap_or_else(|e| format!("; the archiver's state is unknown ({e})"));
                Err(PgError::Timeout {
                    what: what + &failures,
                    waited,
                    log,
                })
            }
            other => other,
        }
    }

    /// Waits (at most `timeout`) until a replica has replayed the WAL up to `lsn`.
    pub async fn wait_for_replay(&self, lsn: PgLsn, timeout: Duration) -> Result<(), PgError> {
        let client = &self.connect().await?;
        self.poll(
            &format!("replay up to {lsn}"),
            timeout,
            move || async move {
                let row = client
                    .query_one("SELECT pg_last_wal_replay_lsn()", &[])
                    .await
                    .map_err(sql("reading the replay position"))?;
                let replayed: Option<PgLsn> = row.get(0);
                Ok(replayed.is_some_and(|r| u64::from(r) >= u64::from(lsn)))
            },
        )
        .await
    }

    /// Waits (at most `timeout`) until the server has left recovery.
    pub async fn wait_until_primary(&self, timeout: Duration) -> Result<(), PgError> {
        self.poll("the end of recovery", timeout, || async {
            // The server may not accept connections yet: that is "not yet", not an error.
            let Ok(client) = self.connect().await else {
                return Ok(false);
            };
            Ok(client
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .is_ok_and(|row| !row.get::<_, bool>(0)))
        })
        .await
    }

    /// Checks `done` every 20 ms until it says yes, for at most `timeout`; a timeout
    /// names `what` and shows the end of the server log.
    async fn poll<F: Future<Output = Result<bool, PgError>>>(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut() -> F,
    ) -> Result<(), PgError> {
        let deadline = Instant::now() + timeout;
        while !done().await? {
            check_interrupted(&format!("waiting for {what}"))?;
            if Instant::now() >= deadline {
                return Err(PgError::Timeout {
                    what: what.to_owned(),
                    waited: timeout,
                    log: self.log_tail().await,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Promotes a replica to a primary and waits until it accepts writes.
    pub async fn promote(&self) -> Result<(), PgError> {
        let client = self.connect().await?;
        client
            .batch_execute("SELECT pg_promote(true, 60)")
            .await
            .map_err(sql("promoting the replica"))?;
        self.wait_until_primary(Duration::from_secs(60)).await
    }
}

/// The last resort: a cluster dropped without [`shutdown`](PgCluster::shutdown) (a
/// panic, an early return) is killed and its directory removed here, blocking the
/// dropping thread for as long as that takes (at most ~5 s for the processes, then the
/// removal). A cluster that was shut down has nothing left to do here.
impl Drop for PgCluster {
    fn drop(&mut self) {
        let children = self.kill_now();
        cleanup::unregister(self.registration);
        if self.port_reserved {
            release_port(self.port);
        }
        // The children die with SIGKILL at once; give them a moment to be gone before
        // their directory is removed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while children
            .iter()
            .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.root.is_some() {
            cleanup::release_shared_memory(&self.data);
        }
        drop(self.root.take());
    }
}

/// Whether the archiver's `last` archived file covers WAL segment `segment`: a segment
/// name (24 hex digits: timeline, log, segment) orders as the WAL does, and a backup
/// history file (`<segment>.<offset>.backup`) comes after its segment. A timeline
/// history file (`00000002.history`) says nothing about segments.
fn archived_at_least(last: &str, segment: &str) -> bool {
    let name = last.get(..24).unwrap_or("");
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit()) && name >= segment
}

/// Ends `watchdog` (first: it must not act on a process group that is gone), SIGKILLs
/// `postmaster`, its process group and its children, and reaps it; returns the
/// children's pids. It blocks.
fn kill_process_tree(mut postmaster: Child, watchdog: Option<Child>) -> Vec<i32> {
    if let Some(watchdog) = watchdog {
        end_watchdog(watchdog);
    }
    let pid = postmaster.id() as i32;
    let children = children_of(pid);
    let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    for child in &children {
        let _ = kill(Pid::from_raw(*child), Signal::SIGKILL);
    }
    let _ = postmaster.wait();
    children
}

/// Whether any of `pids` still runs (its `/proc` entry is read without blocking).
async fn any_lives(pids: &[i32]) -> bool {
    for pid in pids {
        if let Ok(stat) = tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await {
            if stat_says_alive(&stat) {
                return true;
            }
        }
    }
    false
}

/// Removes a directory of this crate's on a blocking thread (an error path that did
/// not get as far as a cluster or a backup); what cannot be removed is left to the
/// next run's sweep.
async fn remove_directory(root: TempDir) {
    let _ = remove_owned_directory(root, "a directory").await;
}

/// Removes `root`, a directory of this crate's that holds `what`, on a blocking
/// thread, its owner file last (see the `cleanup` module); fails, naming it, when
/// something is left (the owner file stays then, for the next run's sweep).
async fn remove_owned_directory(root: TempDir, what: &str) -> Result<(), PgError> {
    let failed = format!(
        "cannot remove the directory of {what}, {}",
        root.path().display()
    );
    let error = failed.clone();
    off_runtime(&failed, PREPARE_LIMIT, move || {
        let path = root.keep();
        if cleanup::remove_owned(&path) {
            Ok(())
        } else {
            Err(PgError::Io {
                what: error,
                source: std::io::Error::other("something in it could not be removed"),
            })
        }
    })
    .await
}

/// The processes whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|candidate| {
            fs::read_to_string(format!("/proc/{candidate}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces; the parent pid follows ") S ".
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn sql(what: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    let what = what.to_owned();
    move |source| PgError::Sql { what, source }
}

/// A base backup taken with `pg_basebackup`, in a temporary directory.
///
/// [`remove`](BaseBackup::remove) removes the directory without blocking the runtime:
/// async code ends a backup with it (or starts a cluster from it, which takes the
/// directory over). Dropping a backup removes the directory too, but blocks the
/// dropping thread: that is the last resort (a panic, an early return).
///
/// # Example
/// ```no_run
/// use stormchor_postgres::{BaseBackup, ClusterOptions, PgCluster};
///
/// # async fn demo() -> Result<(), stormchor_postgres::PgError> {
/// let primary = PgCluster::start(ClusterOptions::default()).await?;
/// let backup = BaseBackup::take(&primary.connection_string(), false, None).await?;
/// backup.verify().await?;
/// backup.remove().await?; // its directory goes
/// primary.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BaseBackup {
    binaries: PgBinaries,
    run_as: RunAs,
    root: TempDir,
    data: PathBuf,
    archive: Option<Arc<WalArchive>>,
}

impl BaseBackup {
    /// Takes a base backup with `pg_basebackup` of the server at `connection_string`
    /// (any server this machine reaches, not only a cluster of this process),
    /// streaming the WAL it needs; with `replica`, set up to start as a streaming
    /// replica of it. `binaries` are found with [`PgBinaries::locate`] when `None`.
    pub async fn take(
        connection_string: &str,
        replica: bool,
        binaries: Option<PgBinaries>,
    ) -> Result<BaseBackup, PgError> {
        let (binaries, run_as, root, data, mut command) =
            prepare_backup(binaries, connection_string).await?;
        if replica {
            command.arg("--write-recovery-conf");
        }
        if let Err(error) = run(&mut command).await {
            remove_directory(root).await;
            return Err(error);
        }
        Ok(BaseBackup {
            binaries,
            run_as,
            root,
            data,
            archive: None,
        })
    }

    /// Removes the backup's directory (its owner file last) and lets go of its WAL
    /// archive ([`WalArchive::release`]), without blocking the runtime. Fails when
    /// something is left (the next run's sweep of stale directories removes it).
    pub async fn remove(self) -> Result<(), PgError> {
        let BaseBackup { root, archive, .. } = self;
        let removed = remove_owned_directory(root, "a base backup").await;
        let released = match archive {
            Some(archive) => archive.release().await,
            None => Ok(()),
        };
        removed.and(released)
    }

    /// The backup's directory.
    pub fn path(&self) -> &Path {
        &self.data
    }

    /// Checks the backup against its manifest with `pg_verifybackup`.
    pub async fn verify(&self) -> Result<String, PgError> {
        run(self
            .run_as
            .command(self.binaries.program("pg_verifybackup")?)
            .arg(&self.data)
            .current_dir(self.root.path()))
        .await
    }

    /// A copy of the backup in a new directory, so that one backup can be restored
    /// more than once (each restore consumes its copy).
    pub async fn duplicate(&self) -> Result<BaseBackup, PgError> {
        let run_as = self.run_as;
        let root = off_runtime("preparing a copy of a backup", PREPARE_LIMIT, move || {
            run_as.temp_dir("stormchor-backup-")
        })
        .await?;
        let data = root.path().join("data");
        let copied = run(self
            .run_as
            .command("cp")
            .arg("-a")
            .arg(&self.data)
            .arg(&data)
            .current_dir(root.path()))
        .await;
        if let Err(error) = copied {
            remove_directory(root).await;
            return Err(error);
        }
        Ok(BaseBackup {
            binaries: self.binaries.clone(),
            run_as: self.run_as,
            root,
            data,
            archive: self.archive.clone(),
        })
    }

    /// Starts a cluster from the backup, on a new port. A replica backup starts as a
    /// streaming replica; any other backup recovers to its end and becomes a primary.
    pub async fn start(self, mut options: ClusterOptions) -> Result<PgCluster, PgError> {
        let BaseBackup {
            binaries,
            run_as,
            root,
            data,
            archive,
        } = self;
        let archive = match (options.archive.take(), archive) {
            (Some(given), Some(own)) => {
                // The cluster archives where it is told; the backup's own archive is
                // let go of here (what cannot be removed is left to the next run's
                // sweep).
                let _ = own.release().await;
                Some(given)
            }
            (given, own) => given.or(own),
        };
        let options = ClusterOptions {
            binaries: Some(binaries.clone()),
            archive,
            ..options
        };
        PgCluster::start_from_parts(binaries, run_as, root, data, options).await
    }

    /// Starts a cluster from the backup and replays archived WAL up to `target`, then
    /// promotes it. The backup must come from a cluster that archives into the
    /// directory `archive` (a [`WalArchive`] or its path).
    pub async fn restore_to(
        self,
        target: RecoveryTarget,
        archive: impl AsRef<Path>,
        options: ClusterOptions,
    ) -> Result<PgCluster, PgError> {
        let archive = archive.as_ref();
        let signal = self.data.join("recovery.signal");
        let run_as = self.run_as;
        let written = off_runtime("writing recovery.signal", PREPARE_LIMIT, move || {
            fs::write(&signal, b"").map_err(io("cannot write recovery.signal"))?;
            run_as.own(&signal)
        })
        .await;
        if let Err(error) = written {
            let _ = self.remove().await;
            return Err(error);
        }
        let mut settings = options.settings.clone();
        settings.push((
            "restore_command".to_owned(),
            format!("cp {}/%f %p", archive.display()),
        ));
        match &target {
            RecoveryTarget::Lsn(lsn) => {
                settings.push(("recovery_target_lsn".to_owned(), lsn.to_string()))
            }
            RecoveryTarget::Time(time) => {
                settings.push(("recovery_target_time".to_owned(), time.clone()))
            }
            RecoveryTarget::Name(name) => {
                settings.push(("recovery_target_name".to_owned(), name.clone()))
            }
            RecoveryTarget::Xid(xid) => {
                settings.push(("recovery_target_xid".to_owned(), xid.clone()))
            }
            RecoveryTarget::Immediate => {
                settings.push(("recovery_target".to_owned(), "immediate".to_owned()))
            }
        }
        settings.push(("recovery_target_action".to_owned(), "promote".to_owned()));
        // Stay on the backup's timeline: another restore of the same archive may have
        // started a new timeline that branched off before the target.
        settings.push(("recovery_target_timeline".to_owned(), "current".to_owned()));
        // The restored cluster must not archive into the archive it restores from: its
        // new timeline would lead the next restore astray. The backup's hold on that
        // archive lasts until the recovery is over, then it is let go of.
        let mut backup = self;
        let held = backup.archive.take();
        let restored = match backup
            .start(ClusterOptions {
                settings,
                archive: None,
                ..options
            })
            .await
        {
            Ok(cluster) => match cluster.wait_until_primary(Duration::from_secs(120)).await {
                Ok(()) => Ok(cluster),
                Err(error) => {
                    let _ = cluster.shutdown().await;
                    Err(error)
                }
            },
            Err(error) => Err(error),
        };
        if let Some(held) = held {
            let _ = held.release().await;
        }
        restored
    }
}

impl BaseBackup {
    /// Starts taking a base backup of the server at `connection_string` like
    /// [`take`](BaseBackup::take), with `pg_basebackup` running in the background,
    /// sending at most `max_rate_kb` kB/s of data files when given (32 to 1048576, as
    /// `--max-rate` takes), and keeping whatever it wrote if it fails (`--no-clean`), so
    /// that an interrupted backup can be inspected. End it with
    /// [`BackupInProgress::finish`].
    pub async fn begin(
        connection_string: &str,
        max_rate_kb: Option<u32>,
        binaries: Option<PgBinaries>,
    ) -> Result<BackupInProgress, PgError> {
        let (binaries, run_as, root, data, mut command) =
            prepare_backup(binaries, connection_string).await?;
        // What it wrote stays when it fails, so that an interrupted backup can be inspected.
        command.arg("--no-clean");
        if let Some(rate) = max_rate_kb {
            command.arg(format!("--max-rate={rate}"));
        }
        let line = format!("{command:?}");
        let spawned = tokio::process::Command::from(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                remove_directory(root).await;
                return Err(io(format!("cannot run {line}"))(error));
            }
        };
        Ok(BackupInProgress {
            backup: BaseBackup {
                binaries,
                run_as,
                root,
                data,
                archive: None,
            },
            child,
            line,
        })
    }
}

/// A base backup being taken: `pg_basebackup` running in the background (made by
/// [`BaseBackup::begin`]). End it with [`finish`](BackupInProgress::finish), or with
/// [`remove`](BackupInProgress::remove), which kills `pg_basebackup` and removes what
/// it wrote without blocking the runtime. Dropping it kills `pg_basebackup` (not the
/// WAL streamer it forked) and removes the directory blocking the dropping thread:
/// that is the last resort.
#[derive(Debug)]
pub struct BackupInProgress {
    backup: BaseBackup,
    child: tokio::process::Child,
    line: String,
}

impl BackupInProgress {
    /// The directory the backup is written to.
    pub fn path(&self) -> &Path {
        self.backup.path()
    }

    /// Whether `pg_basebackup` has ended (without waiting).
    pub fn has_ended(&mut self) -> Result<bool, PgError> {
        self.child
            .try_wait()
            .map(|status| status.is_some())
            .map_err(io(format!("cannot wait for {}", self.line)))
    }

    /// Kills `pg_basebackup` and its process group (it streams WAL from a child of its
    /// own), waits (at most 5 s) until they are gone, and removes what it wrote
    /// ([`BaseBackup::remove`]), without blocking the runtime.
    pub async fn remove(self) -> Result<(), PgError> {
        let BackupInProgress {
            backup,
            mut child,
            line,
        } = self;
        // Not reaped yet, so its pid (and process group) is still this child's.
        let killed = match child.id() {
            Some(pid) => {
                let pid = pid as i32;
                off_runtime(&format!("killing {line}"), PREPARE_LIMIT, move || {
                    cleanup::kill_group(pid);
                    Ok(())
                })
                .await
            }
            None => Ok(()),
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let removed = backup.remove().await;
        killed.and(removed)
    }

    /// Waits (at most `within`; then it is killed) until `pg_basebackup` ends, and
    /// gives back the backup (whatever it wrote, when it failed) with its outcome.
    pub async fn finish(self, within: Duration) -> (BaseBackup, Result<(), PgError>) {
        let BackupInProgress {
            backup,
            child,
            line,
        } = self;
        let outcome = match tokio::time::timeout(within, child.wait_with_output()).await {
            Err(_) => Err(PgError::Timeout {
                what: format!("{line} ending"),
                waited: within,
                log: String::new(),
            }),
            Ok(Err(e)) => Err(io(format!("cannot wait for {line}"))(e)),
            Ok(Ok(output)) if output.status.success() => Ok(()),
            Ok(Ok(output)) => Err(PgError::Command {
                command: line,
                status: output.status.to_string(),
                output: tail(
                    &format!(
                        "{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    ),
                    20,
                ),
            }),
        };
        (backup, outcome)
    }
}

/// `pg_basebackup` of the server at `connection` into a new directory, WAL streamed,
/// as `run_as`: the directory, its `data` path, and the command to add to and run.
/// The programs (found when `binaries` is `None`), the servers' user, and
/// [`basebackup_command`]'s directory and command, made on a blocking thread.
async fn prepare_backup(
    binaries: Option<PgBinaries>,
    connection_string: &str,
) -> Result<(PgBinaries, RunAs, TempDir, PathBuf, Command), PgError> {
    let connection_string = connection_string.to_owned();
    off_runtime("preparing a base backup", PREPARE_LIMIT, move || {
        let binaries = match binaries {
            Some(binaries) => binaries,
            None => PgBinaries::locate()?,
        };
        let run_as = RunAs::detect()?;
        let (root, data, command) = basebackup_command(&binaries, run_as, &connection_string)?;
        Ok((binaries, run_as, root, data, command))
    })
    .await
}

fn basebackup_command(
    binaries: &PgBinaries,
    run_as: RunAs,
    connection: &str,
) -> Result<(TempDir, PathBuf, Command), PgError> {
    let root = run_as.temp_dir("stormchor-backup-")?;
    let data = root.path().join("data");
    let mut command = run_as.command(binaries.program("pg_basebackup")?);
    command
        .args(["--wal-method=stream", "--checkpoint=fast", "--no-sync"])
        .arg(format!("--dbname={connection}"))
        .arg("--pgdata")
        .arg(&data)
        .current_dir(root.path());
    Ok((root, data, command))
}

/// The server a test runs against: a throwaway cluster it controls, or an external
/// server given by a connection string, where process control is unavailable.
#[derive(Debug)]
pub enum PgTarget {
    /// A throwaway cluster.
    Throwaway(PgCluster),
    /// An external server.
    External(String),
}

impl PgTarget {
    /// The server a run works on: the one `target` names (a connection string, as
    /// `--target` gives it), else a throwaway cluster started with `options`. End it
    /// with [`shutdown`](PgTarget::shutdown).
    pub async fn resolve(target: Option<&str>, options: ClusterOptions) -> Result<Self, PgError> {
        match target {
            Some(connection) => Ok(PgTarget::External(connection.to_owned())),
            None => Ok(PgTarget::Throwaway(PgCluster::start(options).await?)),
        }
    }

    /// A connection string for the server.
    pub fn connection_string(&self) -> String {
        match self {
            PgTarget::Throwaway(cluster) => cluster.connection_string(),
            PgTarget::External(connection) => connection.clone(),
        }
    }

    /// A new connection.
    pub async fn connect(&self) -> Result<Client, PgError> {
        connect(&self.connection_string()).await
    }

    /// Ends a throwaway cluster ([`PgCluster::shutdown`]); an external server is left as
    /// it is.
    pub async fn shutdown(self) -> Result<(), PgError> {
        match self {
            PgTarget::Throwaway(cluster) => cluster.shutdown().await,
            PgTarget::External(_) => Ok(()),
        }
    }

    /// The cluster, for process control; an external server says it has none.
    pub fn cluster(&mut self, operation: &str) -> Result<&mut PgCluster, PgError> {
        match self {
            PgTarget::Throwaway(cluster) => Ok(cluster),
            PgTarget::External(connection) => Err(PgError::NoProcessControl {
                operation: operation.to_owned(),
                target: connection.clone(),
            }),
        }
    }
}

/// Whether a `/proc/PID/stat` text is of a process that still runs: it is not a
/// zombie (a killed child of the postmaster is reaped by init, which may take its time;
/// as a zombie it holds no port, no shared memory and no file).
fn stat_says_alive(stat: &str) -> bool {
    // The state follows the command name, which is in parentheses and may hold spaces
    // or parentheses of its own.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_none_or(|state| state != "Z")
}

#[cfg(test)]
mod tests {
    use super::archived_at_least;

    #[test]
    fn the_archived_segment_is_compared_as_wal_orders_it() {
        let segment = "000000010000000000000005";
        assert!(archived_at_least("000000010000000000000005", segment));
        assert!(archived_at_least("000000010000000100000000", segment));
        assert!(archived_at_least(
            "000000010000000000000005.00000028.backup",
            segment
        ));
        assert!(!archived_at_least("000000010000000000000004", segment));
        assert!(!archived_at_least(
            "000000010000000000000004.00000028.backup",
            segment
        ));
        assert!(!archived_at_least("00000002.history", segment));
        assert!(!archived_at_least("", segment));
    }
}
