//! The parser, the permutations and the dialect detection over PostgreSQL's whole
//! isolation corpus, read at test time (see `common`).

mod common;

use stormchor_isolation::output::{ResultStyle, TestOutput, render};
use stormchor_isolation::permutations::{count, permutations};

#[test]
fn every_spec_of_the_corpus_parses() {
    let Some(corpus) = common::corpus("every_spec_of_the_corpus_parses") else {
        return;
    };
    let names = common::spec_names(&corpus);
    assert!(!names.is_empty(), "no spec in {}", corpus.root().display());
    let mut failures = Vec::new();
    let (mut sessions, mut steps, mut listed) = (0, 0, 0);
    for name in &names {
        match corpus.spec(name) {
            Ok(spec) => {
                sessions += spec.sessions.len();
                steps += spec.sessions.iter().map(|s| s.steps.len()).sum::<usize>();
                listed += spec.permutations.len();
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    eprintln!(
        "parsed {} of {} specs: {sessions} sessions, {steps} steps, {listed} permutation lines",
        names.len() - failures.len(),
        names.len()
    );
    assert!(
        failures.is_empty(),
        "specs that do not parse:\n{}",
        failures.join("\n")
    );

    // The schedule names only specs that exist.
    let schedule = corpus.schedule().expect("schedule readable");
    let missing: Vec<&String> = schedule.iter().filter(|n| !names.contains(n)).collect();
    assert!(missing.is_empty(), "scheduled without a spec: {missing:?}");
}

/// The permutations we would run are exactly the `starting permutation:` lines of the
/// expected file, in order: for listed ones (names as written) and, above all, for the
/// generated ones (upstream's order of interleavings).
#[test]
fn permutations_match_the_expected_files_permutation_lines() {
    let Some(corpus) = common::corpus("permutations_match_the_expected_files_permutation_lines")
    else {
        return;
    };
    let mut mismatches = Vec::new();
    let (mut checked, mut generated) = (0, 0);
    for name in common::spec_names(&corpus) {
        let spec = corpus.spec(&name).expect("parses (see the other test)");
        let expected = corpus.expected(&name).expect("expected files readable");
        let Some(main) = expected.iter().find(|e| e.file == format!("{name}.out")) else {
            mismatches.push(format!("{name}: no {name}.out"));
            continue;
        };
        let ours: Vec<Vec<String>> = permutations(&spec)
            .map(|p| p.step_names().map(String::from).collect())
            .collect();
        assert_eq!(count(&spec), Some(ours.len() as u128), "{name}: count");
        let theirs = common::expected_permutations(&main.text);
        if ours != theirs {
            let first = ours
                .iter()
                .zip(&theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(theirs.len()));
            mismatches.push(format!(
                "{name}: {} permutations vs {} expected; first difference at #{first}: {:?} vs {:?}",
                ours.len(),
                theirs.len(),
                ours.get(first),
                theirs.get(first)
            ));
        }
        checked += 1;
        if spec.permutations.is_empty() {
            generated += 1;
        }
    }
    eprintln!(
        "permutation lines equal for {checked} specs ({generated} with generated permutations)"
    );
    assert!(
        generated > 0,
        "the corpus should have specs without permutation lines"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// What precedes the first permutation (the unused-step warnings, sorted, and the
/// `Parsed test spec` line) is what the expected files show, printed in each file's
/// dialect. The files that differ are listed: spec/expected pairs where the expected
/// file was made with a spec that used every step, i.e. pairs on which isolationtester
/// itself would fail.
#[test]
fn headings_match_the_expected_files() {
    let Some(corpus) = common::corpus("headings_match_the_expected_files") else {
        return;
    };
    let mut mismatches = Vec::new();
    let (mut files, mut with_warnings) = (0, 0);
    for name in common::spec_names(&corpus) {
        let spec = corpus.spec(&name).expect("parses");
        for e in corpus.expected(&name).expect("readable") {
            files += 1;
            let ours = render(&TestOutput::for_spec(&spec), e.dialect());
            let theirs = common::section(&e.text, None);
            if theirs.contains("unused step name: ") {
                with_warnings += 1;
            }
            if ours != theirs {
                // Only missing warnings may differ: without them, the rest (the session
                // count) must be ours exactly, and a file showing warnings must show ours.
                let without: String = ours
                    .lines()
                    .filter(|l| !l.starts_with("unused step name: "))
                    .map(|l| format!("{l}\n"))
                    .collect();
                assert!(
                    without == theirs && !theirs.contains("unused step name: "),
                    "{}: heading differs in more than missing warnings:\n  ours: {ours:?}\n  file: {theirs:?}",
                    e.file
                );
                mismatches.push(format!("{}: lacks {ours:?}", e.file));
            }
        }
    }
    eprintln!(
        "headings equal in {} of {files} expected files ({with_warnings} with unused-step warnings); \
         differing (stale pairs):\n{}",
        files - mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        with_warnings > 0,
        "no file shows the warnings: the test would prove nothing"
    );
}

/// The expected files that SOURCE.md lists as written in the pre-14 format are detected
/// as such, and every file that prints a row count is detected as current.
#[test]
fn dialect_detection_agrees_with_the_corpus_notes() {
    let Some(corpus) = common::corpus("dialect_detection_agrees_with_the_corpus_notes") else {
        return;
    };
    let notes = std::fs::read_to_string(corpus.root().join("SOURCE.md")).unwrap_or_default();
    // The list under the heading about the two formats: lines "- NAME.out".
    let listed: Vec<String> = notes
        .split("## Two output formats")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter(|l| l.ends_with(".out"))
        .map(String::from)
        .collect();
    let mut wrong = Vec::new();
    let mut padded = Vec::new();
    let mut files = 0;
    for name in common::spec_names(&corpus) {
        for e in corpus.expected(&name).expect("readable") {
            files += 1;
            let dialect = e.dialect();
            let counts_rows = e
                .text
                .lines()
                .any(|l| l.starts_with('(') && (l.ends_with(" rows)") || l == "(1 row)"));
            if dialect.results == ResultStyle::Padded {
                padded.push(e.file.clone());
                if counts_rows {
                    wrong.push(format!("{}: prints row counts, detected pre-14", e.file));
                }
            } else if listed.contains(&e.file) {
                wrong.push(format!(
                    "{}: listed as pre-14, detected {dialect:?}",
                    e.file
                ));
            }
        }
    }
    eprintln!(
        "{files} expected files; detected pre-14: {padded:?}; SOURCE.md lists {}",
        listed.len()
    );
    if listed.is_empty() {
        eprintln!("SOURCE.md lists no pre-14 files: only the row-count rule was checked");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
