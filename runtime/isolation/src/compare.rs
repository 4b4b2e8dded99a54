//! Comparing an output with a test's expected files.
//!
//! As with `pg_regress`, a test matches when its output equals any of its expected
//! files, `NAME.out` or a variant `NAME_0.out` ... `NAME_9.out`; when none matches,
//! the difference shown is a unified diff (3 lines of context) against the closest
//! one: the one with the fewest changed lines.
//!
//! # Example
//! ```
//! use stormchor_isolation::compare::{compare, Expected, Verdict};
//!
//! let variants = [
//!     Expected::new("t.out", "step a: BEGIN;\nstep b: COMMIT;\n"),
//!     Expected::new("t_1.out", "step b: COMMIT;\nstep a: BEGIN;\n"),
//! ];
//! assert!(matches!(
//!     compare("step b: COMMIT;\nstep a: BEGIN;\n", &variants),
//!     Some(Verdict::Matched { ref file }) if file == "t_1.out"
//! ));
//! let Some(Verdict::Differed(m)) = compare("step a: BEGIN;\nstep c: COMMIT;\n", &variants) else {
//!     panic!("differs");
//! };
//! assert_eq!(m.file, "t.out");
//! assert!(m.diff.contains("-step b: COMMIT;\n+step c: COMMIT;\n"));
//! ```

use std::path::Path;

use similar::{ChangeTag, TextDiff};

use crate::output::{Dialect, TestOutput, render};

/// One expected file of a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Its file name (`NAME.out`, `NAME_1.out`, ...).
    pub file: String,
    /// Its text.
    pub text: String,
}

impl Expected {
    /// An expected file from its name and text.
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Self {
        Expected {
            file: file.into(),
            text: text.into(),
        }
    }

    /// The dialect the file is written in (its most likely one).
    pub fn dialect(&self) -> Dialect {
        Dialect::detect(&self.text)
    }

    /// The dialects the file may be written in, most likely first.
    pub fn dialects(&self) -> Vec<Dialect> {
        Dialect::candidates(&self.text)
    }
}

/// The expected files of test `name` in directory `dir` (`NAME.out`, then `NAME_0.out`
/// to `NAME_9.out`, those that exist). An empty list means the test has none.
pub fn load_expected(dir: &Path, name: &str) -> std::io::Result<Vec<Expected>> {
    let mut found = Vec::new();
    let candidates =
        std::iter::once(format!("{name}.out")).chain((0..=9).map(|i| format!("{name}_{i}.out")));
    for file in candidates {
        let path = dir.join(&file);
        match std::fs::read(&path) {
            Ok(bytes) => found.push(Expected {
                file,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// How an output compares with a test's expected files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The output equals this expected file.
    Matched {
        /// The file it equals.
        file: String,
    },
    /// The output equals none; the difference with the closest.
    Differed(Mismatch),
}

/// The difference between an output and its closest expected file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The closest expected file.
    pub file: String,
    /// How many lines differ (removed plus added).
    pub changed_lines: usize,
    /// A unified diff from the expected file to the output.
    pub diff: String,
}

/// Compares `actual` with every expected file; `None` if there are none.
pub fn compare(actual: &str, expected: &[Expected]) -> Option<Verdict> {
    compare_each(expected, |_| vec![actual.to_string()])
}

/// Compares a test's output with each expected file, printed in each dialect the file
/// may be written in ([`Expected::dialects`]); `None` if there are none.
pub fn compare_output(output: &TestOutput, expected: &[Expected]) -> Option<Verdict> {
    compare_each(expected, |e| {
        e.dialects()
            .into_iter()
            .map(|d| render(output, d))
            .collect()
    })
}

fn compare_each(
    expected: &[Expected],
    actual: impl Fn(&Expected) -> Vec<String>,
) -> Option<Verdict> {
    let mut closest: Option<Mismatch> = None;
    for e in expected {
        for text in actual(e) {
            if text == e.text {
                return Some(Verdict::Matched {
                    file: e.file.clone(),
                });
            }
            let changed = changed_lines(&e.text, &text);
            if closest.as_ref().is_none_or(|c| changed < c.changed_lines) {
                closest = Some(Mismatch {
                    file: e.file.clone(),
                    changed_lines: changed,
                    diff: unified_diff(&e.text, &text, &e.file, "actual"),
                });
            }
        }
    }
    closest.map(Verdict::Differed)
}

/// How many lines a line diff from `old` to `new` removes and adds.
pub fn changed_lines(old: &str, new: &str) -> usize {
    TextDiff::from_lines(old, new)
        .iter_all_changes()
        .filter(|c| c.tag() != ChangeTag::Equal)
        .count()
}

/// A unified diff (3 lines of context) from `old` to `new`, with file headers.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_expected_files_no_verdict() {
        assert_eq!(compare("x\n", &[]), None);
    }

    #[test]
    fn the_closest_variant_is_the_one_diffed() {
        let expected = [
            Expected::new("t.out", "a\nb\nc\nd\n"),
            Expected::new("t_1.out", "a\nB\nc\nd\n"),
        ];
        let Some(Verdict::Differed(m)) = compare("a\nB\nc\nD\n", &expected) else {
            panic!("must differ");
        };
        assert_eq!(m.file, "t_1.out");
        assert_eq!(m.changed_lines, 2);
        assert!(
            m.diff.starts_with("--- t_1.out\n+++ actual\n@@"),
            "{}",
            m.diff
        );
        assert!(m.diff.contains("-d\n+D\n"), "{}", m.diff);
    }

    #[test]
    fn a_missing_final_newline_is_a_difference() {
        let expected = [Expected::new("t.out", "a\n")];
        assert!(matches!(
            compare("a", &expected),
            Some(Verdict::Differed(_))
        ));
    }
}
