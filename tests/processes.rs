//! Every role in a process of its own: `stormchor role` (the peers file, the
//! handshake refusing a peer with other options) and `stormchor run --processes` (the
//! launcher), whose verdicts and evidence must be the in-process run's.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    alive, arguments, children_of, directories_of, eventually, free_port, ledger_rows,
    server_place, servers_of, still_there, tcp_clients, text,
};
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

/// `stormchor run SCENARIO --processes ARGS --json` in the background, its standard
/// error into a file; killed (and reaped) when dropped, whatever the test did.
struct Launch {
    child: Child,
    json: PathBuf,
    stderr: PathBuf,
}

impl Launch {
    fn start(dir: &Path, scenario: &str, args: &[&str]) -> Launch {
        let json = dir.join("report.json");
        let stderr = dir.join("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_stormchor"))
            .args(["run", scenario, "--processes"])
            .args(args)
            .arg("--json")
            .arg(&json)
            .env_remove("STORMCHOR_TARGET")
            .env_remove("STORMCHOR_JSON")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&stderr).expect("a file")))
            .spawn()
            .expect("started");
        Launch {
            child,
            json,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its role processes, by role (`stormchor role SCENARIO ROLE ...`).
    fn roles(&self) -> BTreeMap<String, u32> {
        children_of(self.child.id())
            .into_iter()
            .filter_map(|(pid, _)| Some((arguments(pid).get(3)?.clone(), pid)))
            .collect()
    }

    /// Waits until `condition` holds (at most 300 s: a run's setup on a loaded
    /// machine), failing the test if it does not or the launcher ends first.
    fn wait_until(&mut self, what: &str, mut condition: impl FnMut(&Launch) -> bool) {
        let mut ended = None;
        let held = eventually(Duration::from_secs(300), || {
            ended = self.child.try_wait().expect("waits");
            ended.is_none() && condition(self)
        });
        if !held {
            panic!(
                "{what} did not happen (launcher: {ended:?}; roles {:?})\n{}",
                self.roles(),
                self.stderr()
            );
        }
    }

    /// Waits (at most 300 s) for the launcher to end, calling `tick` at each poll.
    fn wait(&mut self, mut tick: impl FnMut()) -> ExitStatus {
        let mut status = None;
        let ended = eventually(Duration::from_secs(300), || {
            tick();
            status = self.child.try_wait().expect("waits");
            status.is_some()
        });
        match status {
            Some(status) if ended => status,
            _ => panic!("the launcher did not end\n{}", self.stderr()),
        }
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(&self.json)
            .unwrap_or_else(|e| panic!("no report ({e})\n{}", self.stderr()));
        serde_json::from_str(&text).expect("JSON")
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
        signal,
    )
    .expect("signalled");
}

/// Role `name` of a report.
fn role_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["roles"]
        .as_array()
        .and_then(|roles| roles.iter().find(|r| r["role"] == name))
        .unwrap_or_else(|| panic!("no role {name}: {report}"))
}

/// Every process of the servers `roles` run now (postmasters and their children), the
/// directories the roles own (clusters, archives, backups) and the servers' Unix
/// sockets: what must all be gone at the end of the run.
fn held_by(roles: &BTreeMap<String, u32>) -> (Vec<u32>, Vec<PathBuf>) {
    let mut processes = Vec::new();
    let mut paths = Vec::new();
    for pid in roles.values() {
        for server in servers_of(*pid) {
            processes.push(server);
            processes.extend(children_of(server).into_iter().map(|(pid, _)| pid));
            if let Some((data, sockets, port)) = server_place(server) {
                paths.push(data);
                paths.push(sockets.join(format!(".s.PGSQL.{port}")));
            }
        }
        paths.extend(directories_of(*pid));
    }
    (processes, paths)
}

/// SIGTERM to the launcher while its roles run: it passes it on, every role ends
/// and removes its server, the report is still written (marked interrupted), and
/// nothing is left running.
#[test]
fn sigterm_to_the_launcher_ends_every_role_and_its_servers() {
    let dir = tempfile::tempdir().expect("dir");
    let mut launch = Launch::start(
        dir.path(),
        "crash-recovery",
        &[
            "--workers",
            "1",
            "--duration",
            "60",
            "--rounds",
            "1",
            "--seed",
            "5",
        ],
    );
    // Wait until the Primary's role process runs its server.
    launch.wait_until("the Primary's server start", |l| {
        let roles = l.roles();
        roles.len() == 3
            && roles
                .get("Primary")
                .is_some_and(|p| !servers_of(*p).is_empty())
    });
    let roles = launch.roles();
    let (mut pids, paths) = held_by(&roles);
    pids.extend(roles.values());
    signal(launch.child.id(), nix::sys::signal::Signal::SIGTERM);
    let status = launch.wait(|| {});
    assert_eq!(status.code(), Some(128 + 15));
    let report = launch.report();
    assert_eq!(report["interrupted"], "SIGTERM");
    assert_eq!(report["roles"].as_array().map_or(0, Vec::len), 3);
    assert!(
        eventually(Duration::from_secs(20), || pids
            .iter()
            .all(|pid| !alive(*pid))),
        "still running: {:?}",
        pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>()
    );
    assert_eq!(still_there(&paths), Vec::<&Path>::new());
}

/// When a role of backup-restore is killed.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// The workers run their load on the Primary's server (two clients on it).
    Load,
    /// The Backup runs the restored cluster (the workers load it next).
    Restore,
}

/// One kind of role, and when it is killed.
struct Kill {
    kind: &'static str,
    role: &'static str,
    when: Moment,
}

/// Every kind of role backup-restore has, each killed where it has peers that use it.
const KILLS: [Kill; 5] = [
    Kill {
        kind: "coordinator",
        role: "Coordinator",
        when: Moment::Load,
    },
    Kill {
        kind: "node agent hosting the primary",
        role: "Primary",
        when: Moment::Load,
    },
    Kill {
        kind: "backup node hosting the restored cluster",
        role: "Backup",
        when: Moment::Restore,
    },
    Kill {
        kind: "load worker",
        role: "Worker(0)",
        when: Moment::Load,
    },
    Kill {
        kind: "another member of the worker family",
        role: "Worker(1)",
        when: Moment::Restore,
    },
];

/// Kills `kill.role` of a backup-restore run with every role a process of its own and
/// checks the aftermath; returns a line on how long after the kill each peer's
/// process ended (having written its result), and the launcher.
fn kill_and_check(kill: &Kill) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut launch = Launch::start(
        dir.path(),
        "backup-restore",
        &["--workers", "2", "--duration", "4", "--seed", "5"],
    );
    let moment = |l: &Launch| {
        let roles = l.roles();
        roles.len() == 5
            && match kill.when {
                Moment::Load => roles
                    .get("Primary")
                    .is_some_and(|p| servers_of(*p).iter().any(|s| tcp_clients(*s) >= 2)),
                Moment::Restore => roles
                    .get("Backup")
                    .is_some_and(|b| !servers_of(*b).is_empty()),
            }
    };
    launch.wait_until(&format!("{:?} (to kill {})", kill.when, kill.role), moment);
    let roles = launch.roles();
    let (mut pids, paths) = held_by(&roles);
    pids.extend(roles.values());
    let killed = Instant::now();
    signal(roles[kill.role], nix::sys::signal::Signal::SIGKILL);
    let mut ended: BTreeMap<&str, Duration> = BTreeMap::new();
    let status = launch.wait(|| {
        for (role, pid) in &roles {
            if role != kill.role && !ended.contains_key(role.as_str()) && !alive(*pid) {
                ended.insert(role.as_str(), killed.elapsed());
            }
        }
    });
    let launcher = killed.elapsed();
    let context = format!("killing {} ({})", kill.role, kill.kind);
    assert_eq!(status.code(), Some(1), "{context}\n{}", launch.stderr());
    let report = launch.report();
    assert_eq!(report["success"], false, "{context}");
    let lost = role_of(&report, kill.role);
    assert!(
        lost["failure"]
            .as_str()
            .is_some_and(|f| f.contains("its process ended (signal: 9 (SIGKILL)) without a result")),
        "{context}: {lost}"
    );
    // Every other role says which peer died, and the phase it was in: a failure
    // naming it, or (a role whose own part was over, lingering for its peers) the
    // notice that it died.
    let peer = format!("peer {} failed: ", kill.role);
    let mut said = Vec::new();
    for role in roles.keys().filter(|r| *r != kill.role) {
        let record = role_of(&report, role);
        let failure = record["failure"].as_str();
        let notice = record["peer_down"]
            .as_str()
            .map(|down| format!("peer {down}"));
        let told = failure.map(str::to_owned).or(notice).unwrap_or_default();
        assert!(told.contains(&peer), "{context}: {role} says {record}");
        assert!(
            record["phase"].as_str().is_some_and(|p| !p.is_empty()),
            "{context}: {record}"
        );
        said.push(format!("{role} in phase {}", record["phase"]));
    }
    // Nothing of any role runs or stays on disk: the killed role's servers died with
    // it, and the launcher removed what it left.
    assert!(
        eventually(Duration::from_secs(20), || pids
            .iter()
            .all(|pid| !alive(*pid))),
        "{context}: still running: {:?}",
        pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>()
    );
    assert_eq!(still_there(&paths), Vec::<&Path>::new(), "{context}");
    assert!(
        !paths.is_empty(),
        "{context}: the servers' places were found"
    );
    let last = ended.values().max().copied().unwrap_or_default();
    format!(
        "kill -9 of {} ({}, {:?}): the last peer's report {:.2} s after, the launcher's \
         exit {:.2} s after; peers {}; reported by {}",
        kill.role,
        kill.kind,
        kill.when,
        last.as_secs_f64(),
        launcher.as_secs_f64(),
        ended
            .iter()
            .map(|(role, at)| format!("{role} {:.2} s", at.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        said.join(", ")
    )
}

/// SIGKILL of each kind of role (table [`KILLS`]): every other role reports which
/// peer died and the phase it was in, the launcher reports the killed role and exits
/// 1, and no server process, data directory or socket of any role is left. Prints,
/// per kind, how long after the kill the last peer's report came (its process ended
/// with its result written).
#[test]
fn a_killed_role_of_each_kind_is_reported_by_every_peer_and_leaves_nothing() {
    let figures: Vec<String> = KILLS.iter().map(kill_and_check).collect();
    for line in figures {
        println!("{line}");
    }
}

/// SIGKILL of the coordinator while the worker is inside a 60 s load (`WriteLedger`)
/// and the primary's node inside its crash window: both learn it where they are
/// (their run fails at that effect, naming the coordinator) instead of at the end of
/// the load, the launcher exits 1 and nothing is left running. Prints how long after
/// the kill each role's process ended.
#[test]
fn a_killed_role_is_noticed_by_a_peer_inside_a_long_effect() {
    let dir = tempfile::tempdir().expect("dir");
    let mut launch = Launch::start(
        dir.path(),
        "crash-recovery",
        &[
            "--workers",
            "1",
            "--duration",
            "60",
            "--rounds",
            "1",
            "--seed",
            "5",
        ],
    );
    // The worker is inside its load once the ledger has rows.
    launch.wait_until("the worker's load", |l| {
        let roles = l.roles();
        roles.len() == 3
            && roles
                .get("Primary")
                .is_some_and(|p| servers_of(*p).iter().any(|s| ledger_rows(*s) > Some(0)))
    });
    let roles = launch.roles();
    let (mut pids, paths) = held_by(&roles);
    pids.extend(roles.values());
    let (primary, worker) = (roles["Primary"], roles["Worker(0)"]);
    let killed = Instant::now();
    signal(roles["Coordinator"], nix::sys::signal::Signal::SIGKILL);
    let mut ended = [None, None];
    let status = launch.wait(|| {
        for (slot, pid) in ended.iter_mut().zip([primary, worker]) {
            if slot.is_none() && !alive(pid) {
                *slot = Some(killed.elapsed());
            }
        }
    });
    let launcher_ended = killed.elapsed();
    println!(
        "SIGKILL of the coordinator: the primary's process ended {:?} after, the worker's {:?} \
         after, the launcher {launcher_ended:?} after",
        ended[0], ended[1]
    );
    assert_eq!(status.code(), Some(1), "{}", launch.stderr());
    let report = launch.report();
    assert!(
        role_of(&report, "Coordinator")["failure"]
            .as_str()
            .is_some_and(|f| f.contains("its process ended (signal: 9 (SIGKILL)) without a result")),
        "{report}"
    );
    println!("Primary: {}", role_of(&report, "Primary"));
    // The worker failed inside its load (past it, it would have failed at sending its
    // ledger instead), naming the coordinator.
    let failure = role_of(&report, "Worker(0)")["failure"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        failure.starts_with("Worker(0) failed at ext WriteLedger")
            && failure.contains("peer Coordinator failed: its connection closed without a goodbye"),
        "{failure}"
    );
    assert!(
        eventually(Duration::from_secs(20), || pids
            .iter()
            .all(|pid| !alive(*pid))),
        "still running: {:?}",
        pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>()
    );
    assert_eq!(still_there(&paths), Vec::<&Path>::new());
}
