//! Config files and `STORMCHOR_*` variables never panic the loader: random text and
//! the example config mutated at random give settings or an error naming the file or
//! the variable. Each test runs a fixed number of cases from a fixed seed and prints
//! its counts.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use stormchor::config::{ConfigError, FileConfig, FlagValues, Settings};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]),
    )
}

const EXAMPLE: &str = include_str!("../examples/workloads/stormchor.toml");

/// Writes `text` to a file and loads it; settings resolve from it and describe
/// themselves, or the error names the file. Whether it loaded.
fn load(dir: &std::path::Path, text: &str) -> Result<bool, TestCaseError> {
    let path = dir.join("fuzz.toml");
    std::fs::write(&path, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    match FileConfig::load(&path) {
        Ok(file) => {
            if let Ok(settings) = Settings::resolve(FlagValues::default(), |_| None, Some(file)) {
                let _ = settings.describe();
            }
            Ok(true)
        }
        Err(error @ ConfigError::Parse { .. }) => {
            prop_assert!(error.to_string().contains("fuzz.toml"), "{error}");
            Ok(false)
        }
        Err(other) => Err(TestCaseError::fail(format!("not a parse error: {other}"))),
    }
}

#[test]
fn the_example_config_loads() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(load(dir.path(), EXAMPLE).expect("no failure"));
}

#[test]
fn random_text_never_panics_the_config_loader() {
    let dir = tempfile::tempdir().expect("dir");
    let tried = AtomicU32::new(0);
    let text = prop_oneof!["\\PC{0,200}", "[a-z0-9_ =\\[\\]{}\".,#\\n-]{0,200}"];
    runner(1500)
        .run(&text, |text| {
            tried.fetch_add(1, Relaxed);
            load(dir.path(), &text).map(|_| ())
        })
        .expect("no panic");
    let tried = tried.into_inner();
    eprintln!("config files, random text: {tried} inputs, 0 panics");
    assert!(tried >= 1500);
}

fn hostile() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "-1",
        "0",
        "65536",
        "1e309",
        "nan",
        "inf",
        "-inf",
        "18446744073709551616",
        "4294967296",
        "\"\"",
        "[]",
        "{}",
        "true",
        "1.5",
        "\"30s\"",
        "\"x\"",
    ])
}

#[test]
fn mutated_config_files_never_panic() {
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    let (tried, loaded) = (AtomicU32::new(0), AtomicU32::new(0));
    let input = prop::collection::vec((0..lines.len(), 0..3u8, hostile()), 1..4);
    runner(1500)
        .run(&input, |edits| {
            tried.fetch_add(1, Relaxed);
            let mut lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            for (at, kind, value) in edits {
                let at = at % lines.len();
                match kind {
                    // A value replaced.
                    0 => {
                        if let Some((key, _)) = lines[at].split_once(" = ") {
                            lines[at] = format!("{key} = {value}");
                        }
                    }
                    // A line removed or duplicated.
                    1 => {
                        lines.remove(at);
                    }
                    _ => {
                        let line = lines[at].clone();
                        lines.insert(at, line);
                    }
                }
                if lines.is_empty() {
                    break;
                }
            }
            if load(dir.path(), &lines.join("\n"))? {
                loaded.fetch_add(1, Relaxed);
            }
            Ok(())
        })
        .expect("no panic");
    let (tried, loaded) = (tried.into_inner(), loaded.into_inner());
    eprintln!("mutated config files: {tried} inputs, {loaded} loaded, 0 panics");
    assert!(
        tried >= 1500 && loaded > 0 && loaded < tried,
        "{loaded} of {tried}"
    );
}

#[test]
fn hostile_environment_variables_never_panic() {
    let tried = AtomicU32::new(0);
    let variable = prop::sample::select(vec![
        "STORMCHOR_TARGET",
        "STORMCHOR_WORKERS",
        "STORMCHOR_DURATION",
        "STORMCHOR_SEED",
        "STORMCHOR_SCALE",
        "STORMCHOR_ROUNDS",
        "STORMCHOR_RATE",
        "STORMCHOR_JSON",
        "STORMCHOR_HTML",
    ]);
    let value = prop_oneof![hostile().prop_map(str::to_owned), "\\PC{0,20}"];
    runner(1500)
        .run(&(variable, value), |(variable, value)| {
            tried.fetch_add(1, Relaxed);
            let lookup = |name: &str| (name == variable).then(|| value.clone());
            match Settings::resolve(FlagValues::default(), lookup, None) {
                Ok(settings) => {
                    let _ = settings.describe();
                }
                Err(error) => {
                    prop_assert!(error.to_string().contains(variable), "{error}");
                }
            }
            Ok(())
        })
        .expect("no panic");
    let tried = tried.into_inner();
    eprintln!("STORMCHOR_* variables: {tried} inputs, 0 panics");
    assert!(tried >= 1500);
}
