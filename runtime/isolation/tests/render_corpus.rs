//! Printing, checked against the real expected files: event logs built by hand (the
//! results a server would return, the SQL read from the corpus's specs) must print
//! exactly the text of the expected files, read at test time, in both formats. And an
//! expected file altered by one line is reported as differing, with that line in the
//! diff.

mod common;

use stormchor_isolation::compare::{Expected, Verdict, compare, compare_output};
use stormchor_isolation::corpus::Corpus;
use stormchor_isolation::output::{
    Dialect, NoticeStyle, PermutationEvent, PermutationLog, ResultSet, StepError, StepOutcome,
    TestOutput, notice_text, render,
};
use stormchor_isolation::spec::Spec;

/// Builds a permutation's events with the SQL of the spec's steps.
struct Log<'a> {
    spec: &'a Spec,
    events: Vec<PermutationEvent>,
}

impl<'a> Log<'a> {
    fn new(spec: &'a Spec) -> Self {
        Log {
            spec,
            events: Vec::new(),
        }
    }

    fn sql(&self, step: &str) -> String {
        self.spec.step(step).expect("step of the spec").sql.clone()
    }

    /// A step that ran to completion at once, then the pre-14 report point for it and
    /// the waiting steps it unblocked (none here; see `report`).
    fn ran(mut self, step: &str, outcome: StepOutcome) -> Self {
        let sql = self.sql(step);
        self.events.push(PermutationEvent::Ran {
            step: step.into(),
            sql,
            outcome,
        });
        self
    }

    fn waiting(mut self, step: &str) -> Self {
        let sql = self.sql(step);
        self.events.push(PermutationEvent::Waiting {
            step: step.into(),
            sql,
        });
        self
    }

    fn completed(mut self, step: &str, outcome: StepOutcome) -> Self {
        self.events.push(PermutationEvent::Completed {
            step: step.into(),
            outcome,
        });
        self
    }

    fn report(mut self, lead: &str, unblocked: &[&str]) -> Self {
        self.events.push(PermutationEvent::ReportErrors {
            lead: lead.into(),
            unblocked: unblocked.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    fn notice(mut self, session: &str, text: String) -> Self {
        self.events.push(PermutationEvent::Notice {
            session: session.into(),
            text,
        });
        self
    }

    fn done(self, permutation: usize) -> PermutationLog {
        PermutationLog {
            steps: self.spec.permutations[permutation]
                .step_names()
                .map(String::from)
                .collect(),
            events: self.events,
        }
    }
}

fn none() -> StepOutcome {
    StepOutcome::default()
}

fn one_column(name: &str, values: &[&str]) -> StepOutcome {
    StepOutcome::rows(ResultSet::new(
        [name],
        values.iter().map(|v| [Some(v.to_string())]),
    ))
}

fn load(corpus: &Corpus, name: &str) -> (Spec, Vec<Expected>) {
    let spec = corpus.spec(name).expect("parses");
    let expected = corpus.expected(name).expect("readable");
    assert!(!expected.is_empty(), "{name} has no expected file");
    (spec, expected)
}

/// The whole of deadlock-simple's expected file, from its one permutation's events.
fn deadlock_simple(corpus: &Corpus) -> (TestOutput, Vec<Expected>) {
    let (spec, expected) = load(corpus, "deadlock-simple");
    let mut output = TestOutput::for_spec(&spec);
    let deadlock = StepOutcome::error(StepError::error("deadlock detected"));
    output.permutations.push(
        Log::new(&spec)
            .ran("s1as", none())
            .report("s1as", &[])
            .ran("s2as", none())
            .report("s2as", &[])
            .waiting("s1ae")
            .report("s1ae", &[])
            .ran("s2ae", deadlock)
            .completed("s1ae", none())
            .report("s2ae", &["s1ae"])
            .ran("s1c", none())
            .report("s1c", &[])
            .ran("s2c", none())
            .report("s2c", &[])
            .done(0),
    );
    (output, expected)
}

#[test]
fn deadlock_simple_prints_its_expected_file() {
    let Some(corpus) = common::corpus("deadlock_simple_prints_its_expected_file") else {
        return;
    };
    let (output, expected) = deadlock_simple(&corpus);
    let file = &expected[0];
    assert_eq!(file.dialect(), Dialect::CURRENT);
    assert_eq!(render(&output, Dialect::CURRENT), file.text);
    assert_eq!(
        compare_output(&output, &expected),
        Some(Verdict::Matched {
            file: "deadlock-simple.out".into()
        })
    );
    // Printed the pre-14 way, the same run reads differently (the error waits for the
    // step it unblocked): the dialect matters.
    assert_ne!(render(&output, Dialect::PRE_14), file.text);
}

#[test]
fn an_expected_file_altered_by_one_line_is_reported_with_that_line() {
    let Some(corpus) =
        common::corpus("an_expected_file_altered_by_one_line_is_reported_with_that_line")
    else {
        return;
    };
    let (output, expected) = deadlock_simple(&corpus);
    let original = &expected[0].text;
    let lines: Vec<&str> = original.lines().collect();
    // Alter each line in turn: every one must be caught, and shown.
    for (i, line) in lines.iter().enumerate() {
        let altered_line = format!("{line} (altered)");
        let altered: String = lines
            .iter()
            .enumerate()
            .map(|(j, l)| {
                if i == j {
                    format!("{altered_line}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let variants = [Expected::new("deadlock-simple.out", altered)];
        let Some(Verdict::Differed(m)) = compare_output(&output, &variants) else {
            panic!("line {} altered, yet reported as matching", i + 1);
        };
        assert_eq!(m.file, "deadlock-simple.out");
        assert_eq!(m.changed_lines, 2, "line {}: {}", i + 1, m.diff);
        assert!(
            m.diff.contains(&format!("\n-{altered_line}\n"))
                && m.diff.contains(&format!("\n+{line}\n")),
            "line {}: the diff does not show it:\n{}",
            i + 1,
            m.diff
        );
    }
    // With the true file among the variants, it matches again.
    let mut variants = vec![Expected::new("deadlock-simple_1.out", "something else\n")];
    variants.push(expected[0].clone());
    assert!(matches!(
        compare_output(&output, &variants),
        Some(Verdict::Matched { .. })
    ));
    // And a text compared as it is, not printed: the closest variant is diffed.
    let rendered = render(&output, Dialect::CURRENT);
    let shorter = rendered.replace("step s1c: COMMIT;\n", "");
    let Some(Verdict::Differed(m)) = compare(&shorter, &variants) else {
        panic!("a dropped line must differ");
    };
    assert_eq!(m.file, "deadlock-simple.out");
    assert!(
        m.diff.contains("\n+step s1c: COMMIT;\n") || m.diff.contains("\n-step s1c: COMMIT;\n"),
        "{}",
        m.diff
    );
}

/// Result sets in the current format: the first permutation of read-only-anomaly.
#[test]
fn result_sets_print_as_pqprint_does() {
    let Some(corpus) = common::corpus("result_sets_print_as_pqprint_does") else {
        return;
    };
    let (spec, expected) = load(&corpus, "read-only-anomaly");
    let rows = |v: &[(&str, &str)]| {
        StepOutcome::rows(ResultSet::new(
            ["id", "balance"],
            v.iter()
                .map(|(a, b)| [Some(a.to_string()), Some(b.to_string())]),
        ))
    };
    let log = Log::new(&spec)
        .ran("s2rx", one_column("balance", &["0"]))
        .ran("s2ry", one_column("balance", &["0"]))
        .ran("s1ry", one_column("balance", &["0"]))
        .ran("s1wy", none())
        .ran("s1c", none())
        .ran("s3r", rows(&[("X", "0"), ("Y", "20")]))
        .ran("s2wx", none())
        .ran("s2c", none())
        .ran("s3c", none())
        .done(0);
    let file = &expected[0];
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(log);
    let printed = render(&output, file.dialect());
    let want = format!(
        "{}{}",
        common::section(&file.text, None),
        common::section(&file.text, Some(0))
    );
    assert_eq!(printed, want);
}

/// The pre-14 format: padded result sets, and an error reported with the step that
/// unblocked it (`error in steps`): the whole of read-write-unique-3's file.
#[test]
fn the_pre_14_format_with_grouped_errors() {
    let Some(corpus) = common::corpus("the_pre_14_format_with_grouped_errors") else {
        return;
    };
    let (spec, expected) = load(&corpus, "read-write-unique-3");
    let file = &expected[0];
    assert_eq!(file.dialect(), Dialect::PRE_14);
    let serialization = StepError::error(
        "could not serialize access due to read/write dependencies among transactions",
    );
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(
        Log::new(&spec)
            .ran("rw1", one_column("insert_unique", &[""]))
            .report("rw1", &[])
            .waiting("rw2")
            .report("rw2", &[])
            .ran("c1", none())
            .completed("rw2", StepOutcome::error(serialization))
            .report("c1", &["rw2"])
            .ran("c2", none())
            .report("c2", &[])
            .done(0),
    );
    assert_eq!(render(&output, Dialect::PRE_14), file.text);
    assert!(matches!(
        compare_output(&output, &expected),
        Some(Verdict::Matched { .. })
    ));
    // The current format prints the same run differently (row count, inline error).
    let current = render(&output, Dialect::CURRENT);
    assert!(current.contains("(1 row)") && !current.contains("error in steps"));

    // And timeouts' first permutation: a completion after a wait, then its error.
    let (spec, expected) = load(&corpus, "timeouts");
    let file = &expected[0];
    assert_eq!(file.dialect().results, Dialect::PRE_14.results);
    let accounts = StepOutcome::rows(ResultSet::new(
        ["accountid", "balance"],
        [
            [Some("checking".to_string()), Some("600".to_string())],
            [Some("savings".to_string()), Some("600".to_string())],
        ],
    ));
    let timeout = StepError::error("canceling statement due to statement timeout");
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(
        Log::new(&spec)
            .ran("rdtbl", accounts)
            .report("rdtbl", &[])
            .ran("sto", none())
            .report("sto", &[])
            .waiting("locktbl")
            .report("locktbl", &[])
            .completed("locktbl", StepOutcome::error(timeout))
            .report("locktbl", &[])
            .done(0),
    );
    let want = format!(
        "{}{}",
        common::section(&file.text, None),
        common::section(&file.text, Some(0))
    );
    assert_eq!(render(&output, file.dialect()), want);
}

/// A warning printed when it arrives, before the step's line, without the session
/// prefix in this older file: vacuum-skip-locked's first permutation.
#[test]
fn notices_print_when_they_arrive() {
    let Some(corpus) = common::corpus("notices_print_when_they_arrive") else {
        return;
    };
    let (spec, expected) = load(&corpus, "vacuum-skip-locked");
    let file = &expected[0];
    let dialect = file.dialect();
    assert_eq!(dialect.notices, NoticeStyle::Bare);
    let warning = notice_text(
        "WARNING",
        "skipping vacuum of \"part1\" --- lock not available",
        None,
        None,
    );
    let log = Log::new(&spec)
        .ran("lock_share", none())
        .notice("s2", warning)
        .ran("vac_specified", none())
        .ran("commit", none())
        .done(0);
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(log);
    let want = format!(
        "{}{}",
        common::section(&file.text, None),
        common::section(&file.text, Some(0))
    );
    assert_eq!(render(&output, dialect), want);
    // The current tester prefixes the session's name.
    let prefixed = render(&output, Dialect::CURRENT);
    assert!(
        prefixed.contains("\ns2: WARNING:  skipping vacuum"),
        "{prefixed}"
    );
}

/// Every expected file of the corpus, read back into an event log, prints exactly
/// itself: the log and the printer express every output the corpus holds (result sets
/// of every shape, errors in both styles, notices, notifications, setup results).
#[test]
fn every_expected_file_is_printable_from_an_event_log() {
    let Some(corpus) = common::corpus("every_expected_file_is_printable_from_an_event_log") else {
        return;
    };
    let mut failures = Vec::new();
    let (mut files, mut events, mut tables) = (0, 0, 0);
    for name in common::spec_names(&corpus) {
        let spec = corpus.spec(&name).expect("parses");
        for e in corpus.expected(&name).expect("readable") {
            files += 1;
            let output = match common::read::read_expected(&spec, &e.text) {
                Ok(output) => output,
                Err(why) => {
                    failures.push(format!("{}: cannot read: {why}", e.file));
                    continue;
                }
            };
            for p in &output.permutations {
                events += p.events.len();
                tables += p
                    .events
                    .iter()
                    .map(|ev| match ev {
                        PermutationEvent::BlockRows(_) => 1,
                        PermutationEvent::Ran { outcome, .. }
                        | PermutationEvent::Completed { outcome, .. } => outcome
                            .results
                            .iter()
                            .filter(|r| {
                                matches!(r, stormchor_isolation::output::StepResult::Rows(_))
                            })
                            .count(),
                        _ => 0,
                    })
                    .sum::<usize>();
            }
            let printed = render(&output, e.dialect());
            if printed != e.text {
                let diff = stormchor_isolation::compare::unified_diff(
                    &e.text, &printed, &e.file, "printed",
                );
                failures.push(format!(
                    "{}: prints differently:\n{}",
                    e.file,
                    diff.lines().take(30).collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    let aligned = common::read::ALIGNMENTS_CHECKED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{files} expected files read and printed back: {events} events, {tables} result sets \
         ({aligned} short headers whose alignment follows the numeric rule); {} failures",
        failures.len()
    );
    assert!(aligned > 0, "no header checked the numeric rule");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
