//! Reading an expected file back into the event log that would print it (test code:
//! a check that the log and the printer can express every expected output).
//!
//! The reader knows the spec (so it knows each step's SQL, which may span lines) and
//! the file's dialect. Where the text is ambiguous it picks one reading that prints the
//! same: an error in `error in steps A B:` is given to A; a pre-14 result row is read
//! as one wide column.

#![allow(dead_code)]

use stormchor_isolation::output::{
    Dialect, ErrorStyle, Notification, PermutationEvent, PermutationLog, ResultSet, ResultStyle,
    StepError, StepOutcome, StepResult, TestOutput,
};
use stormchor_isolation::spec::Spec;

const SEVERITIES: [&str; 5] = ["NOTICE", "WARNING", "INFO", "LOG", "DEBUG"];

/// The severity prefix (`NOTICE:  `) a line starts with, if any.
fn notice_severity(line: &str) -> bool {
    SEVERITIES
        .iter()
        .any(|s| line.starts_with(&format!("{s}:  ")))
}

fn error_line(line: &str) -> Option<StepError> {
    for severity in ["ERROR", "FATAL", "PANIC"] {
        if let Some(message) = line.strip_prefix(&format!("{severity}:  ")) {
            return Some(StepError {
                severity: Some(severity.into()),
                message: message.into(),
            });
        }
    }
    None
}

/// PQprint's test for a number (see the library's table printing).
fn looks_numeric(value: &str) -> bool {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'E' | 'e' | ' ' | '-');
    value.chars().all(allowed)
        && !value.starts_with(['E', 'e'])
        && value.chars().last().is_some_and(|c| c.is_ascii_digit())
}

/// How many headers shorter than their column had their alignment checked.
pub static ALIGNMENTS_CHECKED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Lines isolationtester writes to standard error (merged into the expected files).
const DIAGNOSTICS: [&str; 6] = [
    "invalid permutation detected",
    "setup failed: ",
    "teardown failed: ",
    "teardown of session ",
    "failed to complete permutation due to mutually-blocking steps",
    "WARNING: this step had a leftover error message",
];

/// How libpq's own error messages (without severity) begin.
const LIBPQ_ERRORS: [&str; 2] = [
    "server closed the connection unexpectedly",
    "no connection to the server",
];

struct Reader<'a> {
    spec: &'a Spec,
    dialect: Dialect,
    text: &'a str,
    at: usize,
    /// Where the section starts in the whole file (for messages).
    line_base: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn line(&self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.is_empty() {
            return None;
        }
        Some(rest.split_once('\n').map_or(rest, |(l, _)| l))
    }

    fn skip_line(&mut self) {
        let rest = self.rest();
        self.at += rest.find('\n').map_or(rest.len(), |i| i + 1);
    }

    fn line_number(&self) -> usize {
        self.line_base + self.text[..self.at].matches('\n').count()
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!(
            "line {}: {what}: {:?}",
            self.line_number(),
            self.line().unwrap_or("<end>")
        ))
    }

    /// The step whose `step NAME: ` line this is, and the text after it.
    fn step_line(&self) -> Option<(&'a str, &'a str)> {
        let rest = self.rest().strip_prefix("step ")?;
        self.spec
            .sessions
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|step| {
                let after = rest.strip_prefix(step.name.as_str())?.strip_prefix(": ")?;
                Some((step.name.as_str(), after))
            })
            .max_by_key(|(name, _)| name.len())
    }

    fn is_tester_line(&self, line: &str) -> bool {
        self.step_line_at(line)
            || DIAGNOSTICS.iter().any(|d| line.starts_with(d))
            || LIBPQ_ERRORS.iter().any(|d| line.starts_with(d))
            || line.starts_with("error in steps ")
            || line.starts_with("isolationtester: ")
            || error_line(line).is_some()
            || self.notice_line(line).is_some()
    }

    fn step_line_at(&self, line: &str) -> bool {
        line.starts_with("step ")
    }

    /// A notice line: its session (`None` when bare) and text.
    fn notice_line(&self, line: &str) -> Option<Option<String>> {
        if notice_severity(line) {
            return Some(None);
        }
        let (session, rest) = line.split_once(": ")?;
        (self.spec.sessions.iter().any(|s| s.name == session) && notice_severity(rest))
            .then(|| Some(session.to_string()))
    }

    fn notification(&self, line: &str) -> Option<Notification> {
        let (session, rest) = line.split_once(": NOTIFY \"")?;
        let (channel, rest) = rest.split_once("\" with payload \"")?;
        let (payload, sender) = rest.rsplit_once("\" from ")?;
        Some(Notification {
            session: session.into(),
            channel: channel.into(),
            payload: payload.into(),
            sender: sender.into(),
        })
    }

    /// A result set starting at the current line, if one does.
    fn table(&mut self) -> Result<Option<ResultSet>, String> {
        let Some(header) = self.line() else {
            return Ok(None);
        };
        if self.is_tester_line(header) {
            return Ok(None);
        }
        match self.dialect.results {
            ResultStyle::Aligned => self.aligned(header).map(Some),
            ResultStyle::Padded => self.padded(header).map(Some),
        }
    }

    fn aligned(&mut self, header: &'a str) -> Result<ResultSet, String> {
        self.skip_line();
        let Some(border) = self.line() else {
            return self.fail("a border after a header");
        };
        if border.is_empty() || !border.bytes().all(|b| b == b'-' || b == b'+') {
            return self.fail("a border of - and +");
        }
        let widths: Vec<usize> = border.split('+').map(str::len).collect();
        let cut = |line: &str| -> Option<Vec<String>> {
            let mut fields = Vec::new();
            let mut at = 0;
            for (j, w) in widths.iter().enumerate() {
                fields.push(line.get(at..at + w)?.to_string());
                at += w;
                if j + 1 < widths.len() {
                    if line.as_bytes().get(at) != Some(&b'|') {
                        return None;
                    }
                    at += 1;
                }
            }
            (at == line.len()).then_some(fields)
        };
        let Some(names) = cut(header) else {
            return self.fail("a header matching its border");
        };
        self.skip_line();
        let mut rows = Vec::new();
        loop {
            let Some(line) = self.line() else {
                return self.fail("a row count");
            };
            if let Some(count) = line
                .strip_prefix('(')
                .and_then(|l| l.strip_suffix(" rows)").or_else(|| l.strip_suffix(" row)")))
            {
                if count.parse::<usize>() != Ok(rows.len()) {
                    return self.fail("a row count equal to the rows");
                }
                self.skip_line();
                if self.line() != Some("") {
                    return self.fail("an empty line after the row count");
                }
                self.skip_line();
                break;
            }
            let Some(values) = cut(line) else {
                return self.fail("a row matching the border");
            };
            rows.push(values);
            self.skip_line();
        }
        // A column is right-aligned (numeric) when all its non-empty values look like
        // numbers: then padding is on the left, else on the right.
        let numeric: Vec<bool> = (0..widths.len())
            .map(|j| {
                rows.iter()
                    .map(|r| r[j].trim())
                    .filter(|v| !v.is_empty())
                    .all(looks_numeric)
            })
            .collect();
        // That rule is PQprint's: the header shows it, wherever the header is shorter
        // than its column (right-aligned, so with leading spaces, for a numeric one).
        for (j, name) in names.iter().enumerate() {
            if name.trim().len() < widths[j] {
                if name.starts_with(' ') != numeric[j] {
                    return self.fail(&format!(
                        "column {:?}: header alignment disagrees with the numeric rule",
                        name.trim()
                    ));
                }
                ALIGNMENTS_CHECKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let unpad = |j: usize, v: &str| -> String {
            if numeric[j] {
                v.trim_start().to_string()
            } else {
                v.trim_end().to_string()
            }
        };
        Ok(ResultSet {
            columns: names.iter().enumerate().map(|(j, n)| unpad(j, n)).collect(),
            rows: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(j, v)| Some(unpad(j, v)).filter(|v| !v.is_empty()))
                        .collect()
                })
                .collect(),
        })
    }

    fn padded(&mut self, header: &'a str) -> Result<ResultSet, String> {
        self.skip_line();
        if self.line() != Some("") {
            return self.fail("an empty line after a pre-14 header");
        }
        self.skip_line();
        let mut rows = Vec::new();
        while let Some(line) = self.line() {
            // The next result set's header is followed by an empty line.
            let next_is_empty = self.rest()[line.len()..].starts_with("\n\n");
            if self.is_tester_line(line) || line.is_empty() || next_is_empty {
                break;
            }
            rows.push(vec![Some(line.to_string())]);
            self.skip_line();
        }
        Ok(ResultSet {
            columns: vec![header.to_string()],
            rows,
        })
    }

    /// A completed step's results, tables and (current format) errors.
    fn outcome(&mut self) -> Result<StepOutcome, String> {
        let mut outcome = StepOutcome::default();
        while let Some(line) = self.line() {
            if self.dialect.errors == ErrorStyle::Inline {
                if let Some(e) = error_line(line) {
                    outcome.results.push(StepResult::Error(e));
                    self.skip_line();
                    continue;
                }
                if LIBPQ_ERRORS.iter().any(|e| line.starts_with(e)) {
                    // libpq's own message (no severity): its lines, up to the empty line
                    // that its final newline and the tester's make.
                    let mut message = String::new();
                    while let Some(l) = self.line().filter(|l| !l.is_empty()) {
                        message.push_str(l);
                        message.push('\n');
                        self.skip_line();
                    }
                    if self.line() != Some("") {
                        return self.fail("an empty line after libpq's message");
                    }
                    self.skip_line();
                    outcome.results.push(StepResult::Error(StepError {
                        severity: None,
                        message,
                    }));
                    continue;
                }
            }
            if let Some(n) = self.notification(line) {
                outcome.notifications.push(n);
                self.skip_line();
                continue;
            }
            if !outcome.notifications.is_empty() {
                break;
            }
            match self.table()? {
                Some(rows) => outcome.results.push(StepResult::Rows(rows)),
                None => break,
            }
        }
        Ok(outcome)
    }

    fn events(&mut self) -> Result<Vec<PermutationEvent>, String> {
        let mut events: Vec<PermutationEvent> = Vec::new();
        while let Some(line) = self.line() {
            if let Some((step, after)) = self.step_line() {
                let sql = self.spec.step(step).map(|s| s.sql.as_str()).unwrap_or("");
                if after.starts_with("<... completed>\n") || after == "<... completed>" {
                    self.skip_line();
                    let outcome = self.outcome()?;
                    events.push(PermutationEvent::Completed {
                        step: step.into(),
                        outcome,
                    });
                } else if let Some(tail) = after.strip_prefix(sql) {
                    let consumed = self.rest().len() - tail.len();
                    if tail.starts_with(" <waiting ...>") {
                        self.at += consumed;
                        self.skip_line();
                        events.push(PermutationEvent::Waiting {
                            step: step.into(),
                            sql: sql.into(),
                        });
                    } else if tail.starts_with('\n') || tail.is_empty() {
                        self.at += consumed;
                        self.skip_line();
                        let outcome = self.outcome()?;
                        events.push(PermutationEvent::Ran {
                            step: step.into(),
                            sql: sql.into(),
                            outcome,
                        });
                    } else {
                        return self.fail("a step's SQL followed by a newline or <waiting ...>");
                    }
                } else {
                    return self.fail("the step's SQL as in the spec");
                }
            } else if let Some(group) = line.strip_prefix("error in steps ") {
                // Consecutive lines with the same step list are one report.
                let Some((names, rest)) = group.split_once(": ") else {
                    return self.fail("`error in steps NAMES: ERROR`");
                };
                let names: Vec<String> = names.split(' ').map(String::from).collect();
                let Some(error) = error_line(rest) else {
                    return self.fail("an error after the step names");
                };
                self.skip_line();
                // Give the errors to the first named step that has completed (the lead
                // may still be waiting): the report prints them in this order anyway.
                let Some(owner) = names
                    .iter()
                    .find(|n| last_completion_of(&events, n))
                    .cloned()
                else {
                    return self.fail("an earlier completion of a named step");
                };
                attach_error(&mut events, &owner, error);
                let same = format!("error in steps {}: ", names.join(" "));
                while let Some(next) = self.line().and_then(|l| l.strip_prefix(&same)) {
                    let Some(error) = error_line(next) else {
                        return self.fail("an error after the step names");
                    };
                    attach_error(&mut events, &owner, error);
                    self.skip_line();
                }
                events.push(PermutationEvent::ReportErrors {
                    lead: names[0].clone(),
                    unblocked: names[1..].to_vec(),
                });
            } else if let Some(error) = error_line(line) {
                // A lone error reported after the fact (pre-14): the last completion's.
                let Some(step) = last_completed(&events) else {
                    return self.fail("an error after a completion");
                };
                attach_error(&mut events, &step, error);
                self.skip_line();
                events.push(PermutationEvent::ReportErrors {
                    lead: step,
                    unblocked: Vec::new(),
                });
            } else if let Some(session) = self.notice_line(line) {
                let mut text = format!(
                    "{}\n",
                    session.as_ref().map_or(line, |s| &line[s.len() + 2..])
                );
                self.skip_line();
                while let Some(more) = self
                    .line()
                    .filter(|l| l.starts_with("DETAIL:  ") || l.starts_with("HINT:  "))
                {
                    text.push_str(more);
                    text.push('\n');
                    self.skip_line();
                }
                events.push(PermutationEvent::Notice {
                    session: session.unwrap_or_else(|| "?".into()),
                    text,
                });
            } else if DIAGNOSTICS.iter().any(|d| line.starts_with(d)) {
                events.push(PermutationEvent::Diagnostic(line.to_string()));
                self.skip_line();
            } else if let Some(rest) = line.strip_prefix("isolationtester: canceling step ") {
                let Some((step, seconds)) = rest
                    .strip_suffix(" seconds")
                    .and_then(|r| r.rsplit_once(" after "))
                else {
                    return self.fail("a cancellation");
                };
                let Ok(seconds) = seconds.parse() else {
                    return self.fail("seconds");
                };
                events.push(PermutationEvent::Cancelled {
                    step: step.into(),
                    seconds,
                });
                self.skip_line();
            } else {
                match self.table()? {
                    Some(rows) => events.push(PermutationEvent::BlockRows(rows)),
                    None => return self.fail("an event"),
                }
            }
        }
        Ok(events)
    }
}

fn last_completion_of(events: &[PermutationEvent], step: &str) -> bool {
    events.iter().any(|e| {
        matches!(e, PermutationEvent::Ran { step: s, .. } | PermutationEvent::Completed { step: s, .. } if s == step)
    })
}

fn last_completed(events: &[PermutationEvent]) -> Option<String> {
    events.iter().rev().find_map(|e| match e {
        PermutationEvent::Ran { step, .. } | PermutationEvent::Completed { step, .. } => {
            Some(step.clone())
        }
        _ => None,
    })
}

/// Appends `error` to the last completion of `step`; `None` if there is none.
fn attach_error(events: &mut [PermutationEvent], step: &str, error: StepError) -> Option<()> {
    let outcome = events.iter_mut().rev().find_map(|e| match e {
        PermutationEvent::Ran {
            step: s, outcome, ..
        }
        | PermutationEvent::Completed { step: s, outcome }
            if s == step =>
        {
            Some(outcome)
        }
        _ => None,
    })?;
    outcome.results.push(StepResult::Error(error));
    Some(())
}

/// The event log that prints `text`, an expected file of `spec`.
pub fn read_expected(spec: &Spec, text: &str) -> Result<TestOutput, String> {
    let dialect = Dialect::detect(text);
    let parts: Vec<&str> = text.split("\nstarting permutation:").collect();
    // The heading as printed (the spec's own is checked elsewhere; some files predate
    // their spec's unused steps).
    let mut output = TestOutput::default();
    for line in parts[0].lines() {
        if let Some(name) = line.strip_prefix("unused step name: ") {
            output.unused_steps.push(name.to_string());
        } else if let Some(n) = line
            .strip_prefix("Parsed test spec with ")
            .and_then(|l| l.strip_suffix(" sessions"))
        {
            output.sessions = n.parse().map_err(|_| format!("heading: {line:?}"))?;
        } else {
            return Err(format!("heading: unexpected {line:?}"));
        }
    }
    let mut line_base = 1 + parts[0].matches('\n').count();
    for part in &parts[1..] {
        let (names, body) = part.split_once('\n').unwrap_or((part, ""));
        let steps: Vec<String> = names.split_whitespace().map(String::from).collect();
        let mut reader = Reader {
            spec,
            dialect,
            text: body,
            at: 0,
            line_base: line_base + 1,
        };
        let events = reader
            .events()
            .map_err(|e| format!("permutation {names:?}, {e}"))?;
        output.permutations.push(PermutationLog { steps, events });
        line_base += 1 + part.matches('\n').count();
    }
    Ok(output)
}
