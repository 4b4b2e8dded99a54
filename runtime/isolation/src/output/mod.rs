//! What isolationtester prints, from a typed log of what happened.
//!
//! A runner records, for each permutation, a [`PermutationLog`] of
//! [`PermutationEvent`]s in the order isolationtester would print them (see each
//! variant), and [`render`] turns a whole [`TestOutput`] into the text of an expected
//! file, in a [`Dialect`]. The text is what `pg_isolation_regress` stores: the tester's
//! standard output with its standard error merged in.
//!
//! The layout:
//!
//! ```text
//! unused step name: NAME                (one per unused step, sorted; see Spec::unused_steps;
//!                                        not before PostgreSQL 14)
//! Parsed test spec with N sessions      ("sessions" even for one)
//!                                       (an empty line before each permutation)
//! starting permutation: a b c
//! step a: SQL                           (SQL exactly as in the block: a multi-line block
//!                                        prints on several lines, its final newline too)
//! step b: SQL <waiting ...>
//! s1: NOTICE:  text                     (when it arrives, before the step's own line)
//! step c: SQL
//! step b: <... completed>
//! ERROR:  message                       (severity, two spaces, primary message only)
//! ```
//!
//! # Example
//! ```
//! use stormchor_isolation::output::{
//!     render, Dialect, PermutationEvent, PermutationLog, ResultSet, StepOutcome, TestOutput,
//! };
//!
//! let mut output = TestOutput::new(2, Vec::<String>::new());
//! output.permutations.push(PermutationLog {
//!     steps: vec!["r".into(), "w".into()],
//!     events: vec![
//!         PermutationEvent::Ran {
//!             step: "r".into(),
//!             sql: "SELECT 1 AS one;".into(),
//!             outcome: StepOutcome::rows(ResultSet::new(["one"], [[Some("1".to_string())]])),
//!         },
//!         PermutationEvent::Ran {
//!             step: "w".into(),
//!             sql: "COMMIT;".into(),
//!             outcome: StepOutcome::default(),
//!         },
//!     ],
//! });
//! assert_eq!(
//!     render(&output, Dialect::CURRENT),
//!     "Parsed test spec with 2 sessions\n\nstarting permutation: r w\n\
//!      step r: SELECT 1 AS one;\none\n---\n  1\n(1 row)\n\nstep w: COMMIT;\n"
//! );
//! ```

mod dialect;
mod table;

pub use dialect::{Dialect, ErrorStyle, NoticeStyle, ResultStyle};
pub use table::ResultSet;

/// An error a step's statement raised, as isolationtester shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    /// The severity (`ERROR`, `FATAL`); `None` for an error libpq made itself (a lost
    /// connection), which prints `message` as it is.
    pub severity: Option<String>,
    /// The primary message (details are not shown: they may hold transaction ids).
    pub message: String,
}

impl StepError {
    /// An `ERROR:  message`.
    pub fn error(message: impl Into<String>) -> Self {
        StepError {
            severity: Some("ERROR".into()),
            message: message.into(),
        }
    }

    fn text(&self) -> String {
        match &self.severity {
            Some(severity) => format!("{severity}:  {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// One result of a step's submission (a step may hold several statements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// A statement returned rows (a `TUPLES_OK` result, even with no rows).
    Rows(ResultSet),
    /// The submission failed (a later statement does not run).
    Error(StepError),
}

/// A `NOTIFY` a session's connection received, printed after the step's results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The session whose step was completing when it was received.
    pub session: String,
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
    /// The sending session's name, or `PID n` for another backend.
    pub sender: String,
}

/// What a completed step returned, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Rows and errors, in the order the server sent them (commands without rows are
    /// not printed and so not recorded).
    pub results: Vec<StepResult>,
    /// The notifications received, in order.
    pub notifications: Vec<Notification>,
}

impl StepOutcome {
    /// An outcome of one result set.
    pub fn rows(rows: ResultSet) -> Self {
        StepOutcome {
            results: vec![StepResult::Rows(rows)],
            notifications: Vec::new(),
        }
    }

    /// An outcome of one error.
    pub fn error(error: StepError) -> Self {
        StepOutcome {
            results: vec![StepResult::Error(error)],
            notifications: Vec::new(),
        }
    }
}

/// One thing isolationtester prints during a permutation, in the order it prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermutationEvent {
    /// Rows returned by a main or session `setup`/`teardown` block.
    BlockRows(ResultSet),
    /// A step was launched and completed without being seen waiting (and with no
    /// unmet marker): `step NAME: SQL`, then its results.
    Ran {
        /// The step.
        step: String,
        /// Its SQL, as in the spec.
        sql: String,
        /// What it returned.
        outcome: StepOutcome,
    },
    /// A step was launched and is waiting (for a lock, a marker, or `(*)`):
    /// `step NAME: SQL <waiting ...>`.
    Waiting {
        /// The step.
        step: String,
        /// Its SQL, as in the spec.
        sql: String,
    },
    /// A step reported waiting has completed: `step NAME: <... completed>`, then its
    /// results.
    Completed {
        /// The step.
        step: String,
        /// What it returned.
        outcome: StepOutcome,
    },
    /// A notice or warning a session received, printed when it arrives.
    Notice {
        /// The session's name.
        session: String,
        /// The text as libpq formats it (see [`notice_text`]), ending with a newline.
        text: String,
    },
    /// isolationtester cancelled a step that ran too long:
    /// `isolationtester: canceling step NAME after N seconds`.
    Cancelled {
        /// The step.
        step: String,
        /// After how many seconds.
        seconds: u64,
    },
    /// The point where isolationtester before 14 printed the errors of `lead` (the step
    /// just launched, or the one just waited for) and of the waiting steps that
    /// completed right after it (`unblocked`, in the order they completed). Current
    /// output ignores it; record it anyway so that both dialects can be printed.
    ReportErrors {
        /// The step launched or waited for.
        lead: String,
        /// The waiting steps that completed in the same round.
        unblocked: Vec<String>,
    },
    /// A line of isolationtester's own (on standard error, which the expected files
    /// include), such as `teardown failed: ...`, without its newline.
    Diagnostic(String),
}

/// The events of one permutation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermutationLog {
    /// The permutation's step names (for the `starting permutation:` line).
    pub steps: Vec<String>,
    /// What happened, in order.
    pub events: Vec<PermutationEvent>,
}

/// Everything isolationtester prints for one spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestOutput {
    /// The warnings before the first line (`unused step name: NAME`).
    pub unused_steps: Vec<String>,
    /// How many sessions the spec has.
    pub sessions: usize,
    /// The permutations run, in order.
    pub permutations: Vec<PermutationLog>,
}

impl TestOutput {
    /// The output's heading for a spec of `sessions` sessions and these unused steps.
    pub fn new<S: Into<String>>(
        sessions: usize,
        unused_steps: impl IntoIterator<Item = S>,
    ) -> Self {
        TestOutput {
            unused_steps: unused_steps.into_iter().map(Into::into).collect(),
            sessions,
            permutations: Vec::new(),
        }
    }

    /// The heading for `spec`.
    pub fn for_spec(spec: &crate::spec::Spec) -> Self {
        TestOutput::new(spec.sessions.len(), spec.unused_steps())
    }
}

/// The text libpq's notice processor receives for a notice, at libpq's default
/// verbosity: `SEVERITY:  message`, then `DETAIL:  ...` and `HINT:  ...` lines when
/// present (no context lines: by default libpq shows those for errors only).
pub fn notice_text(
    severity: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> String {
    let mut text = format!("{severity}:  {message}\n");
    if let Some(detail) = detail {
        text.push_str(&format!("DETAIL:  {detail}\n"));
    }
    if let Some(hint) = hint {
        text.push_str(&format!("HINT:  {hint}\n"));
    }
    text
}

/// The text isolationtester prints for `output`, in `dialect`.
pub fn render(output: &TestOutput, dialect: Dialect) -> String {
    let mut out = String::new();
    if dialect.warns_unused_steps {
        for name in &output.unused_steps {
            out.push_str(&format!("unused step name: {name}\n"));
        }
    }
    out.push_str(&format!(
        "Parsed test spec with {} sessions\n",
        output.sessions
    ));
    for permutation in &output.permutations {
        render_permutation(&mut out, permutation, dialect);
    }
    out
}

/// Errors held back by the pre-14 tester, in the order they were raised.
#[derive(Default)]
struct HeldErrors(Vec<(String, StepError)>);

impl HeldErrors {
    fn take(&mut self, step: &str) -> Vec<StepError> {
        let (taken, kept) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(s, _)| s == step);
        self.0 = kept;
        taken.into_iter().map(|(_, e)| e).collect()
    }
}

fn render_permutation(out: &mut String, permutation: &PermutationLog, dialect: Dialect) {
    out.push_str("\nstarting permutation:");
    for step in &permutation.steps {
        out.push(' ');
        out.push_str(step);
    }
    out.push('\n');
    let mut held = HeldErrors::default();
    let rows = |out: &mut String, rows: &ResultSet| match dialect.results {
        ResultStyle::Aligned => out.push_str(&table::aligned(rows)),
        ResultStyle::Padded => out.push_str(&table::padded(rows)),
    };
    let outcome = |out: &mut String, held: &mut HeldErrors, step: &str, outcome: &StepOutcome| {
        for result in &outcome.results {
            match result {
                StepResult::Rows(r) => rows(out, r),
                StepResult::Error(e) => match dialect.errors {
                    ErrorStyle::Inline => {
                        out.push_str(&e.text());
                        out.push('\n');
                    }
                    ErrorStyle::Grouped => held.0.push((step.to_string(), e.clone())),
                },
            }
        }
        for n in &outcome.notifications {
            out.push_str(&format!(
                "{}: NOTIFY \"{}\" with payload \"{}\" from {}\n",
                n.session, n.channel, n.payload, n.sender
            ));
        }
    };
    for event in &permutation.events {
        match event {
            PermutationEvent::BlockRows(r) => rows(out, r),
            PermutationEvent::Ran {
                step,
                sql,
                outcome: o,
            } => {
                out.push_str(&format!("step {step}: {sql}\n"));
                outcome(out, &mut held, step, o);
            }
            PermutationEvent::Waiting { step, sql } => {
                out.push_str(&format!("step {step}: {sql} <waiting ...>\n"));
            }
            PermutationEvent::Completed { step, outcome: o } => {
                out.push_str(&format!("step {step}: <... completed>\n"));
                outcome(out, &mut held, step, o);
            }
            PermutationEvent::Notice { session, text } => match dialect.notices {
                NoticeStyle::SessionPrefix => out.push_str(&format!("{session}: {text}")),
                NoticeStyle::Bare => out.push_str(text),
            },
            PermutationEvent::Cancelled { step, seconds } => {
                out.push_str(&format!(
                    "isolationtester: canceling step {step} after {seconds} seconds\n"
                ));
            }
            PermutationEvent::ReportErrors { lead, unblocked } => {
                if dialect.errors == ErrorStyle::Grouped {
                    report_grouped(out, &mut held, lead, unblocked);
                }
            }
            PermutationEvent::Diagnostic(line) => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    // Errors no report point claimed (a log without them): print them plainly.
    for (_, e) in std::mem::take(&mut held.0) {
        out.push_str(&e.text());
        out.push('\n');
    }
}

/// The pre-14 tester's `report_multiple_error_messages`.
fn report_grouped(out: &mut String, held: &mut HeldErrors, lead: &str, unblocked: &[String]) {
    let mut errors = held.take(lead);
    for step in unblocked {
        errors.extend(held.take(step));
    }
    if unblocked.is_empty() {
        for e in errors {
            out.push_str(&e.text());
            out.push('\n');
        }
        return;
    }
    let names = std::iter::once(lead)
        .chain(unblocked.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    for e in errors {
        out.push_str(&format!("error in steps {names}: {}\n", e.text()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlock_log() -> PermutationLog {
        use PermutationEvent::*;
        PermutationLog {
            steps: vec!["a".into(), "b".into()],
            events: vec![
                Waiting {
                    step: "a".into(),
                    sql: "LOCK x;".into(),
                },
                ReportErrors {
                    lead: "a".into(),
                    unblocked: vec![],
                },
                Ran {
                    step: "b".into(),
                    sql: "LOCK y;".into(),
                    outcome: StepOutcome::error(StepError::error("deadlock detected")),
                },
                Completed {
                    step: "a".into(),
                    outcome: StepOutcome::default(),
                },
                ReportErrors {
                    lead: "b".into(),
                    unblocked: vec!["a".into()],
                },
            ],
        }
    }

    #[test]
    fn errors_print_inline_now_and_grouped_before_14() {
        let mut output = TestOutput::new(2, ["zz", "unused"]);
        output.permutations.push(deadlock_log());
        assert_eq!(
            render(&output, Dialect::CURRENT),
            "unused step name: zz\nunused step name: unused\nParsed test spec with 2 sessions\n\n\
             starting permutation: a b\nstep a: LOCK x; <waiting ...>\nstep b: LOCK y;\n\
             ERROR:  deadlock detected\nstep a: <... completed>\n"
        );
        assert_eq!(
            render(&output, Dialect::PRE_14),
            "Parsed test spec with 2 sessions\n\n\
             starting permutation: a b\nstep a: LOCK x; <waiting ...>\nstep b: LOCK y;\n\
             step a: <... completed>\nerror in steps b a: ERROR:  deadlock detected\n"
        );
    }

    #[test]
    fn a_lone_error_before_14_prints_plainly_at_its_report_point() {
        use PermutationEvent::*;
        let mut output = TestOutput::new(1, Vec::<String>::new());
        output.permutations.push(PermutationLog {
            steps: vec!["a".into()],
            events: vec![
                Ran {
                    step: "a".into(),
                    sql: "SELECT 1/0;".into(),
                    outcome: StepOutcome::error(StepError::error("division by zero")),
                },
                Notice {
                    session: "s".into(),
                    text: notice_text("NOTICE", "later", None, Some("h")),
                },
                ReportErrors {
                    lead: "a".into(),
                    unblocked: vec![],
                },
            ],
        });
        assert_eq!(
            render(&output, Dialect::PRE_14),
            "Parsed test spec with 1 sessions\n\nstarting permutation: a\nstep a: SELECT 1/0;\n\
             s: NOTICE:  later\nHINT:  h\nERROR:  division by zero\n"
        );
        let bare = Dialect {
            notices: NoticeStyle::Bare,
            ..Dialect::CURRENT
        };
        assert_eq!(
            render(&output, bare),
            "Parsed test spec with 1 sessions\n\nstarting permutation: a\nstep a: SELECT 1/0;\n\
             ERROR:  division by zero\nNOTICE:  later\nHINT:  h\n"
        );
    }

    #[test]
    fn notifications_cancellations_and_diagnostics() {
        use PermutationEvent::*;
        let mut output = TestOutput::new(2, Vec::<String>::new());
        output.permutations.push(PermutationLog {
            steps: vec!["l".into()],
            events: vec![
                Ran {
                    step: "l".into(),
                    sql: "LISTEN c;".into(),
                    outcome: StepOutcome {
                        results: vec![],
                        notifications: vec![Notification {
                            session: "s1".into(),
                            channel: "c".into(),
                            payload: "p".into(),
                            sender: "s2".into(),
                        }],
                    },
                },
                Cancelled {
                    step: "l".into(),
                    seconds: 360,
                },
                Diagnostic("teardown failed: oops".into()),
                BlockRows(ResultSet::new(["x"], [[None]])),
            ],
        });
        assert_eq!(
            render(&output, Dialect::CURRENT),
            "Parsed test spec with 2 sessions\n\nstarting permutation: l\nstep l: LISTEN c;\n\
             s1: NOTIFY \"c\" with payload \"p\" from s2\n\
             isolationtester: canceling step l after 360 seconds\nteardown failed: oops\n\
             x\n-\n \n(1 row)\n\n"
        );
    }
}
