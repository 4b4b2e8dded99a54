//! Specs run as choreographies on a real server (a throwaway PostgreSQL 15 cluster):
//! specs of the corpus run end to end and must print exactly their expected file; an
//! expected file altered by one line must be reported as differing, with the diff;
//! nothing runs after the point where upstream's tester would have died.

mod common;

use std::time::Duration;

use stormchor_isolation::corpus::Corpus;
use stormchor_isolation::driver::RunOptions;
use stormchor_isolation::suite::{Verdict, run_test};
use stormchor_postgres::{ClusterOptions, PgCluster};

/// Short bounds: a step that never completes is cancelled after 60 s.
fn options() -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(60),
        ..RunOptions::default()
    }
}

async fn cluster() -> PgCluster {
    PgCluster::start(ClusterOptions {
        settings: vec![("max_prepared_transactions".into(), "10".into())],
        ..ClusterOptions::default()
    })
    .await
    .expect("a throwaway PostgreSQL cluster starts")
}

/// Runs `names` of the corpus on one cluster; each must match its expected file.
async fn must_match(test: &str, names: &[&str]) {
    let Some(corpus) = common::corpus(test) else {
        return;
    };
    let cluster = cluster().await;
    for name in names {
        let result = run_test(&corpus, name, &cluster.connection_string(), &options()).await;
        match &result.verdict {
            Verdict::Matched { file } => {
                eprintln!(
                    "{name}: matched {file} in {:.1} s",
                    result.elapsed.as_secs_f64()
                );
            }
            other => panic!(
                "{name} did not match: {other:#?}\noutput:\n{}",
                result.output
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlock_simple_matches() {
    must_match("deadlock_simple_matches", &["deadlock-simple"]).await;
}

/// `(other)` markers (tuplelock-update) and a `(*)` marker with completions held to
/// the end (multiple-cic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_with_markers_match() {
    must_match(
        "specs_with_markers_match",
        &["tuplelock-update", "multiple-cic"],
    )
    .await;
}

/// Notices printed with their session prefix (`s1: NOTICE:  ...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_with_notices_matches() {
    must_match("a_spec_with_notices_matches", &["eval-plan-qual-trigger"]).await;
}

/// No permutation lines: every interleaving, in upstream's order, with steps that
/// wait (`nowait`: 6 permutations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_without_permutation_lines_matches() {
    must_match("a_spec_without_permutation_lines_matches", &["nowait"]).await;
}

/// The negative test: the corpus's files for deadlock-simple copied into a temporary
/// directory, one line of the expected file altered there; the run is reported as
/// differing, and the diff shows the altered line against what the server printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expected_file_altered_by_one_line_differs() {
    let Some(corpus) = common::corpus("an_expected_file_altered_by_one_line_differs") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("specs dir");
    std::fs::create_dir_all(dir.path().join("expected")).expect("expected dir");
    std::fs::write(
        dir.path().join("isolation_schedule"),
        "test: deadlock-simple\n",
    )
    .expect("schedule");
    std::fs::copy(
        corpus.spec_path("deadlock-simple"),
        dir.path().join("specs/deadlock-simple.spec"),
    )
    .expect("spec copied");
    let original = std::fs::read_to_string(corpus.root().join("expected/deadlock-simple.out"))
        .expect("expected file");
    let target = "step s1ae: LOCK TABLE a1 IN ACCESS EXCLUSIVE MODE; <waiting ...>";
    assert!(
        original.contains(target),
        "the line to alter is in the file"
    );
    let altered = original.replacen(target, "step s1ae: LOCK TABLE a1; <waiting ...>", 1);
    std::fs::write(dir.path().join("expected/deadlock-simple.out"), &altered)
        .expect("altered file");
    let copy = Corpus::new(dir.path());

    let cluster = cluster().await;
    let result = run_test(
        &copy,
        "deadlock-simple",
        &cluster.connection_string(),
        &options(),
    )
    .await;
    let Verdict::Differed { file, diff, .. } = &result.verdict else {
        panic!("an altered expected file must differ: {:?}", result.verdict);
    };
    assert_eq!(file, "deadlock-simple.out");
    assert!(
        diff.contains("-step s1ae: LOCK TABLE a1; <waiting ...>\n")
            && diff.contains(&format!("+{target}\n")),
        "the diff shows the altered line and the printed one:\n{diff}"
    );
    // The unaltered file still matches (the difference is the altered line alone).
    let again = run_test(
        &corpus,
        "deadlock-simple",
        &cluster.connection_string(),
        &options(),
    )
    .await;
    assert!(
        matches!(again.verdict, Verdict::Matched { .. }),
        "{:?}",
        again.verdict
    );
}

/// The whole corpus (about 2 minutes), on a server set up as the command sets it up:
/// at least 90% of the tests this server can run match exactly, and none fails to
/// parse. `cargo test -p stormchor-isolation --test
/// driver -- --ignored --nocapture`; `stormchor isolation-suite` runs the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the whole corpus takes minutes"]
async fn the_whole_corpus_matches_at_least_90_percent() {
    let Some(corpus) = common::corpus("the_whole_corpus_matches_at_least_90_percent") else {
        return;
    };
    // As `stormchor isolation-suite` runs it: pg_regress's database (specs name it)
    // and the server settings the suite sets.
    let cluster = PgCluster::start(ClusterOptions {
        settings: vec![
            ("max_prepared_transactions".into(), "10".into()),
            ("max_locks_per_transaction".into(), "128".into()),
        ],
        ..ClusterOptions::default()
    })
    .await
    .expect("a throwaway PostgreSQL cluster starts");
    cluster
        .connect()
        .await
        .expect("connects")
        .batch_execute("CREATE DATABASE isolation_regression")
        .await
        .expect("database created");
    let conninfo = cluster.connection_string_for("isolation_regression");
    let (mut matched, mut runnable) = (0, 0);
    for name in corpus.schedule().expect("schedule") {
        let result = run_test(&corpus, &name, &conninfo, &options()).await;
        eprintln!("{name}: {}", result.verdict.kind());
        match result.verdict {
            Verdict::Matched { .. } => {
                matched += 1;
                runnable += 1;
            }
            Verdict::Differed { .. } => runnable += 1,
            Verdict::NotParsed { error } => panic!("{name} does not parse: {error}"),
            Verdict::NeedsNewerServer { .. } => {}
        }
    }
    eprintln!("{matched} of {runnable} runnable tests matched");
    assert!(matched * 10 >= runnable * 9, "{matched} of {runnable}");
}

/// Where upstream's tester dies (here a session's setup fails), nothing after it runs:
/// the choreography's remaining effects (the other session's setup, the steps, the
/// second permutation) do nothing, and the output ends where the tester's would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_runs_after_the_tester_would_have_died() {
    use stormchor_isolation::driver::run_spec_on;
    use stormchor_isolation::output::{Dialect, render};
    use stormchor_isolation::spec::Spec;

    let spec = Spec::parse(
        "setup { CREATE TABLE died_log (who text); }\n\
         teardown { DROP TABLE died_log; }\n\
         session s1 setup { SELECT no_such_function(); } step a { INSERT INTO died_log VALUES ('a'); }\n\
         session s2 setup { INSERT INTO died_log VALUES ('s2 setup'); } step b { INSERT INTO died_log VALUES ('b'); }\n\
         permutation a b\n\
         permutation b a\n",
        "died.spec",
    )
    .expect("parses");
    let cluster = cluster().await;
    let run = run_spec_on(&cluster.connection_string(), "died", &spec, &options())
        .await
        .expect("runs");
    assert!(run.died);
    assert_eq!(run.output.permutations.len(), 1, "no second permutation");
    let printed = render(&run.output, Dialect::CURRENT);
    assert!(
        printed.starts_with(
            "Parsed test spec with 2 sessions\n\nstarting permutation: a b\n\
             setup of session s1 failed: ERROR:  function no_such_function() does not exist\n"
        ),
        "{printed}"
    );
    assert!(!printed.contains("step "), "{printed}");
    let client = cluster.connect().await.expect("connects");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM died_log", &[])
        .await
        .expect("the table is there: no teardown ran")
        .get(0);
    assert_eq!(rows, 0, "s2's setup and the steps did not run");
}
