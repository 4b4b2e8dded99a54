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
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .arg("isolation-suite")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .args(["--step-timeout", "60"])
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
