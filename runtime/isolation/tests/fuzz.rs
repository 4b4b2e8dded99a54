//! The parser never panics and always places its errors inside the input: random
//! bytes, random token soup, and the corpus's specs mutated at random. And a printed
//! random spec parses back to itself.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use stormchor_isolation::spec::{Blocker, Spec, SpecError};

/// A runner of `cases` cases from a fixed seed (the same inputs on every run).
fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]),
    )
}

/// An error's position must be a place of the input (or just past its end).
fn check_position(input: &[u8], error: &SpecError) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(input);
    let lines: Vec<&str> = text.split('\n').collect();
    let p = error.position;
    prop_assert!(
        p.line >= 1 && p.line <= lines.len(),
        "{error} outside {} lines",
        lines.len()
    );
    let width = lines[p.line - 1].chars().count();
    prop_assert!(
        p.column >= 1 && p.column <= width + 1,
        "{error}: line is {width} wide"
    );
    let prefix = format!("{}:{}:{}: ", error.file, p.line, p.column);
    prop_assert!(error.to_string().starts_with(&prefix), "{error}");
    Ok(())
}

fn parse_and_check(input: &[u8]) -> Result<(), TestCaseError> {
    match Spec::parse_bytes(input, "fuzz.spec") {
        Ok(spec) => {
            prop_assert!(!spec.sessions.is_empty());
            prop_assert!(spec.sessions.iter().all(|s| !s.steps.is_empty()));
        }
        Err(e) => check_position(input, &e)?,
    }
    Ok(())
}

#[test]
fn random_bytes_never_panic() {
    let count = AtomicUsize::new(0);
    runner(3000)
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |bytes| {
            count.fetch_add(1, Ordering::Relaxed);
            parse_and_check(&bytes)
        })
        .expect("no failure");
    let n = count.load(Ordering::Relaxed);
    eprintln!("random bytes: {n} inputs");
    assert!(n >= 3000);
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("setup".to_string()),
        Just("teardown".to_string()),
        Just("session".to_string()),
        Just("step".to_string()),
        Just("permutation".to_string()),
        Just("notices".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("*".to_string()),
        Just("{ SELECT 1; }".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("\n".to_string()),
        Just("# comment\n".to_string()),
        "[a-c]{1,2}",
        "\"[a-c\"]{0,3}\"",
        "[0-9]{1,12}",
    ]
}

#[test]
fn random_token_soup_never_panics() {
    let count = AtomicUsize::new(0);
    let parsed = AtomicUsize::new(0);
    // Half the soups follow a valid beginning, to reach the permutation grammar and the
    // checks after parsing.
    let prefixes = prop_oneof![
        Just(""),
        Just("session s1 step a {} step b {} session s2 step c {}"),
        Just("session s1 step a {} session s2 step b {} permutation a"),
    ];
    let soup = (prefixes, proptest::collection::vec(token(), 0..40))
        .prop_map(|(prefix, t)| format!("{prefix} {}", t.join(" ")));
    runner(1500)
        .run(&soup, |text| {
            count.fetch_add(1, Ordering::Relaxed);
            if Spec::parse(&text, "soup.spec").is_ok() {
                parsed.fetch_add(1, Ordering::Relaxed);
            }
            parse_and_check(text.as_bytes())
        })
        .expect("no failure");
    let n = count.load(Ordering::Relaxed);
    eprintln!(
        "token soup: {n} inputs, {} valid specs",
        parsed.load(Ordering::Relaxed)
    );
    assert!(n >= 1500);
}

/// One edit of a text: delete, insert, duplicate, or cut at a relative place.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(f64, usize),
    Insert(f64, String),
    Duplicate(f64, usize),
    Truncate(f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let place = 0.0..1.0f64;
    prop_oneof![
        (place.clone(), 1..40usize).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (place.clone(), "[{}()\",*#\n a-z0-9\u{e9}]{1,6}")
            .prop_map(|(p, s)| Mutation::Insert(p, s)),
        (place.clone(), 1..200usize).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        place.prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
    match m {
        Mutation::Delete(p, n) => {
            let start = at(*p, text.len());
            let end = (start + n).min(text.len());
            text.drain(start..end);
        }
        Mutation::Insert(p, s) => {
            let start = at(*p, text.len());
            text.splice(start..start, s.bytes());
        }
        Mutation::Duplicate(p, n) => {
            let start = at(*p, text.len());
            let end = (start + n).min(text.len());
            let copy = text[start..end].to_vec();
            text.splice(end..end, copy);
        }
        Mutation::Truncate(p) => {
            let end = at(*p, text.len());
            text.truncate(end);
        }
    }
}

const HAND_MADE: &str = "setup { CREATE TABLE t (x int); }\nteardown { DROP TABLE t; }\n\
    session s1 setup { BEGIN; } step a { UPDATE t SET x = 1; } step c { COMMIT; }\n\
    session \"s 2\" step b { SELECT * FROM t; } teardown { ROLLBACK; }\n\
    permutation a b(a) c\npermutation a(*) b(a notices 2) c\n";

#[test]
fn mutated_real_specs_never_panic() {
    let mut sources: Vec<(String, Vec<u8>)> =
        vec![("hand-made".into(), HAND_MADE.as_bytes().to_vec())];
    if let Some(corpus) =
        common::corpus("mutated_real_specs_never_panic (mutating a hand-made spec only)")
    {
        for name in common::spec_names(&corpus) {
            let bytes = std::fs::read(corpus.spec_path(&name)).expect("readable");
            sources.push((name, bytes));
        }
    }
    let count = AtomicUsize::new(0);
    let still_valid = AtomicUsize::new(0);
    let strategy = (
        0..sources.len(),
        proptest::collection::vec(mutation(), 1..5),
    );
    runner(4000)
        .run(&strategy, |(index, mutations)| {
            count.fetch_add(1, Ordering::Relaxed);
            let mut text = sources[index].1.clone();
            for m in &mutations {
                apply(&mut text, m);
            }
            if Spec::parse_bytes(&text, "m.spec").is_ok() {
                still_valid.fetch_add(1, Ordering::Relaxed);
            }
            parse_and_check(&text)
        })
        .expect("no failure");
    let n = count.load(Ordering::Relaxed);
    eprintln!(
        "mutated specs: {n} inputs from {} sources, {} still valid",
        sources.len(),
        still_valid.load(Ordering::Relaxed)
    );
    assert!(n >= 4000);
}

/// A session's name, setup, steps' SQL and teardown.
type SessionShape = (String, Option<String>, Vec<String>, Option<String>);

/// A random valid spec, as the parser should read it back.
#[derive(Clone, Debug)]
struct Shape {
    setups: Vec<String>,
    teardown: Option<String>,
    sessions: Vec<SessionShape>,
    permutations: Vec<Vec<(usize, bool, Vec<usize>)>>,
}

fn sql() -> impl Strategy<Value = String> {
    // No `}`; no space or tab next to the braces (the parser trims those).
    "([A-Za-z0-9;'(]([A-Za-z0-9;'( \n{#\"]{0,20}[A-Za-z0-9;'(\n])?)?"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z\"é$_ ]{0,6}"
}

fn shape() -> impl Strategy<Value = Shape> {
    let session = (
        name(),
        proptest::option::of(sql()),
        proptest::collection::vec(sql(), 1..4),
        proptest::option::of(sql()),
    );
    (
        proptest::collection::vec(sql(), 0..3),
        proptest::option::of(sql()),
        proptest::collection::vec(session, 1..4),
        proptest::collection::vec(
            proptest::collection::vec(
                (
                    0..12usize,
                    any::<bool>(),
                    proptest::collection::vec(0..12usize, 0..3),
                ),
                1..6,
            ),
            0..3,
        ),
    )
        .prop_map(|(setups, teardown, sessions, permutations)| Shape {
            setups,
            teardown,
            sessions,
            permutations,
        })
}

/// The text of a shape: step `k` (in file order) is named `"<k>:<name>"`, quoted.
fn print(shape: &Shape) -> (String, Vec<(usize, String)>) {
    let quote = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    let mut text = String::new();
    let mut steps = Vec::new();
    for s in &shape.setups {
        text.push_str(&format!("setup {{{s}}}\n"));
    }
    if let Some(t) = &shape.teardown {
        text.push_str(&format!("teardown {{{t}}}\n"));
    }
    for (i, (session, setup, body, teardown)) in shape.sessions.iter().enumerate() {
        text.push_str(&format!("session {}\n", quote(session)));
        if let Some(s) = setup {
            text.push_str(&format!("setup {{{s}}}\n"));
        }
        for b in body {
            let name = format!("{}:{session}", steps.len());
            text.push_str(&format!("step {} {{{b}}}\n", quote(&name)));
            steps.push((i, name));
        }
        if let Some(t) = teardown {
            text.push_str(&format!("teardown {{{t}}}\n"));
        }
    }
    (text, steps)
}

#[test]
fn printed_random_specs_parse_back() {
    let count = AtomicUsize::new(0);
    runner(1000)
        .run(&shape(), |shape| {
            count.fetch_add(1, Ordering::Relaxed);
            let (mut text, steps) = print(&shape);
            // Permutations over existing steps; markers only on steps of other sessions
            // that the permutation also runs (otherwise the checks reject them).
            let mut expected_permutations = Vec::new();
            for p in &shape.permutations {
                let chosen: Vec<usize> = p.iter().map(|(k, _, _)| k % steps.len()).collect();
                let mut line = String::from("permutation");
                let mut expected = Vec::new();
                for ((_, once, blockers), step) in p.iter().zip(&chosen) {
                    let mut markers = Vec::new();
                    if *once {
                        markers.push("*".to_string());
                    }
                    for b in blockers {
                        let other = chosen[b % chosen.len()];
                        if steps[other].0 != steps[*step].0 {
                            markers.push(format!(
                                "\"{}\" notices {b}",
                                steps[other].1.replace('"', "\"\"")
                            ));
                        }
                    }
                    line.push_str(&format!(" \"{}\"", steps[*step].1.replace('"', "\"\"")));
                    if !markers.is_empty() {
                        line.push_str(&format!("({})", markers.join(", ")));
                    }
                    expected.push((steps[*step].1.clone(), markers.len()));
                }
                text.push_str(&line);
                text.push('\n');
                expected_permutations.push(expected);
            }
            let spec = Spec::parse(&text, "rt.spec")
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let setups: Vec<&str> = spec.setups.iter().map(|b| b.sql.as_str()).collect();
            prop_assert_eq!(
                setups,
                shape.setups.iter().map(String::as_str).collect::<Vec<_>>()
            );
            prop_assert_eq!(
                spec.teardown.as_ref().map(|b| &b.sql),
                shape.teardown.as_ref()
            );
            prop_assert_eq!(spec.sessions.len(), shape.sessions.len());
            for (s, (name, setup, body, teardown)) in spec.sessions.iter().zip(&shape.sessions) {
                prop_assert_eq!(&s.name, name);
                prop_assert_eq!(s.setup.as_ref().map(|b| &b.sql), setup.as_ref());
                prop_assert_eq!(s.teardown.as_ref().map(|b| &b.sql), teardown.as_ref());
                let sqls: Vec<&String> = s.steps.iter().map(|st| &st.sql).collect();
                prop_assert_eq!(sqls, body.iter().collect::<Vec<_>>());
            }
            let got: Vec<Vec<(String, usize)>> = spec
                .permutations
                .iter()
                .map(|p| {
                    p.steps
                        .iter()
                        .map(|s| (s.name.clone(), s.blockers.len()))
                        .collect()
                })
                .collect();
            prop_assert_eq!(got, expected_permutations);
            for p in &spec.permutations {
                for s in &p.steps {
                    for b in &s.blockers {
                        if let Blocker::Notices { name, .. } = b {
                            prop_assert!(spec.session_of(name) != spec.session_of(&s.name));
                        }
                    }
                }
            }
            Ok(())
        })
        .expect("no failure");
    let n = count.load(Ordering::Relaxed);
    eprintln!("round trips: {n} specs");
    assert!(n >= 1000);
}
