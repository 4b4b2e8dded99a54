//! The `stormchor` command end to end.

use std::process::Command;

fn stormchor(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(args)
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn describe_prints_the_diagram_and_the_local_programs() {
    let (code, out, _) = stormchor(&["describe", "stress-check", "--workers", "3"]);
    assert_eq!(code, 0);
    assert!(out.contains("sequenceDiagram"));
    assert!(
        out.contains("StressLoad { on: primary, duration: 10s } => actions"),
        "{out}"
    );
    assert!(
        out.contains("Worker(2):\n  recv Primary primary\n  ext Discover { on: primary }"),
        "{out}"
    );
}

#[test]
fn a_short_run_against_a_throwaway_cluster_validates_the_catalog() {
    let (code, out, err) = stormchor(&[
        "run",
        "stress-check",
        "--workers",
        "2",
        "--duration",
        "2",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("# stress-check: PASSED"), "{out}");
    assert!(out.contains("| insert_some_rows |"), "{out}");
    assert!(
        out.contains("[ok] Worker(0)'s catalog matches the schema")
            && out.contains(", 0 differences"),
        "{out}"
    );
}

#[test]
fn bad_arguments_and_unreachable_targets_fail_clearly() {
    let (code, _, err) = stormchor(&["--workers", "many"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value 'many' for '--workers <WORKERS>'"),
        "{err}"
    );
    // Bound but not listening: connections are refused, and nothing else can take
    // the port while the test runs.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let target = format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2");
    // The stress mix does not touch a user's tables unless told to.
    let (code, _, err) = stormchor(&[
        "run",
        "stress-check",
        "--target",
        &target,
        "--duration",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("that needs --on-user-tables"), "{err}");
    let (code, out, _) = stormchor(&[
        "run",
        "stress-check",
        "--target",
        &target,
        "--duration",
        "1",
        "--on-user-tables",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("Worker(0): FAILED"), "{out}");
    // The default scenario needs control of the server's processes: it says so before
    // anything starts.
    let (code, _, err) = stormchor(&["--target", &target, "--duration", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the backup-restore scenario controls the server's processes"),
        "{err}"
    );
    // A workload says it cannot connect, on standard error.
    let (code, _, err) = stormchor(&["run", "tpcb", "--target", &target, "--duration", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("error: cannot connect to `{target}`")),
        "{err}"
    );
    assert!(
        out.contains("cannot connect")
            || out.contains("Connection refused")
            || out.contains("error connecting"),
        "{out}"
    );
}

#[test]
fn list_and_describe_name_the_workloads() {
    let (code, out, _) = stormchor(&["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("stress") && out.contains("tpcb") && out.contains("read-only"),
        "{out}"
    );
    let (code, out, _) = stormchor(&["describe", "tpcb"]);
    assert_eq!(code, 0);
    assert!(out.contains("operation weights:\n  tpcb"), "{out}");
    let (code, _, err) = stormchor(&["describe", "tpcc"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no scenario or workload named `tpcc` (did you mean `tpcb`?)")
            && err.contains("the workloads are ecommerce, read-only, sql, stress, tpcb"),
        "{err}"
    );
}

#[test]
fn a_workload_runs_against_a_throwaway_cluster() {
    let (code, out, err) = stormchor(&["run", "read-only", "--workers", "2", "--duration", "1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("| select |"), "{out}");
    assert!(out.contains("transactions per second"), "{out}");
}

#[test]
fn ctrl_c_stops_the_load_writes_the_report_and_removes_the_cluster() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args([
            "run",
            "read-only",
            "--duration",
            "120",
            "--json",
            &json.display().to_string(),
        ])
        .env_remove("STORMCHOR_TARGET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok);
    let data = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("Started a throwaway PostgreSQL cluster on ")
                .and_then(|rest| rest.split(" in ").nth(1))
                .map(|d| d.trim_end_matches('.').to_owned())
        })
        .expect("the cluster's directory");
    assert!(lines.by_ref().any(|l| l.starts_with("Running read-only")));
    std::thread::sleep(std::time::Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not stop on Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written"))
            .expect("json");
    assert!(
        report["operations"]["select"]["count"]
            .as_u64()
            .expect("count")
            > 0
    );
    assert!(
        report["elapsed_s"].as_f64().expect("elapsed") < 60.0,
        "stopped early"
    );
    assert!(
        !std::path::Path::new(&data).exists(),
        "the cluster's directory {data} is removed"
    );
}

#[test]
fn with_no_command_it_runs_backup_restore() {
    let (code, out, err) = stormchor(&["--duration", "2"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Running the backup-restore scenario: 2 workers"),
        "{out}"
    );
    assert!(out.contains("# backup-restore: PASSED"), "{out}");
    assert!(out.contains("[ok] checksums at point 0"), "{out}");
}

#[test]
fn a_scenario_with_an_injected_fault_fails_with_its_evidence_in_every_report() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let (code, out, err) = stormchor(&[
        "run",
        "crash-recovery",
        "--rounds",
        "1",
        "--duration",
        "2",
        "--seed",
        "5",
        "--inject",
        "delete-acknowledged-row",
        "--json",
        json.to_str().expect("utf-8"),
        "--html",
        html.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("# crash-recovery: FAILED"), "{out}");
    assert!(
        out.contains("[FAILED] every acknowledged transaction is whole"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    assert_eq!(report["success"], false);
    assert_eq!(report["seed"], 5);
    assert_eq!(report["schema"], "stormchor-report/1");
    assert_eq!(report["revision"], 3);
    // The report says which fault was injected, in every form.
    assert_eq!(report["fault"], "delete-acknowledged-row");
    assert!(
        out.contains("Fault injected: delete-acknowledged-row"),
        "{out}"
    );
    let failed: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(
        failed[0]["evidence"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("missing acknowledged: worker 0 transaction")),
        "{report}"
    );
    assert!(report["phases"].as_array().is_some_and(|p| p.len() >= 4));
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("FAILED") && page.contains("missing acknowledged"));
    assert!(
        page.contains("Fault injected: delete-acknowledged-row"),
        "{page}"
    );
    // The choreography is drawn inline (no script), its mermaid source folded away.
    assert!(page.contains("<div class=\"diagram\"><svg "), "{page}");
    assert!(page.contains("<summary>mermaid source</summary>"));
    assert!(!page.contains("<script"));
    // The kill is on the timeline and the load around it is drawn, with its recovery.
    assert!(
        page.contains("<g class=\"event\"><title>kill at "),
        "{page}"
    );
    assert!(page.contains("<h2>Load around the events</h2>"), "{page}");
    assert!(page.contains("<th>commits again after s</th>"), "{page}");
    assert_eq!(
        report["recoveries"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert!(
        report["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "kill"))
    );
    assert!(
        report["diagram_svg"]
            .as_str()
            .is_some_and(|s| s.contains(">VerifyLedger"))
    );

    let (code, _, err) = stormchor(&["run", "crash-recovery", "--inject", "gremlins"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown fault `gremlins`"), "{err}");
    // A fault the scenario has not is a usage error listing the ones it has.
    let (code, _, err) = stormchor(&["run", "backup-restore", "--inject", "weaker-isolation"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot inject `weaker-isolation`; it can inject corrupt-restored-table, skip-wal-replay"),
        "{err}"
    );
    let (code, _, err) = stormchor(&["run", "tpcb", "--inject", "skip-wal-replay"]);
    assert_eq!(code, 2);
    assert!(err.contains("--inject applies to scenarios"), "{err}");
    // An unknown name lists both kinds, with the closest.
    let (code, _, err) = stormchor(&["run", "crash-recovry"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `crash-recovery`?"), "{err}");
    assert!(err.contains("the workloads are"), "{err}");
}

#[test]
fn describe_shows_a_scenario_diagram() {
    let (code, out, err) = stormchor(&["describe", "failover", "--workers", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("```mermaid\nsequenceDiagram"), "{out}");
    assert!(out.contains("Promote"), "{out}");
    // The same diagram as a standalone SVG file; a workload has no choreography.
    let dir = tempfile::tempdir().expect("dir");
    let svg = dir.path().join("failover.svg");
    let (code, _, err) = stormchor(&[
        "describe",
        "failover",
        "--svg",
        svg.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    let drawn = std::fs::read_to_string(&svg).expect("written");
    assert!(
        drawn.starts_with("<svg ") && drawn.contains(">Promote"),
        "{drawn}"
    );
    let (code, _, err) = stormchor(&["describe", "tpcb", "--svg", svg.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`tpcb` is a workload"), "{err}");
    let (code, out, _) = stormchor(&["list"]);
    assert_eq!(code, 0);
    for name in [
        "backup-restore",
        "crash-recovery",
        "pitr",
        "failover",
        "existing-database",
        "isolation",
    ] {
        assert!(out.contains(name), "{name} in {out}");
    }
}

#[test]
fn amcheck_each_round_puts_a_pg_amcheck_in_every_crash_round() {
    let (code, out, err) = stormchor(&["describe", "crash-recovery", "--amcheck-each-round"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("AmcheckAfterCrash"), "{out}");
    let (code, out, err) = stormchor(&["describe", "crash-recovery"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("AmcheckAfterCrash"), "{out}");
    assert!(out.contains("Amcheck"), "{out}");
}

#[test]
fn discover_schemas_takes_names_or_all_and_refuses_an_empty_name() {
    for good in ["public,sales", "all"] {
        let (code, _, err) =
            stormchor(&["describe", "existing-database", "--discover-schemas", good]);
        assert_eq!(code, 0, "{good}: {err}");
    }
    let (code, _, err) = stormchor(&[
        "describe",
        "existing-database",
        "--discover-schemas",
        "public,",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("give schema names separated by commas"),
        "{err}"
    );
}
