//! Nothing left behind: the servers and directories of this process, whatever ends it.
//!
//! - Every directory stormchor creates (clusters, backups, WAL archives) is named
//!   `stormchor-*` in the temporary directory and holds an owner file naming this
//!   process (pid and start time). The first directory a process creates sweeps the
//!   ones whose owner is dead (a SIGKILLed run): their servers are killed, the
//!   directories removed ([`remove_stale_directories`]).
//! - Every server program runs in a process group of its own, so a Ctrl-C in the
//!   terminal (SIGINT to the terminal's process group) reaches stormchor only, which
//!   stops the run in order.
//! - Every postmaster has a watchdog: a small `sh` process, in a process group of its
//!   own too, that waits for end-of-file on a pipe only this process holds the writing
//!   end of. When this process dies in any way (SIGKILL included), the kernel closes
//!   that end, and the watchdog SIGKILLs the postmaster's process group. (A
//!   parent-death signal would need code between fork and exec, which this crate does
//!   not allow itself, and fires when the forking *thread* ends, not the process.)
//! - [`interrupt`] makes the server programs in flight (`pg_basebackup`, ...) and the
//!   cluster's waits end at once with [`PgError::Interrupted`]; [`remove_all_clusters_now`]
//!   kills every server of this process and removes every directory it owns.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::cluster::PgError;
use super::sync::lock;

/// The name every stormchor directory starts with, in the temporary directory.
pub const DIRECTORY_PREFIX: &str = "stormchor-";

/// The file in each stormchor directory that names its owner: `PID START_TIME`.
pub const OWNER_FILE: &str = "stormchor.owner";

/// The clusters alive in this process: their directory and their postmaster's pid
/// while it runs.
static LIVE: Mutex<BTreeMap<u64, (PathBuf, Option<i32>)>> = Mutex::new(BTreeMap::new());
static NEXT_CLUSTER: AtomicU64 = AtomicU64::new(1);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INTERRUPT: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub(crate) fn register(root: &Path) -> u64 {
    let id = NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed);
    live(|clusters| {
        clusters.insert(id, (root.to_path_buf(), None));
    });
    id
}

pub(crate) fn set_postmaster(id: u64, pid: Option<i32>) {
    live(|clusters| {
        if let Some(entry) = clusters.get_mut(&id) {
            entry.1 = pid;
        }
    });
}

pub(crate) fn unregister(id: u64) {
    live(|clusters| {
        clusters.remove(&id);
    });
}

pub(crate) fn registrations() -> u64 {
    NEXT_CLUSTER.load(Ordering::Relaxed)
}

fn live(update: impl FnOnce(&mut BTreeMap<u64, (PathBuf, Option<i32>)>)) {
    update(&mut lock(&LIVE));
}

/// Ends every server program in flight (with [`PgError::Interrupted`]) and every wait
/// of a cluster (a start, an archiver or replay wait) at once, now and from now on: for
/// a run that was told to stop (SIGINT, SIGTERM, SIGHUP) and must not wait for a backup
/// or a timeout before it cleans up.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    INTERRUPT.notify_waiters();
}

/// Whether [`interrupt`] was called.
pub fn is_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Resolves once [`interrupt`] is called (at once if it was).
pub(crate) async fn interrupted() {
    loop {
        let notified = INTERRUPT.notified();
        if is_interrupted() {
            return;
        }
        notified.await;
    }
}

/// Fails with [`PgError::Interrupted`] once [`interrupt`] was called.
pub(crate) fn check_interrupted(what: &str) -> Result<(), PgError> {
    if is_interrupted() {
        Err(PgError::Interrupted {
            what: what.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Makes SIGINT, SIGTERM and SIGHUP kill every cluster of this process and remove its
/// directories before the process exits with status 128 + the signal's number. Call it
/// once from a tokio runtime, early; later calls do nothing. (The `stormchor` command
/// handles these signals itself, to stop a run in order first.)
pub fn remove_clusters_on_ctrl_c() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        tokio::spawn(async {
            let number = first_signal().await;
            remove_all_clusters_now();
            std::process::exit(128 + number);
        });
    });
}

/// Waits for the first SIGINT, SIGTERM or SIGHUP and returns its number.
pub async fn first_signal() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::hangup(), Signal::SIGHUP),
    ];
    let mut streams = Vec::new();
    for (kind, number) in kinds {
        if let Ok(stream) = signal(kind) {
            streams.push((stream, number));
        }
    }
    if streams.is_empty() {
        return std::future::pending().await;
    }
    let waits = streams.iter_mut().map(|(stream, number)| {
        let number = *number as i32;
        Box::pin(async move {
            stream.recv().await;
            number
        })
    });
    futures::future::select_all(waits).await.0
}

/// Kills every server of this process and removes every directory it owns, at once.
/// For a process about to exit without unwinding (a second signal, a fatal error); the
/// `PgCluster` values left behind must not be used afterwards.
pub fn remove_all_clusters_now() {
    interrupt();
    let clusters: Vec<(PathBuf, Option<i32>)> = lock(&LIVE).values().cloned().collect();
    for (_, pid) in &clusters {
        if let Some(pid) = pid {
            kill_group(*pid);
        }
    }
    for (root, _) in &clusters {
        release_shared_memory_in(root);
        remove_owned(root);
    }
    // Backups and archives are not clusters: remove every directory this process owns.
    sweep(|owner| owner == Owner::me());
}

/// Removes the stormchor directories whose owner process is gone (a run that was
/// SIGKILLed, or a machine that rebooted), killing any server still running in them.
/// Runs once per process by itself, before the first directory is created; returns
/// the directories removed.
pub fn remove_stale_directories() -> Vec<PathBuf> {
    sweep(|owner| !owner.is_alive())
}

pub(crate) fn remove_stale_directories_once() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| {
        remove_stale_directories();
    });
}

/// Writes the owner file into a new directory.
pub(crate) fn mark_owned(dir: &Path) -> Result<(), PgError> {
    let me = Owner::me();
    fs::write(dir.join(OWNER_FILE), format!("{} {}\n", me.pid, me.started)).map_err(|source| {
        PgError::Io {
            what: format!("cannot write the owner file in {}", dir.display()),
            source,
        }
    })
}

/// A new temporary directory `$TMPDIR/<prefix>XXXXXX` with an owner file, for anything
/// a run keeps on disk (SQL logs, reports in the making): removed when dropped, by
/// [`remove_all_clusters_now`], or by the next run if this process dies. `prefix`
/// must start with [`DIRECTORY_PREFIX`].
///
/// # Example
/// ```
/// let logs = stormchor_postgres::owned_temp_dir("stormchor-logs-").expect("created");
/// assert!(logs.path().join(stormchor_postgres::OWNER_FILE).is_file());
/// ```
pub fn owned_temp_dir(prefix: &str) -> Result<tempfile::TempDir, PgError> {
    if !prefix.starts_with(DIRECTORY_PREFIX) {
        return Err(PgError::State {
            state: "misconfigured",
            operation: format!(
                "create a directory named {prefix:?}: its name must start with {DIRECTORY_PREFIX:?}"
            ),
        });
    }
    remove_stale_directories_once();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| PgError::Io {
            what: "cannot create a temporary directory".to_owned(),
            source,
        })?;
    mark_owned(dir.path())?;
    Ok(dir)
}

/// Removes the stormchor directories whose owner file satisfies `remove`.
fn sweep(remove: impl Fn(Owner) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(DIRECTORY_PREFIX));
        if !is_ours || !path.is_dir() {
            continue;
        }
        // A directory without an owner file is being created, or is not ours to judge.
        let Some(owner) = fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|text| Owner::parse(&text))
        else {
            continue;
        };
        if !remove(owner) {
            continue;
        }
        kill_servers_in(&path);
        release_shared_memory_in(&path);
        if remove_owned(&path) {
            removed.push(path);
        }
    }
    removed
}

/// Removes a directory of ours, its owner file last: when something is still being
/// written in it (an `initdb` the signal has not reached yet) and it cannot go whole,
/// the owner file stays, so that the next run removes the rest once this process is
/// gone. Whether the directory is gone.
pub(crate) fn remove_owned(root: &Path) -> bool {
    let others = |root: &Path| -> Vec<PathBuf> {
        fs::read_dir(root)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name() != OWNER_FILE)
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    for path in others(root) {
        let _ = if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
    if !others(root).is_empty() {
        return false;
    }
    if fs::remove_dir_all(root).is_ok() {
        return true;
    }
    // Something wrote in it meanwhile, after the owner file went: put one back, so that
    // the next run removes the rest.
    if root.exists() {
        let _ = mark_owned(root);
    }
    false
}

/// Removes the System V shared memory segment of the server of data directory `data`
/// (its id is on the seventh line of `postmaster.pid`). A server ended with SIGKILL
/// leaves that segment behind, and the kernel's table of them is small (4,096 by
/// default): once it is full no PostgreSQL on the machine starts ("could not create
/// shared memory segment"). A server that stopped cleanly removed its own segment and
/// its `postmaster.pid`, so there is nothing to do then.
pub(crate) fn release_shared_memory(data: &Path) {
    let Some(id) = fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|text| {
            text.lines()
                .nth(6)?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
    else {
        return;
    };
    let _ = Command::new("ipcrm")
        .args(["-m", &id.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// [`release_shared_memory`] of every data directory directly in `root`.
pub(crate) fn release_shared_memory_in(root: &Path) {
    let Ok(dirs) = fs::read_dir(root) else {
        return;
    };
    for dir in dirs.flatten() {
        release_shared_memory(&dir.path());
    }
}

/// Kills the postmaster whose data directory is in `root`, if it still runs.
fn kill_servers_in(root: &Path) {
    let Ok(dirs) = fs::read_dir(root) else {
        return;
    };
    for dir in dirs.flatten() {
        let data = dir.path();
        let Some(pid) = fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
        else {
            continue;
        };
        // Only a process that runs in that directory: the pid may have been reused.
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let data = fs::canonicalize(&data).unwrap_or(data);
        if cwd.as_deref() == Some(data.as_path()) {
            kill_group(pid);
        }
    }
}

/// SIGKILLs the process group led by `pid` (a postmaster and its children) and waits
/// (at most 5 s) until they are gone.
pub(crate) fn kill_group(pid: i32) {
    let members = group_members(pid);
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while members.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The processes of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_field(*pid, 2).and_then(|g| g.parse().ok()) == Some(pgid))
        .collect()
}

/// Field `index` (0-based, after the command name: 0 is the state) of `/proc/PID/stat`.
fn stat_field(pid: i32, index: usize) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(index).map(str::to_owned)
}

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn is_alive(pid: i32) -> bool {
    stat_field(pid, 0).is_some_and(|state| state != "Z")
}

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    pid: i32,
    started: u64,
}

impl Owner {
    fn me() -> Owner {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            started: Owner::start_time(pid).unwrap_or(0),
        }
    }

    fn start_time(pid: i32) -> Option<u64> {
        // Field 22 of stat (1-based), 19 after the state.
        stat_field(pid, 19)?.parse().ok()
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut parts = text.split_whitespace();
        Some(Owner {
            pid: parts.next()?.parse().ok()?,
            started: parts.next()?.parse().ok()?,
        })
    }

    fn is_alive(self) -> bool {
        is_alive(self.pid) && Owner::start_time(self.pid) == Some(self.started)
    }
}

/// Starts the watchdog of the postmaster `pid` (the leader of its process group): it
/// kills the group when this process dies. Dropping the returned child's stdin (or
/// this process ending) sets it off; [`end_watchdog`] stops it without that.
pub(crate) fn start_watchdog(pid: i32) -> Result<Child, PgError> {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .args([
            "-c",
            "read -r _; kill -s KILL -- -\"$1\" 2>/dev/null",
            "stormchor-watchdog",
        ])
        .arg(pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| PgError::Io {
            what: "cannot start the watchdog of the server (sh)".to_owned(),
            source,
        })
}

/// Stops a watchdog without letting it act.
pub(crate) fn end_watchdog(mut watchdog: Child) {
    let _ = watchdog.kill();
    let _ = watchdog.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_being_written_keeps_its_owner_file_until_it_can_go_whole() {
        for _ in 0..20 {
            let root = tempfile::Builder::new()
                .prefix("stormchor-test-owned-")
                .tempdir()
                .expect("dir")
                .keep();
            mark_owned(&root).expect("owner");
            fs::create_dir_all(root.join("data/base")).expect("data");
            fs::write(root.join("data/base/1"), "x").expect("file");
            // Something (an initdb the signal has not reached) keeps writing there.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = std::thread::spawn({
                let (root, stop) = (root.clone(), stop.clone());
                move || {
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000 {
                        let _ = fs::create_dir_all(root.join("data/global"));
                        let _ = fs::write(root.join(format!("data/global/{n}")), "y");
                        n += 1;
                    }
                }
            });
            let gone = remove_owned(&root);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().expect("writer");
            // Either it went whole, or the owner file is there for the next run.
            assert!(
                gone || root.join(OWNER_FILE).is_file(),
                "{} left without its owner file",
                root.display()
            );
            // Once nothing writes, it goes.
            if root.exists() {
                assert!(remove_owned(&root), "{}", root.display());
            }
            assert!(!root.exists());
        }
    }

    fn group_leader() -> Child {
        use std::os::unix::process::CommandExt;
        Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .expect("sleep")
    }

    fn exits_within(child: &mut Child, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn the_watchdog_kills_the_group_when_its_pipe_closes_and_not_when_ended() {
        // The pipe closes (as when this process dies): the group goes.
        let mut leader = group_leader();
        let mut watchdog = start_watchdog(leader.id() as i32).expect("watchdog");
        drop(watchdog.stdin.take());
        assert!(
            exits_within(&mut leader, Duration::from_secs(5)),
            "the watchdog did not kill the group"
        );
        let _ = watchdog.wait();
        // Ended first (a cluster stopped in order): the group stays.
        let mut leader = group_leader();
        end_watchdog(start_watchdog(leader.id() as i32).expect("watchdog"));
        assert!(
            !exits_within(&mut leader, Duration::from_millis(300)),
            "an ended watchdog killed the group"
        );
        let _ = leader.kill();
        let _ = leader.wait();
    }

    #[test]
    fn an_owner_is_alive_only_with_its_start_time() {
        let me = Owner::me();
        assert!(me.started > 0);
        assert!(me.is_alive());
        assert!(
            !Owner {
                started: me.started + 1,
                ..me
            }
            .is_alive()
        );
        assert_eq!(
            Owner::parse(&format!("{} {}\n", me.pid, me.started)),
            Some(me)
        );
        assert_eq!(Owner::parse("garbage"), None);
    }
}
