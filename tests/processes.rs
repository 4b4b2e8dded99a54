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
    report.to_json()
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

const ARGS: [&str; 8] = [
    "--workers",
    "2",
    "--duration",
    "2",
    "--rounds",
    "2",
    "--seed",
    "5",
];

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
    let mut args = ARGS;
    args[3] = "1";
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
    let (report, code) = in_processes("isolation", &ARGS, dir.path());
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
        text(&output.stderr).contains("--processes applies to scenarios; `tpcb` is not one"),
        "{}",
        text(&output.stderr)
    );
}
