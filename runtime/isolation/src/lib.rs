//! PostgreSQL's isolation test suite: the spec format, the permutations a spec runs,
//! each permutation as a stormchor choreography run on a server, what
//! `isolationtester` prints, and the comparison with expected files.
//!
//! PostgreSQL tests its concurrency behaviour with `isolationtester`: a `.spec` file
//! declares sessions, their steps, and permutations (orders in which the steps of
//! different sessions interleave); an expected file holds the exact output. The
//! format, the scheduler and the comparison do no I/O beyond reading files; the
//! choreography's roles execute what the scheduler asks for and tell it what
//! happened; the scheduler records typed events, which this crate prints and compares.
//!
//! - [`spec`]: the parser ([`spec::Spec::parse`]), with isolationtester's checks;
//!   errors name file, line and column.
//! - [`permutations`]: the permutation lines, or every interleaving in upstream's order.
//! - [`output`]: the event log a runner records ([`output::PermutationEvent`]) and its
//!   rendering in both output formats ([`output::Dialect`]), detected from an expected
//!   file.
//! - [`schedule`]: isolationtester's run of one permutation as a state machine without
//!   I/O: it asks a driver to launch, settle or finish steps, is told what happened, and
//!   records the event log (markers, waiting, completion order, report points).
//! - [`compare`]: matching an output against `NAME.out` and its variants, with a unified
//!   diff against the closest.
//! - [`choreo`]: a spec's permutation as a stormchor choreography (a role per session,
//!   a controller role; a step is an effect that starts now and finishes later), and
//!   its run through stormchor's interpreter.
//! - [`driver`]: the connections (over tokio-postgres in [`driver::pg`]) and the
//!   controller's part of isolationtester's driver, which answers the scheduler.
//! - [`suite`]: one test of a corpus run on a server and its verdict (matched,
//!   differed, not parsed, needs a newer server).
//! - [`corpus`]: a directory laid out as upstream's `src/test/isolation`.
//!
//! The format notes (what upstream accepts and prints) are in `docs/isolation-suite.md`.
//!
//! # Example
//! ```
//! use stormchor_isolation::{permutations, spec::Spec};
//!
//! let spec = Spec::parse(
//!     "session s1 setup { BEGIN; } step r1 { SELECT 1; } teardown { COMMIT; }\n\
//!      session s2 step w2 { UPDATE t SET x = 1; }",
//!     "mini.spec",
//! )?;
//! assert_eq!(permutations::count(&spec), Some(2));
//! let bad = Spec::parse("session s1 step a {} permutation a b", "bad.spec").unwrap_err();
//! assert_eq!(bad.to_string(), "bad.spec:1:36: undefined step \"b\" specified in permutation");
//! # Ok::<(), stormchor_isolation::spec::SpecError>(())
//! ```
#![deny(missing_docs)]

pub mod choreo;
pub mod compare;
pub mod corpus;
pub mod driver;
pub mod output;
pub mod permutations;
pub mod schedule;
pub mod spec;
pub mod suite;
