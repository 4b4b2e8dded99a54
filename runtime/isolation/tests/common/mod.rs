//! Finding PostgreSQL's isolation corpus for the tests. It is never copied into the
//! repository: tests read it from `../shared/pg-isolation` beside the project's root
//! (or `STORMCHOR_PG_ISOLATION`), and skip with a message when it is absent.

#![allow(dead_code)]

pub mod read;

use std::path::PathBuf;

use stormchor_isolation::corpus::Corpus;

/// The corpus directory the tests use.
pub fn corpus_path() -> PathBuf {
    match std::env::var_os("STORMCHOR_PG_ISOLATION") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pg-isolation"),
    }
}

/// The corpus, or `None` after printing why the calling test skips.
pub fn corpus(test: &str) -> Option<Corpus> {
    let corpus = Corpus::new(corpus_path());
    if corpus.exists() {
        Some(corpus)
    } else {
        eprintln!(
            "SKIPPED {test}: PostgreSQL's isolation corpus is not at {} \
             (put it there or set STORMCHOR_PG_ISOLATION)",
            corpus.root().display()
        );
        None
    }
}

/// Every spec file name (without `.spec`) in the corpus's `specs` folder, sorted.
pub fn spec_names(corpus: &Corpus) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus.root().join("specs"))
        .expect("specs folder readable")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".spec").map(String::from)
        })
        .collect();
    names.sort();
    names
}

/// The `starting permutation:` lines' step lists of an expected text.
pub fn expected_permutations(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| l.strip_prefix("starting permutation:"))
        .map(|rest| rest.split_whitespace().map(String::from).collect())
        .collect()
}

/// The text an expected file prints for permutation `index` (from the empty line
/// before its `starting permutation:` line to the next one's), or its heading (what
/// comes before the first permutation) for `None`.
pub fn section(text: &str, index: Option<usize>) -> String {
    let parts: Vec<&str> = text.split("\nstarting permutation:").collect();
    match index {
        None => parts[0].to_string(),
        Some(i) => format!("\nstarting permutation:{}", parts[i + 1]),
    }
}
