//! `stormchor isolation-suite` end to end on a throwaway cluster: a corpus directory
//! built at test time from PostgreSQL's isolation corpus (`../shared/pg-isolation`,
//! never copied into the repository), one test matching and one whose expected file
//! is altered by one line. Skips with a message when the corpus is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let path = match std::env::var_os("STORMCHOR_PG_ISOLATION") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/pg-isolation"),
    };
    if path.join("isolation_schedule").is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED isolation_suite: PostgreSQL's isolation corpus is not at {} \
             (put it there or set STORMCHOR_PG_ISOLATION)",
            path.display()
        );
        None
    }
}

/// A corpus directory with `deadlock-simple` as it is and a copy of it, named
/// `deadlock-altered`, whose expected file has one line changed.
fn make_dir(corpus: &Path, dir: &Path) {
    std::fs::create_dir_all(dir.join("specs")).expect("specs");
    std::fs::create_dir_all(dir.join("expected")).expect("expected");
    std::fs::write(
        dir.join("isolation_schedule"),
        "# two tests\ntest: deadlock-simple deadlock-altered\n",
    )
    .expect("schedule");
    let spec = corpus.join("specs/deadlock-simple.spec");
    let out = std::fs::read_to_string(corpus.join("expected/deadlock-simple.out")).expect("out");
    for name in ["deadlock-simple", "deadlock-altered"] {
        std::fs::copy(&spec, dir.join(format!("specs/{name}.spec"))).expect("spec copied");
    }
    std::fs::write(dir.join("expected/deadlock-simple.out"), &out).expect("out copied");
    let altered = out.replacen("step s1c: COMMIT;", "step s1c: ROLLBACK;", 1);
    assert_ne!(altered, out, "the line to alter is in the file");
    std::fs::write(dir.join("expected/deadlock-altered.out"), altered).expect("altered");
}

#[test]
fn the_command_reports_matches_differences_and_fails_on_a_difference() {
    let Some(corpus) = corpus() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    make_dir(&corpus, dir.path());
    let json = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .arg("isolation-suite")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .args(["--step-timeout", "60"])
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("stormchor runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a difference fails the run:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("[2/2] deadlock-altered"),
        "progress line: {stderr}"
    );
    assert!(
        stdout.contains("-step s1c: ROLLBACK;\n+step s1c: COMMIT;\n"),
        "the diff is shown: {stdout}"
    );
    assert!(stdout.contains("2 tests, 1 matched, 1 differed, 0 not parsed, 0 need a newer server"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid json");
    assert_eq!(report["total"], 2);
    assert_eq!(report["matched"], 1);
    assert_eq!(report["differed"], 1);
    assert_eq!(report["not_parsed"], 0);
    assert_eq!(report["needs_newer_server"], 0);
    assert_eq!(report["tests"][0]["name"], "deadlock-simple");
    assert_eq!(report["tests"][0]["verdict"], "matched");
    assert_eq!(report["tests"][1]["verdict"], "differed");

    // The HTML page: the counts, the altered test with its diff (escaped), the matched
    // one listed; nothing it would fetch or run.
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(
        page.contains("<tr><th>differed</th><td>1</td></tr>"),
        "{page}"
    );
    assert!(
        page.contains("<tr><th>matched</th><td>1</td></tr>"),
        "{page}"
    );
    assert!(
        page.contains("<h3 id=\"deadlock-altered\">deadlock-altered</h3>"),
        "{page}"
    );
    assert!(
        page.contains(
            "<span class=\"del\">-step s1c: ROLLBACK;</span>\n<span class=\"add\">+step s1c: COMMIT;</span>"
        ),
        "the diff is in the page: {page}"
    );
    assert!(
        page.contains("<li>deadlock-simple <small>(deadlock-simple.out"),
        "{page}"
    );
    assert!(!page.contains("<li>deadlock-altered"), "{page}");
    for forbidden in ["<script", "src=", "href="] {
        assert!(!page.contains(forbidden), "{forbidden} in the page");
    }

    // The matching test alone passes.
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .arg("isolation-suite")
        .arg(dir.path())
        .arg("deadlock-simple")
        .output()
        .expect("stormchor runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn a_directory_that_is_not_a_corpus_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .arg("isolation-suite")
        .arg(dir.path())
        .output()
        .expect("stormchor runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not an isolation test directory"),
        "{stderr}"
    );
}

/// A spec with two sessions and two permutations, written at test time.
const SPEC: &str = "setup { CREATE TABLE t (x int); }\n\
teardown { DROP TABLE t; }\n\
session s1 setup { BEGIN; } step l1 { LOCK t; } step c1 { COMMIT; }\n\
session s2 step l2 { LOCK t; }\n\
permutation l1 l2 c1\n\
permutation l2 l1 c1\n";

fn stormchor(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(args)
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("stormchor runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn describe_prints_a_permutation_of_a_spec_as_its_choreography() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("lock.spec");
    std::fs::write(&spec, SPEC).expect("spec written");
    let svg = dir.path().join("lock.svg");
    let (code, out, err) = stormchor(&[
        "describe".as_ref(),
        spec.as_os_str(),
        "--permutation".as_ref(),
        "2".as_ref(),
        "--svg".as_ref(),
        svg.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("2 sessions, permutation 2 of 2: l2 l1 c1"),
        "{out}"
    );
    assert!(out.contains("```mermaid\nsequenceDiagram\n"), "{out}");
    assert!(out.contains("participant P0 as Controller\n"), "{out}");
    assert!(out.contains("participant P1 as s1\n"), "{out}");
    // The second permutation: l2 starts before l1.
    let l2 = out
        .find("Note over P2: start step l2: LOCK t as l2")
        .expect("l2 starts");
    let l1 = out
        .find("Note over P1: start step l1: LOCK t as l1")
        .expect("l1 starts");
    assert!(l2 < l1, "{out}");
    assert!(out.contains("Note over P1: finish l1 (Step)"), "{out}");
    assert!(out.contains("control frames: "), "{out}");
    assert!(out.contains("s1:\n"), "every role's program: {out}");
    let drawn = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        drawn.starts_with("<svg") || drawn.starts_with("<?xml"),
        "{drawn}"
    );
    assert!(drawn.contains("start step l2"), "{drawn}");

    // The first permutation by default.
    let (code, out, _) = stormchor(&["describe".as_ref(), spec.as_os_str()]);
    assert_eq!(code, Some(0));
    assert!(out.contains("permutation 1 of 2: l1 l2 c1"), "{out}");
}

#[test]
fn describe_refuses_a_missing_permutation_and_a_broken_spec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("lock.spec");
    std::fs::write(&spec, SPEC).expect("spec written");
    for n in ["3", "0"] {
        let (code, out, err) = stormchor(&[
            "describe".as_ref(),
            spec.as_os_str(),
            "--permutation".as_ref(),
            n.as_ref(),
        ]);
        assert_eq!(code, Some(2), "{out}\n{err}");
        assert!(
            err.contains(&format!("--permutation {n}: ")) && err.contains("has 2 permutation(s)"),
            "{err}"
        );
    }
    let broken = dir.path().join("broken.spec");
    std::fs::write(
        &broken,
        "session s1 step a { SELECT 1; }\npermutation a b\n",
    )
    .expect("written");
    let (code, _, err) = stormchor(&["describe".as_ref(), broken.as_os_str()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("broken.spec:2:15: undefined step \"b\""),
        "{err}"
    );
    let (code, _, err) = stormchor(&[
        "describe".as_ref(),
        "failover".as_ref(),
        "--permutation".as_ref(),
        "1".as_ref(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--permutation chooses a permutation of a spec file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A corpus of one spec, `clobber`, whose setup drops and re-creates a table named
/// `ppk` and whose teardown drops it.
fn clobbering_corpus(dir: &Path) {
    std::fs::create_dir_all(dir.join("specs")).expect("specs");
    std::fs::create_dir_all(dir.join("expected")).expect("expected");
    std::fs::write(dir.join("isolation_schedule"), "test: clobber\n").expect("schedule");
    std::fs::write(
        dir.join("specs/clobber.spec"),
        "setup { DROP TABLE IF EXISTS ppk; CREATE TABLE ppk (a int); }\n\
         teardown { DROP TABLE ppk; }\n\
         session s1\n\
         step s1i { INSERT INTO ppk VALUES (1); }\n",
    )
    .expect("spec");
    std::fs::write(
        dir.join("expected/clobber.out"),
        "Parsed test spec with 1 sessions\n\nstarting permutation: s1i\nstep s1i: INSERT INTO ppk VALUES (1);\n",
    )
    .expect("expected");
}

/// The user's `ppk` rows, and the databases whose name is a run's.
async fn users_state(target: &str) -> (Vec<(i32, String)>, Vec<String>) {
    let client = stormchor::postgres::connect(target).await.expect("connect");
    let rows = client
        .query("SELECT a, precious FROM ppk ORDER BY a", &[])
        .await
        .expect("the user's table is there")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let databases = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'stormchor\\_run\\_isolation\\_%'",
            &[],
        )
        .await
        .expect("databases")
        .iter()
        .map(|row| row.get(0))
        .collect();
    (rows, databases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_target_works_in_a_database_of_its_own_and_drops_it() {
    use stormchor::postgres::{ClusterOptions, PgCluster};
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("the user's server starts");
    let target = cluster.connection_string();
    stormchor::postgres::connect(&target)
        .await
        .expect("connect")
        .batch_execute(
            "CREATE TABLE ppk (a int PRIMARY KEY, precious text);
             INSERT INTO ppk SELECT g, 'user data ' || g FROM generate_series(1, 100) g",
        )
        .await
        .expect("the user's data");
    let (before, none) = users_state(&target).await;
    assert_eq!(before.len(), 100);
    assert!(none.is_empty(), "{none:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    clobbering_corpus(dir.path());
    let output = tokio::task::spawn_blocking({
        let (dir, target) = (dir.path().to_owned(), target.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_stormchor"))
                .arg("isolation-suite")
                .arg(&dir)
                .args(["--target", &target, "--step-timeout", "30"])
                .env_remove("STORMCHOR_TARGET")
                .output()
                .expect("stormchor runs")
        }
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 matched"), "{stdout}");
    let (after, databases) = users_state(&target).await;
    assert_eq!(
        after, before,
        "the spec's DROP TABLE reached the user's table"
    );
    assert!(
        databases.is_empty(),
        "the run's database stayed: {databases:?}"
    );
    cluster.shutdown().await.expect("shutdown");
}

#[test]
fn a_spec_that_does_not_parse_fails_the_run_and_a_scheduled_test_without_a_spec_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    clobbering_corpus(dir.path());
    std::fs::write(
        dir.path().join("specs/truncated.spec"),
        "session s1\nstep s1a { SELECT 1;\n",
    )
    .expect("spec");
    std::fs::write(
        dir.path().join("isolation_schedule"),
        "test: clobber truncated\n",
    )
    .expect("schedule");
    let (code, stdout, stderr) = stormchor(&[
        "isolation-suite".as_ref(),
        dir.path().as_os_str(),
        "--step-timeout".as_ref(),
        "30".as_ref(),
    ]);
    assert_eq!(
        code,
        Some(1),
        "a spec that does not parse fails:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("--- truncated not parsed: ") && stdout.contains("truncated.spec:2:"),
        "the file and place are named: {stdout}"
    );
    assert!(stdout.contains("1 matched"), "{stdout}");

    std::fs::write(
        dir.path().join("isolation_schedule"),
        "# the one test\ntest: clobber missing-one\n",
    )
    .expect("schedule");
    let (code, stdout, stderr) = stormchor(&["isolation-suite".as_ref(), dir.path().as_os_str()]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("isolation_schedule:2: test missing-one has no spec ("),
        "{stderr}"
    );
}

#[test]
fn stormchor_target_aims_the_suite_at_a_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    clobbering_corpus(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .arg("isolation-suite")
        .arg(dir.path())
        .env(
            "STORMCHOR_TARGET",
            "host=127.0.0.1 port=1 user=postgres connect_timeout=5",
        )
        .output()
        .expect("stormchor runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("port=1"),
        "the variable's server was used: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_mid_run_on_a_target_drops_the_runs_database() {
    use stormchor::postgres::{ClusterOptions, PgCluster};
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("the user's server starts");
    let target = cluster.connection_string();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("specs");
    std::fs::create_dir_all(dir.path().join("expected")).expect("expected");
    std::fs::write(dir.path().join("isolation_schedule"), "test: slow\n").expect("schedule");
    std::fs::write(
        dir.path().join("specs/slow.spec"),
        "session s1\nstep s1s { SELECT pg_sleep(120); }\n",
    )
    .expect("spec");
    std::fs::write(dir.path().join("expected/slow.out"), "never compared\n").expect("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .arg("isolation-suite")
        .arg(dir.path())
        .args(["--target", &target, "--step-timeout", "300"])
        .env_remove("STORMCHOR_TARGET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("stormchor starts");
    let client = stormchor::postgres::connect(&target)
        .await
        .expect("connect");
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND application_name LIKE 'isolation/%'";
    let mut started = false;
    for _ in 0..600 {
        if client
            .query_one(sleeping, &[])
            .await
            .expect("activity")
            .get::<_, i64>(0)
            > 0
        {
            started = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(started, "the step never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let status = tokio::task::spawn_blocking(move || child.wait().expect("waited"))
        .await
        .expect("joined");
    assert_eq!(status.code(), Some(143));
    let left = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'stormchor\\_run\\_isolation\\_%'",
            &[],
        )
        .await
        .expect("databases")
        .get::<_, i64>(0);
    assert_eq!(left, 0, "the run's database stayed after the signal");
    drop(client);
    cluster.shutdown().await.expect("shutdown");
}
