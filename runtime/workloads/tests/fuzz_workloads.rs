//! Workload files (TOML and YAML) and workload config sections never panic the
//! loader: random text, and valid files mutated at random (a line deleted,
//! duplicated or swapped, a value replaced by a hostile one, the text cut short, a
//! character inserted) give a workload or an error naming the file, never a panic.
//! Each test runs a fixed number of cases from a fixed seed and prints its counts.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use stormchor_workloads::{SqlWorkload, Workload, WorkloadRegistry, weights};

/// A runner of `cases` cases from a fixed seed (the same inputs on every run).
fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]),
    )
}

const TOML_SEEDS: &[&str] = &[
    include_str!("../../../examples/workloads/orders.toml"),
    include_str!("../src/ecommerce.toml"),
];
const YAML_SEEDS: &[&str] = &[include_str!("../../../examples/workloads/orders.yaml")];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Toml,
    Yaml,
}

/// Parses `text`; a workload must describe itself, an error must name the file.
fn load(text: &str, format: Format) -> Result<bool, TestCaseError> {
    let result = match format {
        Format::Toml => SqlWorkload::parse(text, "fuzz.toml"),
        Format::Yaml => SqlWorkload::parse_yaml(text, "fuzz.yaml"),
    };
    match result {
        Ok(workload) => {
            let info = workload.info();
            prop_assert!(!info.operations.is_empty());
            // Its weights are usable or refused with an error, never a panic.
            let _ = weights(&info, None);
            Ok(true)
        }
        Err(error) => {
            let text = error.to_string();
            prop_assert!(text.contains("fuzz."), "the error names no file: {text}");
            Ok(false)
        }
    }
}

#[test]
fn the_seeds_load() {
    for seed in TOML_SEEDS {
        SqlWorkload::parse(seed, "seed.toml").expect("a valid TOML seed");
    }
    for seed in YAML_SEEDS {
        SqlWorkload::parse_yaml(seed, "seed.yaml").expect("a valid YAML seed");
    }
}

#[test]
fn random_text_never_panics_the_workload_loaders() {
    let tried = AtomicU32::new(0);
    let text = prop_oneof![
        "\\PC{0,300}",
        // The characters of the formats, so that some of it gets past the lexers.
        "[a-z0-9_ =:\\[\\]{}\"'.,#\\n-]{0,300}",
    ];
    runner(2000)
        .run(&text, |text| {
            tried.fetch_add(1, Relaxed);
            load(&text, Format::Toml)?;
            load(&text, Format::Yaml)?;
            Ok(())
        })
        .expect("no panic");
    let tried = tried.into_inner();
    eprintln!("workload loaders, random text: {tried} inputs, each as TOML and as YAML, 0 panics");
    assert!(tried >= 2000);
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replaces the `n`th number or quoted string with a hostile value.
    ReplaceValue(usize, &'static str),
    Truncate(usize),
    Insert(usize, char),
}

fn hostile() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "-1",
        "0",
        "1e309",
        "-1e309",
        "nan",
        "inf",
        "-inf",
        ".nan",
        ".inf",
        "-.inf",
        "18446744073709551616",
        "9223372036854775807",
        "-9223372036854775808",
        "4294967296",
        "\"\"",
        "''",
        "[]",
        "{}",
        "true",
        "~",
        "null",
        "1.5",
        "\"$9\"",
        "\"\\u0000\"",
    ])
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = || any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    prop_oneof![
        1 => at().prop_map(Mutation::DeleteLine),
        1 => at().prop_map(Mutation::DuplicateLine),
        1 => (at(), at()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (at(), hostile()).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        1 => at().prop_map(Mutation::Truncate),
        1 => (at(), prop::sample::select(vec!['"', '\'', '[', ']', '{', '}', '\n', '\t', ':', '=', '-', '#', ' ', '\u{0}']))
            .prop_map(|(i, c)| Mutation::Insert(i, c)),
    ]
}

/// Byte ranges of the numbers and quoted strings of `text`.
fn values(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                i += 1;
            }
            found.push((start, (i + 1).min(bytes.len())));
        } else if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            found.push((start, i));
            continue;
        }
        i += 1;
    }
    found
}

fn apply(text: &mut String, mutation: &Mutation) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len();
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) => {
            let line = lines[i % n].clone();
            lines.insert(i % n, line);
        }
        Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
        Mutation::ReplaceValue(i, value) => {
            let found = values(text);
            if let Some(&(start, end)) = found.get(i % found.len().max(1)) {
                text.replace_range(start..end, value);
            }
            return;
        }
        Mutation::Truncate(i) => {
            let mut at = i % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
            return;
        }
        Mutation::Insert(i, c) => {
            let mut at = i % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert(at, *c);
            return;
        }
    }
    *text = lines.join("\n");
}

fn mutated(format: Format, seeds: &'static [&'static str], cases: u32) -> (u32, u32) {
    let (tried, accepted) = (AtomicU32::new(0), AtomicU32::new(0));
    let input = (0..seeds.len(), prop::collection::vec(mutation(), 1..5));
    runner(cases)
        .run(&input, |(seed, mutations)| {
            tried.fetch_add(1, Relaxed);
            let mut text = seeds[seed].to_owned();
            for m in &mutations {
                apply(&mut text, m);
            }
            if load(&text, format)? {
                accepted.fetch_add(1, Relaxed);
            }
            Ok(())
        })
        .expect("no panic");
    (tried.into_inner(), accepted.into_inner())
}

#[test]
fn mutated_toml_workload_files_never_panic() {
    let (tried, accepted) = mutated(Format::Toml, TOML_SEEDS, 2000);
    eprintln!("mutated TOML workload files: {tried} inputs, {accepted} still valid, 0 panics");
    assert!(tried >= 2000);
    // Some mutations keep a file valid, most do not: both paths are exercised.
    assert!(
        accepted > 0 && accepted < tried,
        "{accepted} of {tried} valid"
    );
}

#[test]
fn mutated_yaml_workload_files_never_panic() {
    let (tried, accepted) = mutated(Format::Yaml, YAML_SEEDS, 1000);
    eprintln!("mutated YAML workload files: {tried} inputs, {accepted} still valid, 0 panics");
    assert!(tried >= 1000);
    assert!(
        accepted > 0 && accepted < tried,
        "{accepted} of {tried} valid"
    );
}

/// A random config section: TOML text of the keys workloads know and some they do
/// not, with hostile values.
fn section() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["scale", "file", "weights", "clients", "x", "tpcb"]);
    prop::collection::vec((key, hostile()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    })
}

#[test]
fn random_config_sections_never_panic_a_workload() {
    let registry = WorkloadRegistry::with_builtins();
    let (tried, parsed) = (AtomicU32::new(0), AtomicU32::new(0));
    runner(2000)
        .run(&section(), |text| {
            tried.fetch_add(1, Relaxed);
            let Ok(table) = text.parse::<toml::Table>() else {
                return Ok(());
            };
            parsed.fetch_add(1, Relaxed);
            for name in registry.names() {
                let mut workload = registry.create(&name).expect("built in");
                let _ = workload.configure(&table);
                // And the same table as a `weights` override of its operations.
                let _ = weights(&workload.info(), Some(&table));
            }
            Ok(())
        })
        .expect("no panic");
    let (tried, parsed) = (tried.into_inner(), parsed.into_inner());
    eprintln!(
        "workload config sections: {tried} inputs, {parsed} valid TOML given to every built-in workload, 0 panics"
    );
    assert!(tried >= 2000 && parsed > 500, "{parsed} parsed");
}
