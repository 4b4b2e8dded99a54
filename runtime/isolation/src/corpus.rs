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
    /// A test the schedule names that has no spec file.
    #[error("{}:{line}: test {name} has no spec ({} {problem})", path.display(), spec.display())]
    MissingSpec {
        /// The schedule.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// The test.
        name: String,
        /// Where its spec should be.
        spec: PathBuf,
        /// `does not exist` or `is not a file`.
        problem: &'static str,
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

    /// The test names of `isolation_schedule`, in order; a name without a spec file
    /// is an error naming the schedule's line.
    pub fn schedule(&self) -> Result<Vec<String>, ScheduleError> {
        let path = self.root.join("isolation_schedule");
        let text = std::fs::read_to_string(&path).map_err(|source| ScheduleError::Io {
            path: path.clone(),
            source,
        })?;
        let mut names = Vec::new();
        for (line, name) in schedule_entries(&text, &path)? {
            let spec = self.spec_path(&name);
            if !spec.is_file() {
                let problem = if spec.exists() {
                    "is not a file"
                } else {
                    "does not exist"
                };
                return Err(ScheduleError::MissingSpec {
                    path,
                    line,
                    name,
                    spec,
                    problem,
                });
            }
            names.push(name);
        }
        Ok(names)
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
    Ok(schedule_entries(text, path)?
        .into_iter()
        .map(|(_, name)| name)
        .collect())
}

/// The test names of a schedule's text with the line (from 1) of each.
fn schedule_entries(text: &str, path: &Path) -> Result<Vec<(usize, String)>, ScheduleError> {
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match content.strip_prefix("test:") {
            Some(rest) if !rest.trim().is_empty() => {
                names.extend(
                    rest.split_whitespace()
                        .map(|name| (i + 1, name.to_string())),
                );
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
    fn a_scheduled_test_without_a_spec_is_named_with_its_line() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("specs/dir.spec")).expect("specs");
        std::fs::write(dir.path().join("specs/ok.spec"), "").expect("spec");
        let schedule = dir.path().join("isolation_schedule");
        std::fs::write(&schedule, "test: ok\n# c\ntest: ok missing-one\n").expect("schedule");
        let err = Corpus::new(dir.path())
            .schedule()
            .expect_err("missing-one has no spec");
        let spec = dir.path().join("specs/missing-one.spec");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3: test missing-one has no spec ({} does not exist)",
                schedule.display(),
                spec.display()
            )
        );
        std::fs::write(&schedule, "test: dir\n").expect("schedule");
        let err = Corpus::new(dir.path())
            .schedule()
            .expect_err("dir.spec is a directory");
        assert!(
            err.to_string().contains(":1: test dir has no spec ("),
            "{err}"
        );
        assert!(
            err.to_string().ends_with("dir.spec is not a file)"),
            "{err}"
        );
        std::fs::write(&schedule, "test: ok ok\n").expect("schedule");
        assert_eq!(
            Corpus::new(dir.path()).schedule().expect("both there"),
            ["ok", "ok"]
        );
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
