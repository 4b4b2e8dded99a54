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
    let (code, out, _) = stormchor(&["describe", "stress", "--workers", "3"]);
    assert_eq!(code, 0);
    assert!(out.contains("sequenceDiagram"));
    assert!(
        out.contains("Note over P3: RunStressMix { role: Worker(2), duration: 10s }"),
        "{out}"
    );
    assert!(
        out.contains("Worker(2):\n  recv Coordinator Start\n  ext RunStressMix"),
        "{out}"
    );
}

#[test]
fn a_short_run_against_a_throwaway_cluster_validates_the_catalog() {
    let (code, out, err) = stormchor(&["--workers", "2", "--duration", "2", "--seed", "3"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Started a throwaway PostgreSQL cluster"));
    assert!(out.contains("| insert_some_rows |"), "{out}");
    assert!(out.contains(", 0 differences from the database"), "{out}");
}

#[test]
fn bad_arguments_and_unreachable_targets_fail_clearly() {
    let (code, _, err) = stormchor(&["--workers", "many"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value 'many' for '--workers <WORKERS>'"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let target = format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2");
    let (code, out, _) = stormchor(&["--target", &target, "--duration", "1"]);
    assert_eq!(code, 1);
    assert!(out.contains("Coordinator: FAILED"), "{out}");
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
        err.contains("no workload named tpcc; known workloads: ecommerce, read-only, sql, tpcb"),
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
