//! Configuration through the command: `--show-config`, `validate`, the JSON report.
//! (The precedence and the errors of bad files and variables are unit tests of the
//! binary's `cli::config` module.)

use std::process::Command;

fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("stormchor.toml");
    std::fs::write(&path, text).expect("written");
    (dir, path)
}

fn stormchor(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stormchor"));
    command.args(args);
    for name in [
        "STORMCHOR_TARGET",
        "STORMCHOR_WORKERS",
        "STORMCHOR_DURATION",
        "STORMCHOR_SEED",
        "STORMCHOR_SCALE",
        "STORMCHOR_RATE",
        "STORMCHOR_JSON",
        "STORMCHOR_HTML",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn show_config_tells_where_each_value_came_from() {
    let (_dir, path) = file("workers = 8\nduration = 30\n");
    let config = path.display().to_string();
    let (code, out, err) = stormchor(
        &[
            "run",
            "tpcb",
            "--config",
            &config,
            "--duration",
            "10",
            "--show-config",
        ],
        &[("STORMCHOR_WORKERS", "4")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("workers  = 4 (env)"), "{out}");
    assert!(out.contains("duration = 10 (flag)"), "{out}");
    assert!(out.contains("seed     = 1 (default)"), "{out}");
}

#[test]
fn validate_checks_workload_sections() {
    let (_dir, good) = file(
        "workers = 2\n[workload.tpcb]\nscale = 2\n[workload.ecommerce.weights]\nbrowse = 10\n",
    );
    let (code, out, _) = stormchor(&["validate", &good.display().to_string()], &[]);
    assert_eq!(code, 0);
    assert!(out.ends_with("is valid.\n"), "{out}");
    let (_dir2, bad) = file("[workload.tpcb]\nscales = 2\n");
    let (code, _, err) = stormchor(&["validate", &bad.display().to_string()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("[workload.tpcb]: workload tpcb: unknown key `scales` (known keys: scale)"),
        "{err}"
    );
    let (_dir3, bad) = file("[workload.ecommerce.weights]\nbuy = 1\n");
    let (code, _, err) = stormchor(&["validate", &bad.display().to_string()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("weights: unknown operation `buy`"), "{err}");
}

#[test]
fn a_workload_run_writes_a_json_report() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("report.json");
    let (code, out, err) = stormchor(
        &[
            "run",
            "read-only",
            "--duration",
            "1",
            "--json",
            &json.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("json");
    assert_eq!(report["schema"], "stormchor-report/1");
    assert_eq!(report["revision"], 3);
    assert_eq!(report["kind"], "workload");
    assert_eq!(report["name"], "read-only");
    let count = report["operations"]["select"]["count"]
        .as_u64()
        .expect("count");
    assert!(count > 0);
    assert_eq!(
        report["per_second"]
            .as_array()
            .expect("series")
            .iter()
            .map(|v| v.as_u64().unwrap_or(0))
            .sum::<u64>(),
        count
    );
    assert!(
        report["operations"]["select"]["latency_ms"]["p99"]
            .as_f64()
            .expect("p99")
            > 0.0
    );
}

#[test]
fn workload_figures_of_their_own_reach_the_report() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("stress.json");
    let (code, out, err) = stormchor(
        &[
            "run",
            "stress",
            "--duration",
            "1",
            "--json",
            &json.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("catalog_tables: "), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("json");
    assert!(
        report["custom"]["catalog_tables"]
            .as_f64()
            .expect("custom figure")
            >= 1.0
    );
    assert!(
        report["operations"]["create_table"]["count"]
            .as_u64()
            .expect("count")
            >= 1
    );
}
