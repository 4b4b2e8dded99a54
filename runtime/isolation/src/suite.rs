//! One spec of a corpus run on a server, and its verdict: matched, differed (with the
//! diff), not parsed, or needs a newer server.
//!
//! A spec "needs a newer server" only when its output differs *and* the first error
//! the server sent that no expected file shows is a missing feature's: a syntax error
//! (42601), an unknown function (42883), an unknown type, object or setting (42704),
//! or, in a setup or teardown block only, an unknown column (42703, a newer
//! catalog's); a step's error counts only when an expected file prints that step's SQL
//! (see [`missing_feature`]). The error is kept in the verdict; any other difference
//! is a difference.
//!
//! # Example
//! ```no_run
//! use stormchor_isolation::corpus::Corpus;
//! use stormchor_isolation::driver::RunOptions;
//! use stormchor_isolation::suite::{run_test, Verdict};
//!
//! # async fn demo() {
//! let corpus = Corpus::new("../shared/pg-isolation");
//! let result = run_test(&corpus, "deadlock-simple", "host=127.0.0.1 user=postgres",
//!     &RunOptions::default()).await;
//! assert!(matches!(result.verdict, Verdict::Matched { .. }));
//! # }
//! ```

use std::time::{Duration, Instant};

use crate::compare::{self, Expected};
use crate::corpus::Corpus;
use crate::driver::{RunOptions, ServerError, run_spec_on};
use crate::output::{Dialect, NoticeStyle, ResultStyle, render};

/// SQLSTATEs of a feature the server does not have (the last, an unknown column,
/// counts only in a setup or teardown block).
pub const MISSING_FEATURE_CODES: [&str; 4] = ["42601", "42883", "42704", "42703"];

/// What became of one spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The output equals this expected file.
    Matched {
        /// The file.
        file: String,
    },
    /// The output differs from every expected file (or the spec could not be run).
    Differed {
        /// The closest expected file (empty when none could be compared).
        file: String,
        /// Why, in one line.
        reason: String,
        /// A unified diff against the closest file (empty when none).
        diff: String,
    },
    /// The spec does not parse.
    NotParsed {
        /// The parser's error (file, line, column).
        error: String,
    },
    /// The server rejected the spec's SQL for a missing feature.
    NeedsNewerServer {
        /// The server's error, as printed.
        error: String,
        /// The diff it caused.
        diff: String,
    },
}

impl Verdict {
    /// The verdict's name in reports: `matched`, `differed`, `not_parsed`,
    /// `needs_newer_server`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Matched { .. } => "matched",
            Verdict::Differed { .. } => "differed",
            Verdict::NotParsed { .. } => "not_parsed",
            Verdict::NeedsNewerServer { .. } => "needs_newer_server",
        }
    }
}

/// One spec's run.
#[derive(Clone, Debug)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// How long it took.
    pub elapsed: Duration,
    /// What we printed (empty when the spec did not parse or could not run).
    pub output: String,
}

/// Runs test `name` of `corpus` on the server of `conninfo` and judges its output.
pub async fn run_test(
    corpus: &Corpus,
    name: &str,
    conninfo: &str,
    options: &RunOptions,
) -> TestResult {
    let started = Instant::now();
    let (verdict, output) = judge(corpus, name, conninfo, options).await;
    TestResult {
        name: name.to_string(),
        verdict,
        elapsed: started.elapsed(),
        output,
    }
}

async fn judge(
    corpus: &Corpus,
    name: &str,
    conninfo: &str,
    options: &RunOptions,
) -> (Verdict, String) {
    let spec = match corpus.spec(name) {
        Ok(spec) => spec,
        Err(e) => {
            return (
                Verdict::NotParsed {
                    error: e.to_string(),
                },
                String::new(),
            );
        }
    };
    let expected = match corpus.expected(name) {
        Ok(expected) if !expected.is_empty() => expected,
        Ok(_) => {
            return (
                differed_without_diff(format!("no expected file for {name}")),
                String::new(),
            );
        }
        Err(e) => {
            return (
                differed_without_diff(format!("cannot read the expected files of {name}: {e}")),
                String::new(),
            );
        }
    };
    let mut options = options.clone();
    options.abandon_invalid_permutations = expected
        .iter()
        .any(|e| e.dialect().abandons_invalid_permutations);
    // Testers before PostgreSQL 14 (padded results or bare notices) ran every
    // connection with `client_min_messages = warning`.
    options.quiet_notices = expected.iter().all(|e| {
        let dialect = e.dialect();
        dialect.results == ResultStyle::Padded || dialect.notices == NoticeStyle::Bare
    });
    let run = match run_spec_on(conninfo, name, &spec, &options).await {
        Ok(run) => run,
        Err(e) => {
            return (
                differed_without_diff(format!("could not run: {e}")),
                String::new(),
            );
        }
    };
    let printed = expected
        .first()
        .map(|e| render(&run.output, e.dialect()))
        .unwrap_or_else(|| render(&run.output, Dialect::CURRENT));
    match compare::compare_output(&run.output, &expected) {
        Some(compare::Verdict::Matched { file }) => (Verdict::Matched { file }, printed),
        Some(compare::Verdict::Differed(mismatch)) => {
            let verdict = match missing_feature(&run.errors, &expected) {
                Some(error) => Verdict::NeedsNewerServer {
                    error,
                    diff: mismatch.diff,
                },
                None => Verdict::Differed {
                    reason: first_difference(&mismatch.diff),
                    file: mismatch.file,
                    diff: mismatch.diff,
                },
            };
            (verdict, printed)
        }
        None => (differed_without_diff("no expected file".into()), printed),
    }
}

fn differed_without_diff(reason: String) -> Verdict {
    Verdict::Differed {
        file: String::new(),
        reason,
        diff: String::new(),
    }
}

/// The first error no expected file shows, if it is a missing feature's: a setup or
/// teardown block's error of [`MISSING_FEATURE_CODES`], or a step's syntax error,
/// unknown function or unknown object (not an unknown column) when an expected file
/// prints that very step SQL (the spec is upstream's, the server lacks the feature).
/// A step SQL that no expected file prints (a typo, an edited spec) or a column a
/// step misses is a difference.
pub fn missing_feature(errors: &[ServerError], expected: &[Expected]) -> Option<String> {
    let unexpected = errors
        .iter()
        .find(|e| !expected.iter().any(|x| x.text.contains(&e.text)))?;
    let missing = if unexpected.in_block {
        MISSING_FEATURE_CODES.contains(&unexpected.code.as_str())
    } else {
        MISSING_FEATURE_CODES[..3].contains(&unexpected.code.as_str())
            && expected
                .iter()
                .any(|x| x.text.contains(unexpected.sql.trim()))
    };
    missing.then(|| format!("{} (SQLSTATE {})", unexpected.text, unexpected.code))
}

/// The diff's first changed line, as a one-line reason.
pub fn first_difference(diff: &str) -> String {
    diff.lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
        .find(|l| l.starts_with('-') || l.starts_with('+'))
        .map(|l| {
            let line: String = l.chars().take(160).collect();
            format!("first change: {line}")
        })
        .unwrap_or_else(|| "outputs differ".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, text: &str) -> ServerError {
        ServerError {
            at: Instant::now(),
            code: code.into(),
            text: text.into(),
            sql: "SELECT 1".into(),
            in_block: true,
        }
    }

    fn step_error(code: &str, text: &str, sql: &str) -> ServerError {
        ServerError {
            in_block: false,
            sql: sql.into(),
            ..error(code, text)
        }
    }

    #[test]
    fn a_steps_error_is_a_missing_feature_only_for_upstreams_sql() {
        let expected = [Expected::new(
            "t.out",
            "step s2c: COMMIT;\nstep m: MERGE INTO t USING s ON true WHEN NOT MATCHED BY SOURCE THEN DELETE;\nstep r: SELECT b FROM bc;\nb\n-\n1\n",
        )];
        // A typo: the file prints the step as upstream wrote it, not this SQL.
        let typo = step_error(
            "42601",
            "ERROR:  syntax error at or near \"COMMT\"",
            "COMMT;",
        );
        assert_eq!(missing_feature(&[typo], &expected), None);
        // A column a step misses is a difference even for upstream's SQL.
        let column = step_error(
            "42703",
            "ERROR:  column \"b\" does not exist",
            "SELECT b FROM bc;",
        );
        assert_eq!(
            missing_feature(std::slice::from_ref(&column), &expected),
            None
        );
        // Upstream's SQL the server cannot parse: a newer server's syntax.
        let newer = step_error(
            "42601",
            "ERROR:  syntax error at or near \"BY\"",
            "\n  MERGE INTO t USING s ON true WHEN NOT MATCHED BY SOURCE THEN DELETE;\n",
        );
        assert!(missing_feature(&[newer], &expected).is_some());
        // The same unknown column in a setup block is a newer catalog's.
        let in_setup = ServerError {
            in_block: true,
            ..column
        };
        assert!(missing_feature(&[in_setup], &expected).is_some());
    }

    #[test]
    fn a_missing_feature_is_the_first_error_no_expected_file_shows() {
        let expected = [Expected::new(
            "t.out",
            "step a: SELECT nope();\nERROR:  function nope() does not exist\n",
        )];
        let shown = error("42883", "ERROR:  function nope() does not exist");
        let syntax = error("42601", "ERROR:  syntax error at or near \"BY\"");
        assert_eq!(
            missing_feature(&[shown.clone(), syntax.clone()], &expected).as_deref(),
            Some("ERROR:  syntax error at or near \"BY\" (SQLSTATE 42601)")
        );
        // An error the expected file shows is the spec's own: not a missing feature.
        assert_eq!(missing_feature(&[shown], &expected), None);
    }

    #[test]
    fn other_unexpected_errors_are_differences() {
        let expected = [Expected::new("t.out", "step a: COMMIT;\n")];
        // A deadlock or a unique violation the file does not show is a difference,
        // even when a missing feature's error comes later.
        let deadlock = error("40P01", "ERROR:  deadlock detected");
        let syntax = error("42601", "ERROR:  syntax error at or near \"BY\"");
        assert_eq!(missing_feature(&[deadlock, syntax], &expected), None);
        // An unknown table is not taken as a missing feature (it may follow a failed
        // setup of the runner's own making).
        let table = error("42P01", "ERROR:  relation \"t\" does not exist");
        assert_eq!(missing_feature(&[table], &expected), None);
    }

    #[test]
    fn the_reason_is_the_first_changed_line() {
        let diff = "--- a.out\n+++ actual\n@@ -1,2 +1,2 @@\n step a\n-ERROR:  x\n+ERROR:  y\n";
        assert_eq!(first_difference(diff), "first change: -ERROR:  x");
    }
}
