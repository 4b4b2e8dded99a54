//! The isolation test specification format (`.spec` files), parsed into a typed tree.
//!
//! The accepted language is the one of PostgreSQL's `isolationtester` (its flex scanner
//! and bison grammar), learned from upstream and rewritten here:
//!
//! ```text
//! spec        := setup* teardown? session+ permutation*
//! setup       := "setup" SQL            teardown := "teardown" SQL
//! session     := "session" NAME setup? step+ teardown?
//! step        := "step" NAME SQL
//! permutation := "permutation" pstep+
//! pstep       := NAME ( "(" blocker ( "," blocker )* ")" )?
//! blocker     := "*" | NAME | NAME "notices" INTEGER
//! ```
//!
//! - `SQL` is a block `{ ... }`: everything up to the first `}` (there is no way to put a
//!   `}` in a block, not even in a string literal), with the spaces and tabs right after
//!   `{` and right before `}` removed; newlines are kept.
//! - `NAME` is a plain identifier (`[A-Za-z_\x80-\u{10FFFF}][A-Za-z0-9_$\x80-...]*`) or a
//!   quoted one (`"..."`, `""` for a quote, no newline). There is no case folding. The
//!   keywords (`notices permutation session setup step teardown`, lower case only) must
//!   be quoted to be used as names.
//! - `#` starts a comment up to the end of the line (not inside SQL blocks).
//!
//! After parsing, [`Spec::parse`] checks what isolationtester checks before running:
//! step names are unique in the whole file, every permutation names defined steps, and
//! every blocker names a step of the same permutation in another session. Steps that no
//! permutation uses are not an error: isolationtester prints a warning for each, which
//! [`Spec::unused_steps`] lists (that text is part of the expected output).
//!
//! # Example
//! ```
//! use stormchor_isolation::spec::{Blocker, Spec};
//!
//! let spec = Spec::parse(
//!     "setup { CREATE TABLE t (x int); }\n\
//!      session s1\n\
//!      step lock { LOCK t; }\n\
//!      session s2\n\
//!      step read { SELECT * FROM t; }\n\
//!      permutation lock read(lock) \"read\"\n",
//!     "example.spec",
//! )?;
//! assert_eq!(spec.sessions.len(), 2);
//! assert_eq!(spec.setups[0].sql, "CREATE TABLE t (x int);");
//! let p = &spec.permutations[0];
//! assert!(matches!(&p.steps[1].blockers[0], Blocker::Step { name, .. } if name == "lock"));
//! assert_eq!(spec.session_of("read"), Some(1));
//! # Ok::<(), stormchor_isolation::spec::SpecError>(())
//! ```

mod check;
mod parse;
mod scan;

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a spec file: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A SQL block (`{ ... }`) with where it starts (its `{`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlBlock {
    /// The text, trimmed of spaces and tabs next to the braces, as isolationtester sends
    /// and prints it.
    pub sql: String,
    /// Where the block's `{` is.
    pub position: Position,
}

/// A parsed and checked isolation test specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The file name given to the parser (used in error messages).
    pub file: String,
    /// The main `setup` blocks, run in order by the control connection (each one as a
    /// single submission).
    pub setups: Vec<SqlBlock>,
    /// The main `teardown` block.
    pub teardown: Option<SqlBlock>,
    /// The sessions, in file order (at least one).
    pub sessions: Vec<Session>,
    /// The `permutation` lines; empty means "every interleaving" (see
    /// [`crate::permutations`]).
    pub permutations: Vec<Permutation>,
}

/// A `session`: one connection, with its own setup, steps and teardown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session's name (prefixes its notices in the output).
    pub name: String,
    /// Where the `session` keyword is.
    pub position: Position,
    /// The session's `setup` block.
    pub setup: Option<SqlBlock>,
    /// The session's steps, in file order (at least one).
    pub steps: Vec<Step>,
    /// The session's `teardown` block.
    pub teardown: Option<SqlBlock>,
}

/// A `step NAME { SQL }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The step's name, unique in the spec.
    pub name: String,
    /// The SQL sent as one submission when the step runs.
    pub sql: String,
    /// Where the `step` keyword is.
    pub position: Position,
}

/// A `permutation` line: the steps to run, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permutation {
    /// The steps; a step may repeat, and steps may be left out.
    pub steps: Vec<PermutationStep>,
    /// Where the `permutation` keyword is (`None` for generated permutations).
    pub position: Option<Position>,
}

impl Permutation {
    /// The step names, in order.
    pub fn step_names(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.name.as_str())
    }
}

/// One entry of a permutation line: a step name and its markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationStep {
    /// The name of the step to run.
    pub name: String,
    /// The markers in parentheses after the name, in order.
    pub blockers: Vec<Blocker>,
    /// Where the name is (`None` for generated permutations).
    pub position: Option<Position>,
}

/// A marker on a permutation step: a condition that delays the report of the step's
/// completion (never its launch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// `(*)`: report the step as `<waiting ...>` as soon as it is launched.
    Once {
        /// Where the `*` is.
        position: Position,
    },
    /// `(other)`: do not report the step complete while step `other` (any of its uses in
    /// this permutation) is still running.
    Step {
        /// The other step's name (a step of this permutation, in another session).
        name: String,
        /// Where the name is.
        position: Position,
    },
    /// `(other notices N)`: do not report the step complete before `other`'s session has
    /// sent `N` more notices, counted from this step's launch.
    Notices {
        /// The other step's name (a step of this permutation, in another session).
        name: String,
        /// How many notices to wait for.
        count: u32,
        /// Where the name is.
        position: Position,
    },
}

impl Blocker {
    /// Where the marker is.
    pub fn position(&self) -> Position {
        match self {
            Blocker::Once { position }
            | Blocker::Step { position, .. }
            | Blocker::Notices { position, .. } => *position,
        }
    }

    /// The step the marker refers to (`None` for `*`).
    pub fn step_name(&self) -> Option<&str> {
        match self {
            Blocker::Once { .. } => None,
            Blocker::Step { name, .. } | Blocker::Notices { name, .. } => Some(name),
        }
    }
}

/// What is wrong with a spec, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {kind}", position.line, position.column)]
pub struct SpecError {
    /// The file name given to the parser.
    pub file: String,
    /// Where the problem is.
    pub position: Position,
    /// What the problem is.
    pub kind: SpecErrorKind,
}

/// The kinds of [`SpecError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecErrorKind {
    /// The file is not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A character that starts no token.
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    /// A `{` without its `}`.
    #[error("unterminated SQL block (this `{{` has no `}}`)")]
    UnterminatedSqlBlock,
    /// A `"` without its closing quote.
    #[error("unterminated quoted identifier")]
    UnterminatedQuotedIdentifier,
    /// A newline inside a quoted identifier.
    #[error("unexpected newline in quoted identifier")]
    NewlineInQuotedIdentifier,
    /// An integer that does not fit.
    #[error("number {0} is too large")]
    NumberTooLarge(String),
    /// A token the grammar does not allow here.
    #[error("syntax error: expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: String,
        /// What is there.
        found: String,
    },
    /// Two steps with one name.
    #[error("duplicate step name {name:?} (first defined at {first})")]
    DuplicateStep {
        /// The name.
        name: String,
        /// Where the first step of that name is.
        first: Position,
    },
    /// A permutation names a step that no session defines.
    #[error("undefined step {0:?} specified in permutation")]
    UndefinedStep(String),
    /// A marker names a step that is not in its permutation.
    #[error("undefined blocking step {blocker:?} referenced in permutation step {step:?}")]
    UndefinedBlocker {
        /// The name in the marker.
        blocker: String,
        /// The permutation step carrying the marker.
        step: String,
    },
    /// A marker names a step of the marked step's own session.
    #[error("permutation step {0:?} cannot block on its own session")]
    BlockerInOwnSession(String),
}

/// A spec file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

impl Spec {
    /// Parses and checks a spec; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Spec, SpecError> {
        let spec = parse::parse(text, file)?;
        check::check(&spec)?;
        Ok(spec)
    }

    /// Parses and checks a spec given as bytes (which must be UTF-8).
    pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Spec, SpecError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Spec::parse(text, file),
            Err(e) => {
                // The prefix up to the first invalid byte is valid UTF-8 by definition.
                let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
                let mut position = Position { line: 1, column: 1 };
                for c in valid.chars() {
                    position = scan::advance(position, c);
                }
                Err(SpecError {
                    file: file.to_string(),
                    position,
                    kind: SpecErrorKind::InvalidUtf8,
                })
            }
        }
    }

    /// Reads, parses and checks a spec file.
    pub fn from_file(path: &Path) -> Result<Spec, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Spec::parse_bytes(&bytes, &path.display().to_string())?)
    }

    /// The index of the session that defines step `name`.
    pub fn session_of(&self, name: &str) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.steps.iter().any(|step| step.name == name))
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.sessions
            .iter()
            .flat_map(|s| &s.steps)
            .find(|step| step.name == name)
    }

    /// The steps that no permutation line uses, sorted as isolationtester sorts them
    /// (byte order); empty when the spec has no permutation lines. isolationtester
    /// prints `unused step name: NAME` for each before anything else.
    pub fn unused_steps(&self) -> Vec<&str> {
        if self.permutations.is_empty() {
            return Vec::new();
        }
        let mut unused: Vec<&str> = self
            .sessions
            .iter()
            .flat_map(|s| &s.steps)
            .map(|step| step.name.as_str())
            .filter(|name| {
                !self
                    .permutations
                    .iter()
                    .any(|p| p.steps.iter().any(|ps| ps.name == *name))
            })
            .collect();
        unused.sort_unstable();
        unused
    }
}
