//! Every role in a process of its own: `stormchor role` (the peers file, the
//! handshake refusing a peer with other options) and `stormchor run --processes` (the
//! launcher), whose verdicts and evidence must be the in-process run's.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use stormchor::scenarios::{Fault, ScenarioOptions, registry};

fn stormchor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(args)
        .env_remove("STORMCHOR_TARGET")
        .env_remove("STORMCHOR_JSON")
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scenario's report, in-process, as JSON.
async fn in_process(name: &str, options: ScenarioOptions) -> Value {
    let report = registry()
        .run(name, options)
        .await
        .expect("the scenario runs");
    report.to_json().expect("the report as JSON")
}

/// A scenario's report with every role a process of its own, as JSON; the exit
/// status says the verdict.
fn in_processes(name: &str, args: &[&str], dir: &Path) -> (Value, i32) {
    let json = dir.join(format!("{name}.json"));
    let json_arg = json.display().to_string();
    let mut all = vec!["run", name, "--processes", "--json", &json_arg];
    all.extend_from_slice(args);
    let output = stormchor(&all);
    let report = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no report ({e}):\n{}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    });
    (
        serde_json::from_str(&report).expect("JSON"),
        output.status.code().unwrap_or(-1),
    )
}

/// Each check's name, role and verdict, and whether it has evidence.
fn verdicts(report: &Value) -> Vec<(String, String, bool, bool)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["role"].as_str().unwrap_or_default().to_owned(),
                c["passed"].as_bool().unwrap_or_default(),
                !c["evidence"].as_array().is_none_or(Vec::is_empty),
            )
        })
        .collect()
}

fn roles(report: &Value) -> Vec<(String, bool)> {
    report["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| {
            (
                r["role"].as_str().unwrap_or_default().to_owned(),
                r["completed"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| {
            checks
                .iter()
                .find(|c| c["name"].as_str().is_some_and(|n| n.contains(name)))
        })
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

fn options(seed: u64) -> ScenarioOptions {
    ScenarioOptions {
        workers: 2,
        duration: Duration::from_secs(2),
        rounds: 2,
        seed,
        ..ScenarioOptions::short()
    }
}

/// The flags of [`options`] for a scenario with workers and a load phase (flags a
/// scenario does not have are usage errors: `--rounds` only where it has rounds).
const ARGS: [&str; 6] = ["--workers", "2", "--duration", "2", "--seed", "5"];

/// The load runs for a time, so how many rows and tables there are differs from run to
/// run (in one process too); the checks, their verdicts, and whether they have
/// evidence do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_in_processes_gives_the_in_process_verdicts() {
    let dir = tempfile::tempdir().expect("dir");
    let reference = in_process("backup-restore", options(5)).await;
    let (report, code) = in_processes("backup-restore", &ARGS, dir.path());
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["success"], true);
    assert_eq!(verdicts(&report), verdicts(&reference));
    assert_eq!(roles(&report), roles(&reference));
    for report in [&report, &reference] {
        let checksums = check(report, "checksums at point 0");
        assert!(
            checksums["summary"]
                .as_str()
                .is_some_and(|s| s.ends_with("; 0 differences")),
            "{checksums}"
        );
        assert!(report["figures"]["stress_actions"].as_u64() > Some(0));
        assert_eq!(report["figures"]["restores"], 1);
    }
    // The phases line up on one clock: every role's setup comes first.
    let phases = report["phases"].as_array().expect("phases");
    assert_eq!(
        phases.len(),
        reference["phases"].as_array().map_or(0, Vec::len)
    );
    assert!(
        phases[..5].iter().all(|p| p["phase"] == "setup"),
        "{phases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_in_processes_gives_the_in_process_verdicts() {
    let dir = tempfile::tempdir().expect("dir");
    let mut short = options(5);
    short.duration = Duration::from_secs(1);
    let reference = in_process("crash-recovery", short).await;
    let mut args = ARGS.to_vec();
    args[3] = "1";
    args.extend(["--rounds", "2"]);
    let (report, code) = in_processes("crash-recovery", &args, dir.path());
    assert_eq!(code, 0, "{report}");
    assert_eq!(verdicts(&report), verdicts(&reference));
    assert_eq!(roles(&report), roles(&reference));
    for report in [&report, &reference] {
        // Two rounds, one SIGKILL each, and every acknowledged transaction found.
        let figures = &report["figures"];
        assert_eq!(figures["kills"], 2, "{figures}");
        assert!(figures["acknowledged"].as_u64() > Some(0), "{figures}");
        assert_eq!(figures["acknowledged"], figures["found"], "{figures}");
        assert_eq!(figures["missing"], 0, "{figures}");
        assert_eq!(
            check(report, "acknowledged transaction is whole")["passed"],
            true
        );
        assert_eq!(check(report, "pg_amcheck")["passed"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_fault_fails_in_processes_as_in_process() {
    let dir = tempfile::tempdir().expect("dir");
    let reference = in_process(
        "backup-restore",
        ScenarioOptions {
            fault: Some(Fault::CorruptRestoredTable),
            ..options(5)
        },
    )
    .await;
    let mut args = ARGS.to_vec();
    args.extend(["--inject", "corrupt-restored-table"]);
    let (report, code) = in_processes("backup-restore", &args, dir.path());
    assert_eq!(code, 1, "the verdict is the exit status: {report}");
    assert_eq!(report["success"], false);
    assert_eq!(verdicts(&report), verdicts(&reference));
    for report in [&report, &reference] {
        let checksums = check(report, "checksums at point 0");
        assert_eq!(checksums["passed"], false);
        assert!(
            checksums["evidence"].as_array().is_some_and(|e| e
                .iter()
                .any(|l| l.as_str().is_some_and(|l| l.contains("found 0 rows")))),
            "{checksums}"
        );
    }
}

/// The isolation cases do not depend on timing: their evidence is the same line for
/// line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_in_processes_gives_the_same_evidence_line_for_line() {
    let dir = tempfile::tempdir().expect("dir");
    let reference = in_process("isolation", options(5)).await;
    let (report, code) = in_processes("isolation", &["--seed", "5"], dir.path());
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checks"].as_array().map_or(0, Vec::len), 12);
    assert_eq!(report["checks"], reference["checks"]);
}

fn write_peers(dir: &Path, text: &str) -> String {
    let path = dir.join("peers.toml");
    std::fs::write(&path, text).expect("written");
    path.display().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port")
}

/// Backup and Worker(0) (the two highest roles: Backup dials Worker(0) first) with
/// different seeds: the handshake refuses before anything starts, and both say which
/// peer and what differs.
#[test]
fn a_peer_with_other_options_is_refused_naming_it_and_what_differs() {
    let dir = tempfile::tempdir().expect("dir");
    let peers = write_peers(
        dir.path(),
        &format!(
            "[roles]\nCoordinator = \"127.0.0.1:{}\"\nPrimary = \"127.0.0.1:{}\"\nBackup = \"127.0.0.1:{}\"\n\"Worker(0)\" = \"127.0.0.1:{}\"\n",
            free_port(),
            free_port(),
            free_port(),
            free_port()
        ),
    );
    let start = |role: &str, seed: &str| {
        Command::new(env!("CARGO_BIN_EXE_stormchor"))
            .args(["role", "backup-restore", role, "--peers", &peers])
            .args(["--workers", "1", "--seed", seed, "--connect-timeout", "30"])
            .env_remove("STORMCHOR_TARGET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("started")
    };
    let worker = start("Worker(0)", "2");
    let backup = start("Backup", "1");
    let worker = worker.wait_with_output().expect("ended");
    let backup = backup.wait_with_output().expect("ended");
    let (worker_err, backup_err) = (text(&worker.stderr), text(&backup.stderr));
    assert_eq!(worker.status.code(), Some(1), "{worker_err}");
    assert_eq!(backup.status.code(), Some(1), "{backup_err}");
    assert!(
        worker_err.contains("role Worker(0): handshake with Backup at 127.0.0.1:"),
        "{worker_err}"
    );
    assert!(
        backup_err.contains("role Backup: handshake with Worker(0) at 127.0.0.1:")
            && backup_err.contains("it refused us"),
        "{backup_err}"
    );
    for err in [&worker_err, &backup_err] {
        assert!(
            err.contains("the run's terms differ: seed is 2 at Worker(0), 1 at Backup"),
            "{err}"
        );
    }
}

#[test]
fn a_wrong_peers_file_is_an_error_naming_the_file_and_the_role() {
    let dir = tempfile::tempdir().expect("dir");
    let role = |peers: &str, role: &str| {
        let output = stormchor(&[
            "role",
            "crash-recovery",
            role,
            "--peers",
            peers,
            "--workers",
            "1",
        ]);
        (output.status.code(), text(&output.stderr))
    };
    let all = "Coordinator = \"127.0.0.1:1\"\nPrimary = \"127.0.0.1:2\"\n\"Worker(0)\" = \"127.0.0.1:3\"\n";

    let peers = write_peers(dir.path(), "[roles]\nCoordinator = \"127.0.0.1:1\"\n");
    let (code, err) = role(&peers, "Coordinator");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "peers file {peers}: no address for role Primary under [roles] (the scenario's roles are Coordinator, Primary, Worker(0))"
        )),
        "{err}"
    );

    let peers = write_peers(
        dir.path(),
        &format!("[roles]\n{all}\"Worker(1)\" = \"127.0.0.1:4\"\n"),
    );
    let (code, err) = role(&peers, "Coordinator");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("[roles] Worker(1) is not a role of the scenario (did you mean `Worker(0)`?)"),
        "{err}"
    );

    let peers = write_peers(dir.path(), "[roles]\nCoordinator = \"nowhere\"\n");
    let (code, err) = role(&peers, "Coordinator");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "peers file {peers}: [roles] Coordinator = \"nowhere\" is not an address (host:port)"
        )),
        "{err}"
    );

    let peers = write_peers(
        dir.path(),
        &format!("[roles]\n{all}\n[servers]\nBackup = \"10.0.0.1\"\n"),
    );
    let (code, err) = role(&peers, "Coordinator");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("[servers] Backup: no such role under [roles]"),
        "{err}"
    );

    let peers = write_peers(dir.path(), &format!("[roles]\n{all}"));
    let (code, err) = role(&peers, "Worker(7)");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "the crash-recovery scenario has no role `Worker(7)` (did you mean `Worker(0)`?)"
        ),
        "{err}"
    );

    let output = stormchor(&["role", "crash-recovery", "Primary"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("role Primary needs --peers FILE"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn processes_apply_to_scenarios_only() {
    let output = stormchor(&["run", "tpcb", "--processes"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--processes applies to scenarios; `tpcb` is a workload"),
        "{}",
        text(&output.stderr)
    );
}

/// The processes whose parent is `parent`, with their command names.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold blanks, so split after its `)`.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push((pid, stat[open + 1..close].to_owned()));
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // A zombie is dead: only its entry is left until its parent reaps it.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .is_some_and(|i| !stat[i + 1..].trim_start().starts_with('Z'))
    })
}

/// Polls `condition` every 50 ms for at most `within`.
fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to the launcher while its roles run: it passes it on, every role ends
/// and removes its server, the report is still written (marked interrupted), and
/// nothing is left running.
#[test]
fn sigterm_to_the_launcher_ends_every_role_and_its_servers() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("report.json");
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(["run", "crash-recovery", "--processes", "--workers", "1"])
        .args(["--duration", "60", "--rounds", "1", "--seed", "5", "--json"])
        .arg(&json)
        .env_remove("STORMCHOR_TARGET")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr")).expect("a file"),
        ))
        .spawn()
        .expect("started");
    let stderr = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    // Wait until the Primary's role process runs its server (a postgres child).
    let mut roles = Vec::new();
    let mut servers = Vec::new();
    let up = eventually(Duration::from_secs(300), || {
        roles = children_of(launcher.id());
        servers = roles
            .iter()
            .flat_map(|(pid, _)| children_of(*pid))
            .filter(|(_, name)| name == "postgres")
            .map(|(pid, _)| pid)
            .collect();
        roles.len() == 3 && !servers.is_empty()
    });
    if !up {
        let _ = launcher.kill();
        let _ = launcher.wait();
        panic!(
            "the roles did not start their server: {roles:?}\n{}",
            stderr()
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(launcher.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signalled");
    let mut status = None;
    let ended = eventually(Duration::from_secs(300), || {
        status = launcher.try_wait().expect("waits");
        status.is_some()
    });
    if !ended {
        let _ = launcher.kill();
        let _ = launcher.wait();
        panic!("the launcher did not end after SIGTERM");
    }
    assert_eq!(status.and_then(|s| s.code()), Some(128 + 15));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a report")).expect("JSON");
    assert_eq!(report["interrupted"], "SIGTERM");
    assert_eq!(report["roles"].as_array().map_or(0, Vec::len), 3);
    let pids: Vec<u32> = roles.iter().map(|(pid, _)| *pid).chain(servers).collect();
    assert!(
        eventually(Duration::from_secs(20), || pids
            .iter()
            .all(|pid| !alive(*pid))),
        "still running: {:?}",
        pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>()
    );
}

/// SIGKILL of one role's process: its peers end with an error naming it, the launcher
/// reports it (the role's process ended without a result) and exits non-zero, and
/// nothing is left running.
#[test]
fn a_killed_role_fails_the_run_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("report.json");
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(["run", "crash-recovery", "--processes", "--workers", "1"])
        .args(["--duration", "20", "--rounds", "1", "--seed", "5", "--json"])
        .arg(&json)
        .env_remove("STORMCHOR_TARGET")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr")).expect("a file"),
        ))
        .spawn()
        .expect("started");
    let stderr = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    let mut roles = Vec::new();
    let mut servers = Vec::new();
    // The roles run and the Primary's server is up: the worker is then about to write
    // for 20 s (it starts once the ledger exists), and the coordinator waits for its
    // ledger.
    let up = eventually(Duration::from_secs(300), || {
        roles = children_of(launcher.id());
        servers = roles
            .iter()
            .flat_map(|(pid, _)| children_of(*pid))
            .filter(|(_, name)| name == "postgres")
            .map(|(pid, _)| pid)
            .collect();
        roles.len() == 3 && !servers.is_empty()
    });
    if !up {
        let status = launcher.try_wait();
        let _ = launcher.kill();
        let _ = launcher.wait();
        panic!(
            "the roles did not start: {roles:?} (launcher: {status:?})\n{}",
            stderr()
        );
    }
    // The role processes start in role order: Coordinator, Primary, Worker(0).
    let mut by_age = roles.clone();
    by_age.sort();
    let worker = by_age[2].0;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(worker).expect("a pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    let mut status = None;
    let ended = eventually(Duration::from_secs(300), || {
        status = launcher.try_wait().expect("waits");
        status.is_some()
    });
    if !ended {
        let _ = launcher.kill();
        let _ = launcher.wait();
        panic!("the launcher did not end after a role was killed");
    }
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a report")).expect("JSON");
    assert_eq!(report["success"], false);
    let role = |name: &str| {
        report["roles"]
            .as_array()
            .and_then(|roles| roles.iter().find(|r| r["role"] == name))
            .unwrap_or_else(|| panic!("no role {name}: {report}"))
            .clone()
    };
    let killed = role("Worker(0)");
    assert!(
        killed["failure"]
            .as_str()
            .is_some_and(|f| f.contains("its process ended (signal: 9 (SIGKILL)) without a result")),
        "{killed}"
    );
    let coordinator = role("Coordinator");
    assert!(
        coordinator["failure"]
            .as_str()
            .is_some_and(|f| f.contains("peer Worker(0) failed")),
        "{report}"
    );
    let pids: Vec<u32> = roles.iter().map(|(pid, _)| *pid).chain(servers).collect();
    assert!(
        eventually(Duration::from_secs(20), || pids
            .iter()
            .all(|pid| !alive(*pid))),
        "still running: {:?}",
        pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>()
    );
}

/// `psql` from the PATH or the PostgreSQL 15 packages.
fn psql() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([std::path::PathBuf::from("/usr/lib/postgresql/15/bin")])
        .map(|dir| dir.join("psql"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| "psql".into())
}

/// How many rows the ledger of the server `postmaster` (a pid) holds: its data
/// directory is the postmaster's working directory, whose `postmaster.pid` says its
/// port and socket directory. `None` while it cannot be asked (starting, no table).
fn ledger_rows(postmaster: u32) -> Option<u64> {
    let data = std::fs::read_link(format!("/proc/{postmaster}/cwd")).ok()?;
    let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = pid_file.lines().collect();
    let (port, sockets) = (lines.get(3)?.trim(), lines.get(4)?.trim());
    let output = Command::new(psql())
        .args([
            "-X", "-At", "-h", sockets, "-p", port, "-U", "postgres", "-d", "postgres",
        ])
        .args(["-c", "SELECT count(*) FROM stormchor_ledger"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    text(&output.stdout).trim().parse().ok()
}

/// SIGKILL of the coordinator while the worker is inside a 60 s load (`WriteLedger`)
/// and the primary's node inside its crash window: both learn it where they are
/// (their run fails at that effect, naming the coordinator) instead of at the end of
/// the load, the launcher exits 1 and nothing is left running. Prints how long after
/// the kill each role's process ended.
#[test]
fn a_killed_role_is_noticed_by_a_peer_inside_a_long_effect() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("report.json");
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(["run", "crash-recovery", "--processes", "--workers", "1"])
        .args(["--duration", "60", "--rounds", "1", "--seed", "5", "--json"])
        .arg(&json)
        .env_remove("STORMCHOR_TARGET")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr")).expect("a file"),
        ))
        .spawn()
        .expect("started");
    let stderr = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    // The role processes start in role order: Coordinator, Primary, Worker(0). The
    // worker is inside its load once the ledger has rows.
    let mut roles = Vec::new();
    let mut servers = Vec::new();
    let loading = eventually(Duration::from_secs(300), || {
        roles = children_of(launcher.id());
        roles.sort();
        servers = roles
            .iter()
            .flat_map(|(pid, _)| children_of(*pid))
            .filter(|(_, name)| name == "postgres")
            .map(|(pid, _)| pid)
            .collect();
        roles.len() == 3 && servers.iter().any(|pid| ledger_rows(*pid) > Some(0))
    });
    if !loading {
        let status = launcher.try_wait();
        let _ = launcher.kill();
        let _ = launcher.wait();
        panic!(
            "the worker did not start its load: {roles:?} (launcher: {status:?})\n{}",
            stderr()
        );
    }
    let (coordinator, primary, worker) = (roles[0].0, roles[1].0, roles[2].0);
    let killed = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(coordinator).expect("a pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    let mut ended = [None, None];
    let mut status = None;
    let over = eventually(Duration::from_secs(300), || {
        for (slot, pid) in ended.iter_mut().zip([primary, worker]) {
            if slot.is_none() && !alive(pid) {
                *slot = Some(killed.elapsed());
            }
        }
        status = launcher.try_wait().expect("waits");
        status.is_some()
    });
    if !over {
        let _ = launcher.kill();
        let _ = launcher.wait();
        panic!("the launcher did not end after the coordinator was killed");
    }
    let launcher_ended = killed.elapsed();
    println!(
        "SIGKILL of the coordinator: the primary's process ended {:?} after, the worker's {:?} \
         after, the launcher {launcher_ended:?} after",
        ended[0], ended[1]
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", stderr());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a report")).expect("JSON");
    let role = |name: &str| {
        report["roles"]
            .as_array()
            .and_then(|roles| roles.iter().find(|r| r["role"] == name))
            .unwrap_or_else(|| panic!("no role {name}: {report}"))
            .clone()
    };
    assert!(
        role("Coordinator")["failure"]
            .as_str()
            .is_some_and(|f| f.contains("its process ended (signal: 9 (SIGKILL)) without a result")),
        "{report}"
    );
    println!("Primary: {}", role("Primary"));
    // The worker failed inside its load (past it, it would have failed at sending its
    // ledger instead), naming the coordinator.
    let failure = role("Worker(0)")["failure"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        failure.starts_with("Worker(0) failed at ext WriteLedger")
            && failure.contains("peer Coordinator failed: its connection closed without a goodbye"),
        "{failure}"
    );
    let pids: Vec<u32> = roles.iter().map(|(pid, _)| *pid).chain(servers).collect();
    assert!(
        eventually(Duration::from_secs(20), || pids
            .iter()
            .all(|pid| !alive(*pid))),
        "still running: {:?}",
        pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>()
    );
}
