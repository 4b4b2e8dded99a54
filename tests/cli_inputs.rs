//! Every bad input of the command, table-driven: exit status 2, a message naming the
//! input, no panic, and nothing started (no cluster); and the duration forms and
//! workload files that `run`, `describe` and `validate` accept.

use std::path::Path;
use std::process::Command;

const VARIABLES: [&str; 10] = [
    "STORMCHOR_TARGET",
    "STORMCHOR_WORKERS",
    "STORMCHOR_DURATION",
    "STORMCHOR_SEED",
    "STORMCHOR_SCALE",
    "STORMCHOR_ROUNDS",
    "STORMCHOR_RATE",
    "STORMCHOR_JSON",
    "STORMCHOR_HTML",
    "STORMCHOR_CONFIG",
];

/// Runs the command in `dir` (files of the table are relative to it).
fn stormchor(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stormchor"));
    command.current_dir(dir).args(args);
    for name in VARIABLES {
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

/// A workload file with one parameter, `param`.
fn workload(param: &str) -> String {
    format!(
        "name = \"w\"\n[[operations]]\nname = \"op\"\nsql = \"SELECT $1\"\nparams = [{param}]\n"
    )
}

fn files(dir: &Path) {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("written");
    write(
        "minus-inf.toml",
        &workload("{ type = \"float\", min = -inf, max = 1.0 }"),
    );
    write(
        "nan.toml",
        &workload("{ type = \"float\", min = nan, max = 1.0 }"),
    );
    write(
        "long-text.toml",
        &workload("{ type = \"text\", length = 9223372036854775807 }"),
    );
    write(
        "zipf.toml",
        &workload("{ type = \"zipf\", n = 10, exponent = nan }"),
    );
    write(
        "bad.yaml",
        "name: w\noperations: [{ name: op, sql: SELECT 1 }]\nsetp: x\n",
    );
    write(
        "good.yaml",
        "name: w\noperations: [{ name: op, weight: 3, sql: SELECT 1 }]\n",
    );
    write("zero-workers.toml", "workers = 0\n");
    write("bad-duration.toml", "duration = \"1x\"\n");
    write("long.toml", "duration = \"1h30m\"\n");
    std::fs::create_dir_all(dir.join("a-directory")).expect("dir");
    // A FIFO: opening it for writing would wait for a reader forever.
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("a-pipe"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
}

/// A bad input: its arguments, its environment, a text the error must hold.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn every_bad_input_is_a_usage_error_naming_it_before_anything_starts() {
    let dir = tempfile::tempdir().expect("dir");
    files(dir.path());
    let target = "host=127.0.0.1 port=1 user=postgres connect_timeout=1";
    // (arguments, environment, a text the error must hold)
    let table: &[Case] = &[
        // Numbers out of range, for every kind of run.
        (
            &["run", "read-only", "--duration", "18446744073709551615"],
            &[],
            "--duration 18446744073709551615",
        ),
        (
            &["run", "stress-check", "--duration", "18446744073709551615"],
            &[],
            "--duration 18446744073709551615",
        ),
        (
            &[
                "run",
                "backup-restore",
                "--duration",
                "18446744073709551615",
            ],
            &[],
            "--duration 18446744073709551615",
        ),
        (
            &["run", "crash-recovery", "--rounds", "4294967295"],
            &[],
            "--rounds 4294967295",
        ),
        (
            &["run", "read-only", "--workers", "65535"],
            &[],
            "--workers 65535",
        ),
        (
            &["run", "read-only", "--rate", "1e-300"],
            &[],
            "--rate 1e-300",
        ),
        (&["run", "read-only", "--rate", "inf"], &[], "--rate inf"),
        (&["run", "read-only", "--rate", "0"], &[], "--rate 0"),
        (&["run", "read-only", "--rate", "-5"], &[], "--rate -5"),
        (&["run", "read-only", "--rate", "NaN"], &[], "--rate NaN"),
        (&["run", "read-only", "--scale", "0"], &[], "--scale 0"),
        (
            &["run", "tpcb", "--scale", "4294967295"],
            &[],
            "--scale 4294967295",
        ),
        // Zero workers, rounds, duration: refused alike everywhere.
        (&["run", "read-only", "--workers", "0"], &[], "--workers 0"),
        (
            &["run", "stress-check", "--workers", "0"],
            &[],
            "--workers 0",
        ),
        (&["run", "failover", "--workers", "0"], &[], "--workers 0"),
        (&["run", "pitr", "--rounds", "0"], &[], "--rounds 0"),
        (
            &["run", "crash-recovery", "--rounds", "0"],
            &[],
            "--rounds 0",
        ),
        (
            &["run", "read-only", "--duration", "0"],
            &[],
            "--duration 0",
        ),
        (
            &["run", "backup-restore", "--duration", "0"],
            &[],
            "--duration 0",
        ),
        (
            &["run", "stress-check", "--duration", "0s"],
            &[],
            "--duration 0",
        ),
        // The same from the environment and the config file.
        (
            &["run", "read-only"],
            &[("STORMCHOR_WORKERS", "0")],
            "environment variable STORMCHOR_WORKERS=0",
        ),
        (
            &["run", "read-only"],
            &[("STORMCHOR_RATE", "inf")],
            "environment variable STORMCHOR_RATE=inf",
        ),
        (
            &["run", "read-only"],
            &[("STORMCHOR_DURATION", "forever")],
            "STORMCHOR_DURATION=forever",
        ),
        (
            &["run", "read-only", "--config", "zero-workers.toml"],
            &[],
            "zero-workers.toml: workers = 0",
        ),
        (
            &["run", "read-only", "--config", "bad-duration.toml"],
            &[],
            "`1x` is not a duration",
        ),
        (
            &["validate", "zero-workers.toml"],
            &[],
            "zero-workers.toml: workers = 0",
        ),
        (
            &["run", "read-only", "--duration", "5minutes"],
            &[],
            "`5minutes` is not a duration",
        ),
        // Generators that would panic or exhaust memory: in run, validate and describe.
        (
            &["run", "minus-inf.toml"],
            &[],
            "minus-inf.toml: operation 1 (op), parameter 1: a float needs finite min and max, found min -inf",
        ),
        (
            &["run", "nan.toml"],
            &[],
            "nan.toml: operation 1 (op), parameter 1: a float needs finite min and max, found min NaN",
        ),
        (
            &["run", "long-text.toml"],
            &[],
            "long-text.toml: operation 1 (op), parameter 1: text length 9223372036854775807",
        ),
        (
            &["run", "zipf.toml"],
            &[],
            "zipf.toml: operation 1 (op), parameter 1: zipf needs",
        ),
        (
            &["validate", "minus-inf.toml"],
            &[],
            "minus-inf.toml: operation 1 (op), parameter 1: a float needs finite",
        ),
        (
            &["validate", "long-text.toml"],
            &[],
            "text length 9223372036854775807",
        ),
        (
            &["describe", "nan.toml"],
            &[],
            "nan.toml: operation 1 (op), parameter 1: a float needs finite",
        ),
        (
            &["validate", "bad.yaml"],
            &[],
            "bad.yaml: error: line 3 column 1: unknown field `setp`",
        ),
        (&["run", "bad.yaml"], &[], "unknown field `setp`"),
        (&["run", "missing.toml"], &[], "cannot read missing.toml"),
        // Flags that do not apply.
        (
            &["run", "tpcb", "--inject", "skip-wal-replay"],
            &[],
            "--inject applies to scenarios; `tpcb` is a workload",
        ),
        (
            &["run", "backup-restore", "--inject", "weaker-isolation"],
            &[],
            "cannot inject `weaker-isolation`",
        ),
        (
            &["run", "backup-restore", "--schema", "good.yaml"],
            &[],
            "--schema does not apply",
        ),
        (
            &["run", "tpcb", "--schema", "good.yaml"],
            &[],
            "--schema applies to the existing-database scenario",
        ),
        (
            &[
                "run",
                "existing-database",
                "--schema",
                "good.yaml",
                "--target",
                target,
                "--on-user-tables",
            ],
            &[],
            "--schema loads a schema into a throwaway cluster",
        ),
        (
            &["run", "backup-restore", "--rate", "10"],
            &[],
            "--rate applies to workloads",
        ),
        (
            &["run", "failover", "--rounds", "2"],
            &[],
            "it has no rounds; --rounds applies to crash-recovery, pitr",
        ),
        (
            &["run", "tpcb", "--rounds", "2"],
            &[],
            "--rounds applies to scenarios",
        ),
        (
            &["run", "isolation", "--workers", "3"],
            &[],
            "isolation: it has no workers",
        ),
        (
            &["run", "isolation", "--duration", "3"],
            &[],
            "isolation: it has no load phase",
        ),
        (
            &["run", "stress", "--scale", "2"],
            &[],
            "--scale applies to the pgbench workloads",
        ),
        (
            &["run", "stress-check", "--on-user-tables"],
            &[],
            "--on-user-tables applies with --target only",
        ),
        (
            &["run", "tpcb", "--on-user-tables"],
            &[],
            "--on-user-tables applies to the stress scenarios",
        ),
        (
            &["run", "backup-restore", "--pipeline"],
            &[],
            "--pipeline applies to workloads (tpcb, read-only)",
        ),
        (
            &["run", "stress", "--pipeline"],
            &[],
            "--pipeline: `stress` cannot pipeline its statements",
        ),
        (
            &["run", "tpcb", "--amcheck-each-round"],
            &[],
            "--amcheck-each-round applies to the crash-recovery scenario",
        ),
        (
            &["run", "pitr", "--amcheck-each-round"],
            &[],
            "--amcheck-each-round applies to crash-recovery",
        ),
        (
            &["run", "crash-recovery", "--discover-schemas", "public"],
            &[],
            "--discover-schemas applies to existing-database",
        ),
        // Report paths, checked before the run.
        (
            &["run", "read-only", "--json", "no/such/dir/report.json"],
            &[],
            "--json no/such/dir/report.json: cannot write there",
        ),
        (
            &["run", "stress-check", "--html", "a-directory"],
            &[],
            "--html a-directory: is a directory",
        ),
        (
            &["run", "read-only", "--json", "a-pipe"],
            &[],
            "--json a-pipe: is a pipe or socket",
        ),
        (
            &[
                "run",
                "crash-recovery",
                "--json",
                "r.out",
                "--html",
                "./r.out",
            ],
            &[],
            "--json and --html are both r.out",
        ),
        (
            &["describe", "crash-recvery"],
            &[],
            "(did you mean `crash-recovery`?)",
        ),
        (
            &["run", "read-only"],
            &[("STORMCHOR_JSON", "no/such/dir/r.json")],
            "--json no/such/dir/r.json",
        ),
        (
            &["isolation-suite", ".", "--json", "no/such/dir/r.json"],
            &[],
            "is not an isolation test directory",
        ),
        (
            &["isolation-suite", ".", "--step-timeout", "0"],
            &[],
            "--step-timeout 0",
        ),
    ];
    let mut failures = Vec::new();
    for (args, env, expected) in table {
        let (code, out, err) = stormchor(dir.path(), args, env);
        let problems: Vec<&str> = [
            (code != 2, "exit status is not 2"),
            (!err.contains(expected), "the error does not name the input"),
            (
                err.contains("panicked") || out.contains("panicked"),
                "it panicked",
            ),
            (
                out.contains("Started a throwaway") || out.contains("Running "),
                "something started",
            ),
        ]
        .into_iter()
        .filter_map(|(bad, what)| bad.then_some(what))
        .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "{args:?} {env:?}: {} (exit {code}; expected {expected:?})\nstderr: {err}\nstdout: {out}",
                problems.join(", ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

#[test]
fn durations_and_workload_files_are_read_alike_everywhere() {
    let dir = tempfile::tempdir().expect("dir");
    files(dir.path());
    for (args, env, expected) in [
        (
            &["run", "read-only", "--duration", "1h30m", "--show-config"][..],
            &[][..],
            "duration = 5400 (flag)",
        ),
        (
            &["run", "read-only", "--duration", "30s", "--show-config"],
            &[],
            "duration = 30 (flag)",
        ),
        (
            &["run", "read-only", "--show-config"],
            &[("STORMCHOR_DURATION", "5m")],
            "duration = 300 (env)",
        ),
        (
            &["run", "read-only", "--config", "long.toml", "--show-config"],
            &[],
            "duration = 5400 (file)",
        ),
        (&["validate", "good.yaml"], &[], "good.yaml is valid."),
        (&["validate", "long.toml"], &[], "long.toml is valid."),
        (
            &["describe", "good.yaml"],
            &[],
            "operation weights:\n  op               3",
        ),
    ] {
        let (code, out, err) = stormchor(dir.path(), args, env);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
}

#[test]
fn the_help_says_what_on_user_tables_leaves_behind() {
    // docs/cli.md: existing-database and stress-check on a target with
    // --on-user-tables work on your tables, and the workers' own `w<k>_` tables stay.
    let dir = tempfile::tempdir().expect("a directory");
    for flag in ["--help", "-h"] {
        let (code, out, err) = stormchor(dir.path(), &["run", flag], &[]);
        assert_eq!(code, 0, "{err}");
        let text = out.split_whitespace().collect::<Vec<_>>().join(" ");
        let at = text.find("--on-user-tables").expect("the flag is listed");
        let help = &text[at..];
        for said in [
            "existing-database and stress-check",
            "the tables each worker makes there (`w<k>_...`) stay after the run",
        ] {
            assert!(help.contains(said), "{flag}: {said:?} not in {help:?}");
        }
    }
}
