//! Signals end a run cleanly: SIGINT, SIGTERM and SIGHUP during the load and during a
//! base backup, a second SIGINT, a Ctrl-C to the whole process group, and SIGKILL
//! (the servers die with stormchor; the next run removes what it left).
//!
//! Each test runs the `stormchor` binary, waits until the run is in the phase (its
//! output, or a `pg_basebackup` child), sends the signal and checks: the exit status is
//! 128 + the signal's number, no PostgreSQL process runs in a directory of the run, and
//! no directory of the run is left.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// A running `stormchor`, in a process group of its own (as a terminal would start it),
/// with its output collected.
struct Run {
    child: Child,
    output: Arc<Mutex<String>>,
    /// Every directory the run was seen to own.
    dirs: BTreeSet<PathBuf>,
    /// Where the run makes its directories (its `TMPDIR`).
    tmp: PathBuf,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        Run::start_in(args, std::env::temp_dir())
    }

    /// A run that makes its directories in `tmp` (its `TMPDIR`), where only the runs
    /// given the same `tmp` look for stale directories of dead runs.
    fn start_in(args: &[&str], tmp: PathBuf) -> Run {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(env!("CARGO_BIN_EXE_stormchor"))
            .args(args)
            .env_remove("STORMCHOR_TARGET")
            .env("TMPDIR", &tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("runs");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut text = output.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        Run {
            child,
            output,
            dirs: BTreeSet::new(),
            tmp,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Remembers the directories the run owns now (their owner file names its pid).
    fn note_dirs(&mut self) {
        self.dirs.extend(owned_by(self.pid(), &self.tmp));
    }

    /// Polls `ready` (noting directories as it goes) for at most `within`; fails the
    /// test with the output when the run never gets there.
    fn wait_for(&mut self, what: &str, within: Duration, mut ready: impl FnMut(&Run) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            self.note_dirs();
            if ready(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the run ended ({status}) before {what}:\n{}", self.output());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{what} did not happen within {within:?}:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signal");
    }

    /// Waits (at most `within`) for the exit status.
    fn exit_code(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            self.note_dirs();
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the run did not exit within {within:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Nothing of the run is left: no server in its directories, no directory.
    fn assert_nothing_left(&self) {
        assert!(
            !self.dirs.is_empty(),
            "the run was seen to own no directory"
        );
        for dir in &self.dirs {
            let servers = postgres_in(dir);
            assert!(
                servers.is_empty(),
                "PostgreSQL processes {servers:?} still run in {}",
                dir.display()
            );
            assert!(!dir.exists(), "{} is left", dir.display());
        }
    }
}

/// The stormchor directories in `tmp` whose owner file names `pid`.
fn owned_by(pid: i32, tmp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("stormchor-"))
                && std::fs::read_to_string(path.join("stormchor.owner")).is_ok_and(|owner| {
                    owner.split_whitespace().next() == Some(pid.to_string().as_str())
                })
        })
        .collect()
}

fn processes() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

fn stat(pid: i32) -> Option<(String, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" {
        return None;
    }
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((name, parent, group))
}

/// The live PostgreSQL processes (postmasters, backends, pg_basebackup) whose working
/// directory or command line is in `dir`.
fn postgres_in(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    processes()
        .into_iter()
        .filter(|pid| stat(*pid).is_some())
        .filter(|pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.starts_with(dir));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle));
            cwd || cmdline
        })
        .collect()
}

/// The postmasters of the run (processes named `postgres` in its directories).
fn postmasters_of(run: &Run) -> Vec<i32> {
    run.dirs
        .iter()
        .flat_map(|dir| postgres_in(dir))
        .filter(|pid| {
            stat(*pid).is_some_and(|(name, parent, _)| name == "postgres" && parent == run.pid())
        })
        .collect()
}

/// Whether the run has a `pg_basebackup` child at work.
fn backing_up(run: &Run) -> bool {
    processes().into_iter().any(|pid| {
        stat(pid).is_some_and(|(name, parent, _)| name == "pg_basebackup" && parent == run.pid())
    })
}

fn in_load(run: &Run) -> bool {
    run.output().contains("Running tpcb:")
}

/// Runs tpcb, signals it during the load, checks the end.
fn during_load(signal: Signal) {
    let mut run = Run::start(&["run", "tpcb", "--duration", "30", "--json", "/dev/null"]);
    run.wait_for("the load", Duration::from_secs(120), in_load);
    // The servers are outside the run's process group: a Ctrl-C in a terminal (the
    // signal to the whole group) reaches stormchor only.
    let postmasters = postmasters_of(&run);
    assert!(
        !postmasters.is_empty(),
        "no postmaster found:\n{}",
        run.output()
    );
    for pid in &postmasters {
        let (_, _, group) = stat(*pid).expect("postmaster alive");
        assert_ne!(
            group,
            run.pid(),
            "the postmaster is in stormchor's process group"
        );
    }
    killpg(Pid::from_raw(run.pid()), signal).expect("signal the group");
    let code = run.exit_code(Duration::from_secs(60));
    let output = run.output();
    assert_eq!(code, 128 + signal as i32, "{output}");
    assert!(output.contains("INTERRUPTED by "), "{output}");
    // The load's report is still there: operations that succeeded before the signal.
    assert!(output.contains("| tpcb |"), "{output}");
    run.assert_nothing_left();
}

/// Runs backup-restore, signals it while pg_basebackup runs, checks that it stops at
/// once.
fn during_backup(signal: Signal) {
    let mut run = Run::start(&["run", "backup-restore", "--duration", "30"]);
    run.wait_for("a base backup", Duration::from_secs(120), backing_up);
    let sent = Instant::now();
    run.signal(signal);
    let code = run.exit_code(Duration::from_secs(60));
    let output = run.output();
    assert_eq!(code, 128 + signal as i32, "{output}");
    // No wait for the backup, the archiver or the load's end.
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "stopping took {:?}:\n{output}",
        sent.elapsed()
    );
    assert!(output.contains("INTERRUPTED by "), "{output}");
    run.assert_nothing_left();
}

#[test]
fn sigint_to_the_group_during_the_load_stops_the_run_cleanly() {
    during_load(Signal::SIGINT);
}

#[test]
fn sigterm_during_the_load_stops_the_run_cleanly() {
    during_load(Signal::SIGTERM);
}

#[test]
fn sighup_during_the_load_stops_the_run_cleanly() {
    during_load(Signal::SIGHUP);
}

#[test]
fn sigint_during_a_backup_stops_at_once() {
    during_backup(Signal::SIGINT);
}

#[test]
fn sigterm_during_a_backup_stops_at_once() {
    during_backup(Signal::SIGTERM);
}

#[test]
fn sighup_during_a_backup_stops_at_once() {
    during_backup(Signal::SIGHUP);
}

#[test]
fn a_second_sigint_still_cleans_up() {
    let mut run = Run::start(&["run", "backup-restore", "--duration", "30"]);
    run.wait_for("the load", Duration::from_secs(120), |run| {
        !postmasters_of(run).is_empty() && run.dirs.len() >= 2
    });
    run.signal(Signal::SIGINT);
    run.wait_for(
        "the first SIGINT's notice",
        Duration::from_secs(30),
        |run| run.output().contains("Stopping on SIGINT"),
    );
    run.signal(Signal::SIGINT);
    let code = run.exit_code(Duration::from_secs(30));
    assert_eq!(code, 130, "{}", run.output());
    run.assert_nothing_left();
}

#[test]
fn after_sigkill_the_servers_die_and_the_next_run_removes_the_directories() {
    // Every run removes the stale directories of dead runs in its `TMPDIR`: a run of
    // another test started meanwhile would remove the killed run's directories before
    // the next run of this test could show that it does. These two runs have a
    // `TMPDIR` of their own (open to the server's user, who works in it).
    let tmp = tempfile::tempdir().expect("a directory");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("permissions");
    }
    let mut run = Run::start_in(&["run", "tpcb", "--duration", "30"], tmp.path().into());
    run.wait_for("the load", Duration::from_secs(120), in_load);
    let postmasters = postmasters_of(&run);
    assert!(
        !postmasters.is_empty(),
        "no postmaster found:\n{}",
        run.output()
    );
    run.signal(Signal::SIGKILL);
    let code = run.exit_code(Duration::from_secs(10));
    assert_eq!(code, -1, "killed by a signal");
    // The watchdogs act within milliseconds on an idle machine (the time is printed);
    // the bound only keeps a broken watchdog from hanging the test, and is generous so
    // that a machine busy with other work does not fail it.
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(60);
    let left = loop {
        let left: Vec<i32> = run.dirs.iter().flat_map(|dir| postgres_in(dir)).collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        left.is_empty(),
        "PostgreSQL processes {left:?} outlived stormchor by 60 s"
    );
    println!(
        "the servers died {:?} after stormchor was SIGKILLed",
        killed.elapsed()
    );
    assert!(
        run.dirs.iter().any(|dir| dir.exists()),
        "the killed run could not remove its directories; something else did"
    );
    // The next run removes them before it creates its own.
    let mut next = Run::start_in(&["run", "tpcb", "--duration", "1"], tmp.path().into());
    assert_eq!(
        next.exit_code(Duration::from_secs(120)),
        0,
        "{}",
        next.output()
    );
    for dir in &run.dirs {
        assert!(
            !dir.exists(),
            "{} is left after the next run",
            dir.display()
        );
    }
    next.note_dirs();
}
