//! A directory laid out as PostgreSQL's `src/test/isolation`: `isolation_schedule`,
//! `specs/NAME.spec`, `expected/NAME.out` (and variants).
//!
//! The schedule is `pg_regress`'s format: `test: NAME NAME ...` lines (a group of tests
//! upstream may run in parallel), `#` comments and empty lines.
//!
//! # Example
//! ```no_run
//! use stormchor_isolation::corpus::Corpus;
//!
//! let corpus = Corpus::new("../shared/pg-isolation");
//! for name in corpus.schedule()? {
//!     let spec = corpus.spec(&name);
//!     let expected = corpus.expected(&name)?;
//!     println!("{name}: {} expected file(s)", expected.len());
//! #   let _ = spec;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use crate::compare::{Expected, load_expected};
use crate::spec::{LoadError, Spec};

/// A corpus directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corpus {
    root: PathBuf,
}

/// A schedule that could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line that is not `test: NAME...`, a comment or empty.
    #[error("{}:{line}: expected `test: NAME ...`, found {text:?}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// The line.
        text: String,
    },
}

impl Corpus {
    /// The corpus at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Corpus { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the directory holds a schedule and a `specs` folder.
    pub fn exists(&self) -> bool {
        self.root.join("isolation_schedule").is_file() && self.root.join("specs").is_dir()
    }

    /// The test names of `isolation_schedule`, in order.
    pub fn schedule(&self) -> Result<Vec<String>, ScheduleError> {
        let path = self.root.join("isolation_schedule");
        let text = std::fs::read_to_string(&path).map_err(|source| ScheduleError::Io {
            path: path.clone(),
            source,
        })?;
        parse_schedule(&text, &path)
    }

    /// The path of test `name`'s spec.
    pub fn spec_path(&self, name: &str) -> PathBuf {
        self.root.join("specs").join(format!("{name}.spec"))
    }

    /// Test `name`'s spec, parsed and checked.
    pub fn spec(&self, name: &str) -> Result<Spec, LoadError> {
        Spec::from_file(&self.spec_path(name))
    }

    /// Test `name`'s expected files.
    pub fn expected(&self, name: &str) -> std::io::Result<Vec<Expected>> {
        load_expected(&self.root.join("expected"), name)
    }
}

/// The test names of a schedule's text (`path` names it in errors).
pub fn parse_schedule(text: &str, path: &Path) -> Result<Vec<String>, ScheduleError> {
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match content.strip_prefix("test:") {
            Some(rest) if !rest.trim().is_empty() => {
                names.extend(rest.split_whitespace().map(String::from));
            }
            _ => {
                return Err(ScheduleError::Syntax {
                    path: path.to_path_buf(),
                    line: i + 1,
                    text: line.to_string(),
                });
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_list_tests_in_order() {
        let names = parse_schedule("# c\ntest: a b\n\ntest: c # trailing\n", Path::new("s"));
        assert_eq!(names.expect("valid"), ["a", "b", "c"]);
    }

    #[test]
    fn a_bad_schedule_line_is_named() {
        let err = parse_schedule("test: a\nignore: b\n", Path::new("sched"))
            .expect_err("line 2 is not a test line");
        assert_eq!(
            err.to_string(),
            "sched:2: expected `test: NAME ...`, found \"ignore: b\""
        );
    }
}
