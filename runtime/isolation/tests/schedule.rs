//! The scheduler, driven by a scripted database: each step says when it can finish
//! (at once, once another step has been launched, or only when waited for) and what it
//! returns. Where the corpus has the spec, the printed run must equal the expected
//! file; the hand-made cases check markers, notices and the ends a run can come to.

mod common;

use std::collections::HashMap;

use stormchor_isolation::compare::Expected;
use stormchor_isolation::output::{
    Dialect, PermutationEvent, ResultSet, StepError, StepOutcome, StepResult, TestOutput,
    notice_text, render,
};
use stormchor_isolation::schedule::{
    Arrival, Finished, Next, Observation, Request, ScheduleError, Scheduler, StepState,
};
use stormchor_isolation::spec::Spec;

/// When a step's result is there.
#[derive(Clone)]
enum Release {
    /// At once.
    Now,
    /// Once this step has been launched (it released what the step waits for).
    ByLaunchOf(&'static str),
    /// Seen blocked, but done when waited for (a timeout that fires meanwhile).
    WhenWaitedFor,
}

#[derive(Clone)]
struct Behaviour {
    release: Release,
    outcome: StepOutcome,
    /// Notices sent before the result (delivered with the first answer).
    early_notices: Vec<String>,
    /// Notices sent with the result.
    notices: Vec<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            release: Release::Now,
            outcome: StepOutcome::default(),
            early_notices: Vec::new(),
            notices: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Script {
    steps: HashMap<&'static str, Behaviour>,
    /// Rows a setup or teardown block returns, by its SQL.
    blocks: HashMap<String, Vec<StepResult>>,
    /// A block whose SQL contains this fails.
    failing_block: Option<&'static str>,
}

impl Script {
    fn step(mut self, name: &'static str, behaviour: Behaviour) -> Self {
        self.steps.insert(name, behaviour);
        self
    }
}

fn released(by: &'static str) -> Behaviour {
    Behaviour {
        release: Release::ByLaunchOf(by),
        ..Behaviour::default()
    }
}

fn returns(outcome: StepOutcome) -> Behaviour {
    Behaviour {
        outcome,
        ..Behaviour::default()
    }
}

fn error(message: &str) -> StepOutcome {
    StepOutcome::error(StepError::error(message))
}

fn rows(columns: &[&str], values: &[&[&str]]) -> StepOutcome {
    StepOutcome::rows(ResultSet::new(
        columns.iter().copied(),
        values
            .iter()
            .map(|r| r.iter().map(|v| Some(v.to_string())).collect::<Vec<_>>()),
    ))
}

/// Runs one permutation against the script; also counts requests.
fn drive(spec: &Spec, index: usize, script: &Script) -> (Finished, usize) {
    let permutation = &spec.permutations[index];
    let mut scheduler = Scheduler::new(spec, permutation).expect("valid permutation");
    let mut launched: Vec<String> = Vec::new();
    let mut active: HashMap<usize, String> = HashMap::new();
    let mut answered_early: Vec<String> = Vec::new();
    let mut since_launch = 0;
    let mut requests = 0;
    loop {
        let request = match scheduler.next_move() {
            Next::Finished(finished) => return (finished, requests),
            Next::Ask(request) => request,
        };
        requests += 1;
        since_launch += 1;
        // The driver's bound: a long time without any launch means a wait that will
        // not end.
        if since_launch > 200 {
            scheduler
                .answer(Observation::TimedOut { seconds: 720 })
                .expect("fits");
            continue;
        }
        let answer = match request {
            Request::Run { connection: _, sql } => {
                let failure = script
                    .failing_block
                    .filter(|f| sql.contains(f))
                    .map(|_| "ERROR:  boom\n".to_string());
                Observation::Ran {
                    notices: Vec::new(),
                    results: script.blocks.get(&sql).cloned().unwrap_or_default(),
                    failure,
                }
            }
            Request::Launch { session, step, .. } => {
                launched.push(step.clone());
                active.insert(session, step);
                since_launch = 0;
                Observation::Launched
            }
            Request::Abandon { .. } => Observation::Abandoned,
            Request::Settle { session } | Request::Finish { session } => {
                let waited = matches!(request, Request::Finish { .. });
                let step = active.get(&session).cloned().expect("a step is active");
                let behaviour = script.steps.get(step.as_str()).cloned().unwrap_or_default();
                let mut arrivals = Vec::new();
                if !answered_early.contains(&step) {
                    answered_early.push(step.clone());
                    arrivals.extend(behaviour.early_notices.iter().cloned().map(Arrival::Notice));
                }
                let done = match behaviour.release {
                    Release::Now => true,
                    Release::ByLaunchOf(other) => launched.iter().any(|l| l == other),
                    Release::WhenWaitedFor => waited,
                };
                if done {
                    arrivals.extend(behaviour.notices.iter().cloned().map(Arrival::Notice));
                    answered_early.retain(|s| s != &step);
                    Observation::Settled {
                        arrivals,
                        state: StepState::Done(behaviour.outcome.clone()),
                    }
                } else if waited {
                    Observation::TimedOut { seconds: 720 }
                } else {
                    Observation::Settled {
                        arrivals,
                        state: StepState::Blocked,
                    }
                }
            }
        };
        scheduler
            .answer(answer)
            .expect("the answer fits its request");
    }
}

/// Runs every permutation of `spec` (stopping where upstream's tester would die).
fn run_all(spec: &Spec, script: &Script) -> TestOutput {
    let mut output = TestOutput::for_spec(spec);
    for index in 0..spec.permutations.len() {
        let (finished, _) = drive(spec, index, script);
        output.permutations.push(finished.log);
        if finished.died {
            break;
        }
    }
    output
}

fn corpus_case(name: &str) -> Option<(Spec, Vec<Expected>)> {
    let corpus = common::corpus(&format!("schedule::{name}"))?;
    let spec = corpus.spec(name).expect("parses");
    let expected = corpus.expected(name).expect("readable");
    Some((spec, expected))
}

/// The heading and the first `n` permutations of an expected text.
fn first_permutations(text: &str, n: usize) -> String {
    let mut out = common::section(text, None);
    for i in 0..n {
        out.push_str(&common::section(text, Some(i)));
    }
    out
}

#[test]
fn deadlock_simple_as_upstream_prints_it() {
    let Some((spec, expected)) = corpus_case("deadlock-simple") else {
        return;
    };
    let script = Script::default()
        .step("s1ae", released("s2ae"))
        .step("s2ae", returns(error("deadlock detected")));
    let output = run_all(&spec, &script);
    assert_eq!(render(&output, expected[0].dialect()), expected[0].text);
}

/// Four sessions, four waiting steps completing in a cascade.
#[test]
fn deadlock_soft_as_upstream_prints_it() {
    let Some((spec, expected)) = corpus_case("deadlock-soft") else {
        return;
    };
    let script = Script::default()
        .step("e1l", released("d1c"))
        .step("e2l", released("d2c"))
        .step("d1a2", released("d2a1"))
        .step("d2a1", released("e1c"));
    let output = run_all(&spec, &script);
    assert_eq!(render(&output, expected[0].dialect()), expected[0].text);
}

/// `(other)` markers: each unlock completes at once but is reported only after the
/// update it releases.
#[test]
fn step_markers_as_in_tuplelock_update() {
    let Some((spec, expected)) = corpus_case("tuplelock-update") else {
        return;
    };
    let unlocked = || returns(rows(&["pg_advisory_unlock"], &[&["t"]]));
    let script = Script::default()
        .step(
            "s1_advlock",
            returns(rows(
                &["pg_advisory_lock", "pg_advisory_lock", "pg_advisory_lock"],
                &[&["", "", ""]],
            )),
        )
        .step("s2_update", released("s1_advunlock1"))
        .step("s3_update", released("s1_advunlock2"))
        .step("s4_update", released("s1_advunlock3"))
        .step(
            "s1_grablock",
            returns(rows(&["id", "data"], &[&["1", "2"]])),
        )
        .step("s1_advunlock1", unlocked())
        .step("s1_advunlock2", unlocked())
        .step("s1_advunlock3", unlocked());
    let output = run_all(&spec, &script);
    assert_eq!(render(&output, expected[0].dialect()), expected[0].text);
}

/// `(*)`, the end-of-permutation completions in order, rows from a session teardown.
#[test]
fn star_marker_and_teardown_rows_as_in_multiple_cic() {
    let Some((spec, expected)) = corpus_case("multiple-cic") else {
        return;
    };
    let mut script = Script::default()
        .step("s2l", returns(rows(&["pg_advisory_lock"], &[&[""]])))
        .step("s1i", released("s2i"));
    let teardown = spec.sessions[0]
        .teardown
        .as_ref()
        .expect("s1 has a teardown");
    let unlck = rows(&["unlck"], &[&["t"]]).results;
    script.blocks.insert(teardown.sql.clone(), unlck);
    let output = run_all(&spec, &script);
    assert_eq!(render(&output, expected[0].dialect()), expected[0].text);
}

/// The pre-14 format: an error reported with the step that released it.
#[test]
fn grouped_errors_as_in_read_write_unique_3() {
    let Some((spec, expected)) = corpus_case("read-write-unique-3") else {
        return;
    };
    let serialization =
        "could not serialize access due to read/write dependencies among transactions";
    let script = Script::default()
        .step("rw1", returns(rows(&["insert_unique"], &[&[""]])))
        .step(
            "rw2",
            Behaviour {
                outcome: error(serialization),
                ..released("c1")
            },
        );
    let output = run_all(&spec, &script);
    assert_eq!(expected[0].dialect(), Dialect::PRE_14);
    assert_eq!(render(&output, Dialect::PRE_14), expected[0].text);
}

/// A step seen waiting that completes when waited for (a timeout fired meanwhile).
#[test]
fn a_wait_ended_by_a_timeout_as_in_timeouts() {
    let Some((spec, expected)) = corpus_case("timeouts") else {
        return;
    };
    let script = Script::default()
        .step(
            "rdtbl",
            returns(rows(
                &["accountid", "balance"],
                &[&["checking", "600"], &["savings", "600"]],
            )),
        )
        .step(
            "locktbl",
            Behaviour {
                release: Release::WhenWaitedFor,
                outcome: error("canceling statement due to statement timeout"),
                ..Behaviour::default()
            },
        );
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(drive(&spec, 0, &script).0.log);
    let file = &expected[0];
    assert_eq!(
        render(&output, file.dialect()),
        first_permutations(&file.text, 1)
    );
}

fn hand_made(text: &str) -> Spec {
    Spec::parse(text, "hand.spec").expect("valid")
}

fn printed(spec: &Spec, script: &Script) -> String {
    render(&run_all(spec, script), Dialect::CURRENT)
}

/// `(other notices N)`: the report waits for the other session's notices, counted from
/// the step's launch.
#[test]
fn notices_markers_wait_for_the_count() {
    let spec = hand_made(
        "session a step a1 { SELECT a1(); }\n\
         session b step b1 { SELECT b1(); }\n\
         permutation b1(a1 notices 2) a1",
    );
    let notice = |t: &str| notice_text("NOTICE", t, None, None);
    let script = Script::default().step(
        "a1",
        Behaviour {
            early_notices: vec![notice("one")],
            notices: vec![notice("two")],
            release: Release::WhenWaitedFor,
            ..Behaviour::default()
        },
    );
    assert_eq!(
        printed(&spec, &script),
        "Parsed test spec with 2 sessions\n\nstarting permutation: b1 a1\n\
         step b1: SELECT b1(); <waiting ...>\n\
         a: NOTICE:  one\n\
         step a1: SELECT a1(); <waiting ...>\n\
         a: NOTICE:  two\n\
         step a1: <... completed>\n\
         step b1: <... completed>\n"
    );
    // With one notice enough, b1 is reported as soon as the first one arrives.
    let spec = hand_made(
        "session a step a1 { SELECT a1(); }\n\
         session b step b1 { SELECT b1(); }\n\
         permutation b1(a1 notices 1) a1",
    );
    assert_eq!(
        printed(&spec, &script),
        "Parsed test spec with 2 sessions\n\nstarting permutation: b1 a1\n\
         step b1: SELECT b1(); <waiting ...>\n\
         a: NOTICE:  one\n\
         step a1: SELECT a1(); <waiting ...>\n\
         step b1: <... completed>\n\
         a: NOTICE:  two\n\
         step a1: <... completed>\n"
    );
}

/// A marker that nothing can release ends the permutation as upstream's tester ends.
#[test]
fn a_marker_that_cannot_be_met_ends_the_run() {
    // b1 waits for a lock only a2 releases, but a2 waits behind a1, whose report is
    // held until b1 completes.
    let spec = hand_made(
        "session a step a1 { SELECT 1; } step a2 { COMMIT; }\n\
         session b step b1 { LOCK t; }\n\
         permutation b1 a1(b1) a2",
    );
    let script = Script::default().step("b1", released("a2"));
    let (finished, requests) = drive(&spec, 0, &script);
    assert!(finished.died);
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(finished.log);
    let text = render(&output, Dialect::CURRENT);
    assert!(
        text.ends_with(
            "step b1: LOCK t; <waiting ...>\nstep a1: SELECT 1; <waiting ...>\n\
             step a1 timed out after 720 seconds\nactive steps are: a1 b1\n"
        ),
        "{text}"
    );
    assert!(
        requests < 1000,
        "the driver's bound ended it: {requests} requests"
    );

    // Held reports at the end of the permutation: upstream gives up on them.
    let spec = hand_made(
        "session a step a1 { SELECT 1; }\n\
         session b step b1 { LOCK t; }\n\
         permutation b1 a1(b1)",
    );
    let script = Script::default().step(
        "b1",
        Behaviour {
            release: Release::ByLaunchOf("never"),
            ..Behaviour::default()
        },
    );
    let (finished, _) = drive(&spec, 0, &script);
    assert!(finished.died);
    assert!(matches!(
        finished.log.events.last(),
        Some(PermutationEvent::Diagnostic(line)) if line == "step b1 timed out after 720 seconds"
    ));
}

/// A failing setup ends the run with upstream's message; teardown failures do not.
#[test]
fn block_failures() {
    let spec = hand_made(
        "setup { CREATE TABLE t (); } teardown { DROP TABLE t; }\n\
         session a step a1 { SELECT 1; }\n\
         permutation a1 permutation a1",
    );
    let script = Script {
        failing_block: Some("CREATE"),
        ..Script::default()
    };
    let text = printed(&spec, &script);
    assert_eq!(
        text,
        "Parsed test spec with 1 sessions\n\nstarting permutation: a1\nsetup failed: ERROR:  boom\n"
    );
    let script = Script {
        failing_block: Some("DROP"),
        ..Script::default()
    };
    let text = printed(&spec, &script);
    assert_eq!(
        text.matches("step a1: SELECT 1;\nteardown failed: ERROR:  boom\n")
            .count(),
        2,
        "{text}"
    );
}

/// A session's next step waits for its previous one, polling the others meanwhile.
#[test]
fn a_busy_session_is_waited_for() {
    let spec = hand_made(
        "session a step a1 { LOCK t; } step a2 { SELECT 2; }\n\
         session b step b1 { LOCK u; } step b2 { COMMIT; }\n\
         permutation a1 b1 a2 b2",
    );
    // a1 is seen waiting, and completes only when waited for (before a2 can start).
    let script = Script::default().step(
        "a1",
        Behaviour {
            release: Release::WhenWaitedFor,
            ..Behaviour::default()
        },
    );
    assert_eq!(
        printed(&spec, &script),
        "Parsed test spec with 2 sessions\n\nstarting permutation: a1 b1 a2 b2\n\
         step a1: LOCK t; <waiting ...>\n\
         step b1: LOCK u;\n\
         step a1: <... completed>\n\
         step a2: SELECT 2;\n\
         step b2: COMMIT;\n"
    );
    // An invalid permutation: b1 waits for what only b2, its own session's next step,
    // would release. Upstream waits for b1 until its bound, then dies.
    let script = Script::default()
        .step("a1", released("b1"))
        .step("b1", released("b2"));
    let text = printed(&spec, &script);
    assert!(
        text.ends_with(
            "step a1: <... completed>\nstep a2: SELECT 2;\n\
             step b1 timed out after 720 seconds\nactive steps are: b1\n"
        ),
        "{text}"
    );
}

#[test]
fn answers_must_fit_their_request() {
    let spec = hand_made("session a step a1 { SELECT 1; }");
    let permutation = stormchor_isolation::permutations::permutations(&spec)
        .next()
        .expect("one");
    let mut scheduler = Scheduler::new(&spec, &permutation).expect("valid");
    assert!(matches!(
        scheduler.next_move(),
        Next::Ask(Request::Launch { .. })
    ));
    let err = scheduler.answer(Observation::Settled {
        arrivals: vec![],
        state: StepState::Blocked,
    });
    assert!(matches!(err, Err(ScheduleError::Mismatch { .. })));
    scheduler.answer(Observation::Launched).expect("fits");
    assert_eq!(
        scheduler.next_move(),
        Next::Ask(Request::Settle { session: 0 })
    );
    // Finish may not be answered "blocked".
    let other = hand_made(
        "session a step a1 { SELECT 1; } step a2 { SELECT 2; } session b step b1 {} permutation a1 a2",
    );
    let mut scheduler = Scheduler::new(&other, &other.permutations[0]).expect("valid");
    let answers = [
        Observation::Launched,
        Observation::Settled {
            arrivals: vec![],
            state: StepState::Blocked,
        },
    ];
    for a in answers {
        assert!(matches!(scheduler.next_move(), Next::Ask(_)));
        scheduler.answer(a).expect("fits");
    }
    assert_eq!(
        scheduler.next_move(),
        Next::Ask(Request::Finish { session: 0 })
    );
    assert!(
        scheduler
            .answer(Observation::Settled {
                arrivals: vec![],
                state: StepState::Blocked
            })
            .is_err()
    );
    // An unknown step is refused up front.
    let mut bogus = permutation.clone();
    bogus.steps[0].name = "nope".into();
    assert_eq!(
        Scheduler::new(&spec, &bogus).err(),
        Some(ScheduleError::UnknownStep("nope".into()))
    );
}

/// How the replay's database behaves for one step of a permutation (by position).
#[derive(Clone, Debug, Default)]
struct Replayed {
    /// `None`: at once; `Some(j)`: once the step at position `j` has been launched;
    /// `Some(self)`: only when waited for.
    released_by: Option<usize>,
    outcome: StepOutcome,
    /// Notices, each delivered at the first answer about the step once that many steps
    /// have been launched.
    notices: Vec<(usize, String)>,
}

/// Whether a block's last statement returns rows (what `PQexec` prints).
fn returns_rows(sql: &str) -> bool {
    let last = sql
        .split(';')
        .map(str::trim)
        .rfind(|s| !s.is_empty())
        .unwrap_or("")
        .to_ascii_uppercase();
    ["SELECT", "VALUES", "TABLE", "WITH", "SHOW", "EXPLAIN"]
        .iter()
        .any(|k| last.starts_with(k))
}

/// Derives, from an expected permutation's events, how each step behaved: its result;
/// for a step seen waiting, the launch after which its completion was printed; for each
/// notice, the step that received it and how many launches had happened by then.
fn derive(
    spec: &Spec,
    steps: &[String],
    events: &[PermutationEvent],
) -> (Vec<Replayed>, Vec<ResultSet>) {
    let mut behaviours = vec![Replayed::default(); steps.len()];
    let mut block_rows = Vec::new();
    let mut launched = 0; // positions launched so far
    // Per session name: its step still waiting (position), if any.
    let mut busy: HashMap<String, usize> = HashMap::new();
    // Notices not yet given to a step: per session (None: bare, session unknown).
    let mut pending: Vec<(Option<String>, String)> = Vec::new();
    let session_of = |step: &str| spec.session_of(step).map(|s| spec.sessions[s].name.clone());
    let take = |pending: &mut Vec<(Option<String>, String)>, session: &str| -> Vec<String> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(pending)
            .into_iter()
            .partition(|(s, _)| s.as_deref().is_none_or(|s| s == session));
        *pending = rest;
        mine.into_iter().map(|(_, t)| t).collect()
    };
    for event in events {
        match event {
            PermutationEvent::BlockRows(rows) => block_rows.push(rows.clone()),
            PermutationEvent::Notice { session, text } => {
                match busy.get(session) {
                    // A waiting step of that session received it, by now.
                    Some(&w) => behaviours[w].notices.push((launched, text.clone())),
                    None => {
                        let known = spec.sessions.iter().any(|s| &s.name == session);
                        pending.push((known.then(|| session.clone()), text.clone()));
                    }
                }
            }
            PermutationEvent::Ran { step, .. } | PermutationEvent::Waiting { step, .. } => {
                let k = launched;
                launched += 1;
                let session = session_of(step).unwrap_or_default();
                for text in take(&mut pending, &session) {
                    behaviours[k].notices.push((launched, text));
                }
                match event {
                    PermutationEvent::Ran { outcome, .. } => {
                        behaviours[k].outcome = outcome.clone()
                    }
                    _ => {
                        behaviours[k].released_by = Some(k);
                        busy.insert(session, k);
                    }
                }
            }
            PermutationEvent::Completed { step, outcome } => {
                let session = session_of(step).unwrap_or_default();
                let Some(k) = busy.remove(&session) else {
                    continue;
                };
                for text in take(&mut pending, &session) {
                    behaviours[k].notices.push((launched, text));
                }
                behaviours[k].outcome = outcome.clone();
                behaviours[k].released_by = Some(launched - 1);
            }
            _ => {}
        }
    }
    (behaviours, block_rows)
}

/// Runs one permutation against derived behaviours.
fn replay(
    spec: &Spec,
    permutation: &stormchor_isolation::spec::Permutation,
    behaviours: &[Replayed],
    block_rows: &[ResultSet],
    dialect: Dialect,
) -> Finished {
    let mut scheduler = Scheduler::new(spec, permutation)
        .expect("valid")
        .abandon_invalid_permutations(dialect.abandons_invalid_permutations);
    let mut launched = 0usize;
    let mut active: HashMap<usize, usize> = HashMap::new();
    let mut delivered: Vec<usize> = vec![0; behaviours.len()];
    let mut rows = block_rows.iter();
    let mut since_launch = 0;
    loop {
        let request = match scheduler.next_move() {
            Next::Finished(f) => return f,
            Next::Ask(r) => r,
        };
        since_launch += 1;
        if since_launch > 500 {
            scheduler
                .answer(Observation::TimedOut { seconds: 720 })
                .expect("fits");
            continue;
        }
        let answer = match request {
            Request::Run { sql, .. } => Observation::Ran {
                notices: Vec::new(),
                results: if returns_rows(&sql) {
                    rows.next()
                        .map(|r| vec![StepResult::Rows(r.clone())])
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
                failure: None,
            },
            Request::Launch { session, .. } => {
                active.insert(session, launched);
                launched += 1;
                since_launch = 0;
                Observation::Launched
            }
            Request::Abandon { .. } => Observation::Abandoned,
            Request::Settle { session } | Request::Finish { session } => {
                let waited = matches!(request, Request::Finish { .. });
                let k = active[&session];
                let b = &behaviours[k];
                let done = match b.released_by {
                    None => true,
                    Some(j) if j == k => waited,
                    Some(j) => launched > j,
                };
                let due = b.notices[delivered[k]..]
                    .iter()
                    .take_while(|(after, _)| done || launched >= *after)
                    .count();
                let arrivals = b.notices[delivered[k]..delivered[k] + due]
                    .iter()
                    .map(|(_, t)| Arrival::Notice(t.clone()))
                    .collect();
                delivered[k] += due;
                if done {
                    Observation::Settled {
                        arrivals,
                        state: StepState::Done(b.outcome.clone()),
                    }
                } else if waited {
                    Observation::TimedOut { seconds: 720 }
                } else {
                    Observation::Settled {
                        arrivals,
                        state: StepState::Blocked,
                    }
                }
            }
        };
        scheduler.answer(answer).expect("fits");
    }
}

/// Every permutation of the corpus, replayed: the behaviour of each step is derived
/// from the expected file (its result; for a step seen waiting, after which launch its
/// completion was printed; which step's answer carried each notice), the scheduler
/// decides the rest (launch order, waits, markers, report points, completion order,
/// pre-9.6 abandons), and the printed run must be the file, in one of its dialects.
#[test]
fn the_corpus_replays_through_the_scheduler() {
    let Some(corpus) = common::corpus("the_corpus_replays_through_the_scheduler") else {
        return;
    };
    let (mut files, mut with_markers_or_notices, mut permutations_run) = (0, 0, 0);
    let mut failures = Vec::new();
    for name in common::spec_names(&corpus) {
        let spec = corpus.spec(&name).expect("parses");
        let permutations: Vec<_> = stormchor_isolation::permutations::permutations(&spec).collect();
        let has_markers = permutations
            .iter()
            .any(|p| p.steps.iter().any(|s| !s.blockers.is_empty()));
        for e in corpus.expected(&name).expect("readable") {
            let Ok(read) = common::read::read_expected(&spec, &e.text) else {
                continue;
            };
            let has_notices = read.permutations.iter().any(|p| {
                p.events
                    .iter()
                    .any(|ev| matches!(ev, PermutationEvent::Notice { .. }))
            });
            let mut output = TestOutput {
                unused_steps: read.unused_steps.clone(),
                sessions: read.sessions,
                permutations: Vec::new(),
            };
            for (p, log) in read.permutations.iter().enumerate() {
                let Some(permutation) = permutations.get(p) else {
                    break;
                };
                let (behaviours, rows) = derive(&spec, &log.steps, &log.events);
                let finished = replay(&spec, permutation, &behaviours, &rows, e.dialect());
                permutations_run += 1;
                output.permutations.push(finished.log);
                if finished.died {
                    break;
                }
            }
            let verdict =
                stormchor_isolation::compare::compare_output(&output, std::slice::from_ref(&e));
            let ok = matches!(
                verdict,
                Some(stormchor_isolation::compare::Verdict::Matched { .. })
            );
            let report = || match &verdict {
                Some(stormchor_isolation::compare::Verdict::Differed(m)) => {
                    format!(
                        "{}:\n{}",
                        e.file,
                        m.diff.lines().take(24).collect::<Vec<_>>().join("\n")
                    )
                }
                _ => format!("{}: no verdict", e.file),
            };
            files += 1;
            if has_markers || has_notices {
                with_markers_or_notices += 1;
            }
            if !ok {
                failures.push(report());
            }
        }
    }
    eprintln!(
        "replayed {files} expected files ({with_markers_or_notices} with markers or notices), \
         {permutations_run} permutations: {} differ",
        failures.len()
    );
    assert!(files > 0 && with_markers_or_notices > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Testers before 9.6: a step whose session still waits ends the permutation.
#[test]
fn pre_9_6_testers_abandon_invalid_permutations() {
    let spec = hand_made(
        "teardown { DROP TABLE t; }\n\
         session a setup { BEGIN; } step a1 { LOCK t; } step a2 { COMMIT; } teardown { SELECT 1; }\n\
         session b setup { BEGIN; } step b1 { LOCK t; } step b2 { COMMIT; }\n\
         permutation a1 b1 b2 a2",
    );
    let mut scheduler = Scheduler::new(&spec, &spec.permutations[0])
        .expect("valid")
        .abandon_invalid_permutations(true);
    let mut requests = Vec::new();
    let finished = loop {
        let request = match scheduler.next_move() {
            Next::Finished(f) => break f,
            Next::Ask(r) => r,
        };
        let answer = match &request {
            Request::Run { .. } => Observation::Ran {
                notices: vec![],
                results: vec![],
                failure: None,
            },
            Request::Launch { .. } => Observation::Launched,
            Request::Abandon { .. } => Observation::Abandoned,
            // b1 waits for a's lock: a2 never comes.
            Request::Settle { session: 1 } => Observation::Settled {
                arrivals: vec![],
                state: StepState::Blocked,
            },
            Request::Settle { .. } | Request::Finish { .. } => Observation::Settled {
                arrivals: vec![],
                state: StepState::Done(StepOutcome::default()),
            },
        };
        requests.push(request);
        scheduler.answer(answer).expect("fits");
    };
    assert!(!finished.died);
    let mut output = TestOutput::for_spec(&spec);
    output.permutations.push(finished.log);
    assert_eq!(
        render(&output, Dialect::CURRENT),
        "Parsed test spec with 2 sessions\n\nstarting permutation: a1 b1 b2 a2\n\
         step a1: LOCK t;\nstep b1: LOCK t; <waiting ...>\ninvalid permutation detected\n"
    );
    let tail: Vec<&Request> = requests.iter().rev().take(5).rev().collect();
    let run = |connection, sql: &str| Request::Run {
        connection,
        sql: sql.to_string(),
    };
    use stormchor_isolation::schedule::Connection::{Control, Session};
    assert_eq!(
        tail,
        [
            &Request::Abandon { session: 1 },
            &run(Session(0), "ROLLBACK"),
            &run(Session(1), "ROLLBACK"),
            &run(Session(0), "SELECT 1;"),
            &run(Control, "DROP TABLE t;"),
        ]
    );
    // Today's tester waits for b1 instead (and the driver's bound ends it).
    let script = Script::default().step("b1", released("a2"));
    let text = printed(&spec, &script);
    assert!(!text.contains("invalid permutation"), "{text}");
    assert!(
        text.contains("step b1 timed out after 720 seconds"),
        "{text}"
    );
}
