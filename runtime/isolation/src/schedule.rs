//! isolationtester's run of one permutation, as a state machine without I/O: it asks
//! its driver to act ([`Request`]), is told what happened ([`Observation`]), and
//! records the [`PermutationLog`] isolationtester would print.
//!
//! It follows upstream's `run_permutation` (see `docs/isolation-suite.md`): main and
//! session setups; for each step, first wait for the session's previous step if it is
//! still active (polling the other waiting steps meanwhile), then launch it and try to
//! complete it without blocking, then poll the waiting steps; at the end complete the
//! waiting steps in order; then the teardowns. Markers delay only the report of a
//! completion. The pre-14 report points ([`PermutationEvent::ReportErrors`]) are
//! recorded where that tester reported errors, so the log prints in both dialects.
//!
//! The driver owns connections and time:
//!
//! - [`Request::Run`]: run a setup or teardown block to its end, on the control
//!   connection or a session's; answer [`Observation::Ran`].
//! - [`Request::Launch`]: send a step's SQL on its session, without waiting; answer
//!   [`Observation::Launched`].
//! - [`Request::Settle`]: wait until the session's active step has its result, or is
//!   seen blocked (upstream: every 10 ms, `pg_isolation_test_session_is_blocked`; on
//!   `t`, read once more and prefer a result that arrived); answer
//!   [`Observation::Settled`] with [`StepState::Done`] or [`StepState::Blocked`].
//! - [`Request::Finish`]: wait until the session's active step has its result (no
//!   blocked check); answer [`Observation::Settled`] with [`StepState::Done`].
//!
//! Notices a session received since the last answer about it go in the answer's
//! `arrivals`, in order, with any cancellation the driver sent after its step bound
//! (upstream cancels after `max_step_wait`). A driver that gives up waiting answers
//! [`Observation::TimedOut`] to any request: the run ends as upstream's tester dies.
//!
//! The scheduler replays its decisions from the answers so far each time it is asked
//! for the next request (the number of requests per permutation is small), which keeps
//! the code a plain transcription of upstream's loops.
//!
//! # Example
//! ```
//! use stormchor_isolation::output::{render, Dialect, StepOutcome, TestOutput};
//! use stormchor_isolation::schedule::{Next, Observation, Request, Scheduler, StepState};
//! use stormchor_isolation::spec::Spec;
//!
//! let spec = Spec::parse(
//!     "session a step la { LOCK t; } step ca { COMMIT; }\n\
//!      session b step lb { LOCK t; }\n\
//!      permutation la lb ca",
//!     "x.spec",
//! )?;
//! let mut scheduler = Scheduler::new(&spec, &spec.permutations[0])?;
//! let mut launched = Vec::new();
//! let finished = loop {
//!     let answer = match scheduler.next_move() {
//!         Next::Finished(finished) => break finished,
//!         Next::Ask(Request::Launch { step, .. }) => {
//!             launched.push(step);
//!             Observation::Launched
//!         }
//!         // `lb` waits for the lock until `ca` has been launched.
//!         Next::Ask(Request::Settle { session: 1 }) if !launched.iter().any(|s| s == "ca") => {
//!             Observation::Settled { arrivals: vec![], state: StepState::Blocked }
//!         }
//!         Next::Ask(_) => Observation::Settled {
//!             arrivals: vec![],
//!             state: StepState::Done(StepOutcome::default()),
//!         },
//!     };
//!     scheduler.answer(answer)?;
//! };
//! let mut output = TestOutput::for_spec(&spec);
//! output.permutations.push(finished.log);
//! assert!(render(&output, Dialect::CURRENT).ends_with(
//!     "step la: LOCK t;\nstep lb: LOCK t; <waiting ...>\nstep ca: COMMIT;\nstep lb: <... completed>\n"
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::output::{PermutationEvent, PermutationLog, StepOutcome, StepResult};
use crate::spec::{Blocker, Permutation, Spec};

/// Which connection a block runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The control connection (main setup and teardown; its notices are discarded).
    Control,
    /// A session's connection (by index in the spec).
    Session(usize),
}

/// What the scheduler asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Run a setup or teardown block to its end.
    Run {
        /// Where.
        connection: Connection,
        /// The block's SQL (one submission).
        sql: String,
    },
    /// Send a step's SQL on its session's connection, without waiting.
    Launch {
        /// The session (by index).
        session: usize,
        /// The step's name.
        step: String,
        /// Its SQL (one submission).
        sql: String,
    },
    /// Wait until the session's active step has its result, or is seen blocked.
    Settle {
        /// The session (by index).
        session: usize,
    },
    /// Wait until the session's active step has its result.
    Finish {
        /// The session (by index).
        session: usize,
    },
    /// Cancel the session's active step and wait for it to end; what it returns is not
    /// printed (only with [`Scheduler::abandon_invalid_permutations`]).
    Abandon {
        /// The session (by index).
        session: usize,
    },
}

/// Something that reached a session's connection while the driver waited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// A notice, as libpq formats it (see [`crate::output::notice_text`]).
    Notice(String),
    /// The driver cancelled the step after this many seconds.
    Cancelled {
        /// Seconds waited.
        seconds: u64,
    },
}

/// Where a step stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Seen waiting on another session (only as an answer to [`Request::Settle`]).
    Blocked,
    /// Its result arrived.
    Done(StepOutcome),
}

/// What the driver tells the scheduler, answering its last request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A block ran ([`Request::Run`]).
    Ran {
        /// Notices received (printed for session connections only).
        notices: Vec<String>,
        /// What libpq's `PQexec` returns, which upstream prints: the result of the
        /// block's *last* statement only (rows are printed; give none if it returned
        /// none).
        results: Vec<StepResult>,
        /// libpq's error message if the block failed (`ERROR:  ...\n`).
        failure: Option<String>,
    },
    /// The step was sent ([`Request::Launch`]).
    Launched,
    /// The session's active step settled ([`Request::Settle`], [`Request::Finish`]).
    Settled {
        /// What arrived meanwhile, in order.
        arrivals: Vec<Arrival>,
        /// Where the step stands.
        state: StepState,
    },
    /// The step was cancelled and has ended ([`Request::Abandon`]).
    Abandoned,
    /// The driver gave up waiting after this many seconds.
    TimedOut {
        /// Seconds waited.
        seconds: u64,
    },
}

/// A permutation run to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// What isolationtester prints for it.
    pub log: PermutationLog,
    /// Whether upstream's tester would have exited here (failed setup, a step that
    /// never completed): no later permutation runs.
    pub died: bool,
}

/// The scheduler's next move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Do this, then [`Scheduler::answer`].
    Ask(Request),
    /// The permutation is over.
    Finished(Finished),
}

/// A driver or permutation the scheduler cannot go on with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The permutation names a step that no session of the spec defines.
    #[error("permutation step {0:?} is not a step of the spec")]
    UnknownStep(String),
    /// An answer that does not fit the request.
    #[error("answer {observation:?} does not fit request {request:?}")]
    Mismatch {
        /// The request.
        request: Option<Request>,
        /// The answer.
        observation: Box<Observation>,
    },
}

/// A permutation step resolved against the spec.
#[derive(Clone, Debug)]
struct Planned {
    name: String,
    sql: String,
    session: usize,
    blockers: Vec<Blocker>,
}

/// The spec a scheduler reads: borrowed, or shared (a scheduler that outlives the
/// caller's borrow, as a choreography's controller keeps it across its effects).
#[derive(Clone, Debug)]
enum SpecRef<'a> {
    Borrowed(&'a Spec),
    Shared(std::sync::Arc<Spec>),
}

impl std::ops::Deref for SpecRef<'_> {
    type Target = Spec;
    fn deref(&self) -> &Spec {
        match self {
            SpecRef::Borrowed(spec) => spec,
            SpecRef::Shared(spec) => spec,
        }
    }
}

/// The scheduler of one permutation.
#[derive(Clone, Debug)]
pub struct Scheduler<'a> {
    spec: SpecRef<'a>,
    plan: Vec<Planned>,
    answers: Vec<Observation>,
    pending: Option<Request>,
    max_step_wait: u64,
    abandon_invalid: bool,
}

impl<'a> Scheduler<'a> {
    /// A scheduler for `permutation` of `spec`.
    pub fn new(spec: &'a Spec, permutation: &Permutation) -> Result<Self, ScheduleError> {
        Self::over(SpecRef::Borrowed(spec), permutation)
    }

    fn over(spec: SpecRef<'a>, permutation: &Permutation) -> Result<Self, ScheduleError> {
        let plan = permutation
            .steps
            .iter()
            .map(|ps| {
                let session = spec
                    .session_of(&ps.name)
                    .ok_or_else(|| ScheduleError::UnknownStep(ps.name.clone()))?;
                let sql = spec
                    .step(&ps.name)
                    .map(|s| s.sql.clone())
                    .unwrap_or_default();
                for b in &ps.blockers {
                    if let Some(name) = b.step_name() {
                        if spec.session_of(name).is_none() {
                            return Err(ScheduleError::UnknownStep(name.to_string()));
                        }
                    }
                }
                Ok(Planned {
                    name: ps.name.clone(),
                    sql,
                    session,
                    blockers: ps.blockers.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scheduler {
            spec,
            plan,
            answers: Vec::new(),
            pending: None,
            max_step_wait: 360,
            abandon_invalid: false,
        })
    }

    /// A scheduler for `permutation` of a shared `spec`, which it keeps (no borrow):
    /// the same decisions as [`Scheduler::new`].
    pub fn shared(
        spec: std::sync::Arc<Spec>,
        permutation: &Permutation,
    ) -> Result<Scheduler<'static>, ScheduleError> {
        Scheduler::over(SpecRef::Shared(spec), permutation)
    }

    /// Behaves as testers before 9.6 (for expected files of that age, see
    /// [`crate::output::Dialect::abandons_invalid_permutations`]): when the next step's
    /// session is still waiting, print `invalid permutation detected`, cancel the
    /// waiting step ([`Request::Abandon`]), roll back every session (a `ROLLBACK` block
    /// each, its results not printed) and go on with the teardowns.
    pub fn abandon_invalid_permutations(mut self, yes: bool) -> Self {
        self.abandon_invalid = yes;
        self
    }

    /// Sets upstream's `max_step_wait` in seconds (default 360: twice
    /// `PG_TEST_TIMEOUT_DEFAULT`), used only to word the report of a wait that can never
    /// end (a step held by a marker that nothing can release: upstream spins until twice
    /// this bound, then dies).
    pub fn with_max_step_wait(mut self, seconds: u64) -> Self {
        self.max_step_wait = seconds;
        self
    }

    /// The next request, or the finished run.
    pub fn next_move(&mut self) -> Next {
        let mut run = Run::new(&self.spec, &self.plan, &self.answers);
        run.max_step_wait = self.max_step_wait;
        run.abandon_invalid = self.abandon_invalid;
        match run.permutation() {
            Ok(()) => {
                self.pending = None;
                Next::Finished(Finished {
                    log: run.log,
                    died: false,
                })
            }
            Err(Stop::Died | Stop::TimedOut(..)) => {
                self.pending = None;
                Next::Finished(Finished {
                    log: run.log,
                    died: true,
                })
            }
            Err(Stop::Ask(request)) => {
                self.pending = Some(request.clone());
                Next::Ask(request)
            }
        }
    }

    /// Answers the request [`Scheduler::next_move`] returned.
    pub fn answer(&mut self, observation: Observation) -> Result<(), ScheduleError> {
        let fits = match (&self.pending, &observation) {
            (_, Observation::TimedOut { .. }) => self.pending.is_some(),
            (Some(Request::Run { .. }), Observation::Ran { .. }) => true,
            (Some(Request::Launch { .. }), Observation::Launched) => true,
            (Some(Request::Abandon { .. }), Observation::Abandoned) => true,
            (
                Some(Request::Settle { .. }),
                Observation::Settled {
                    state: StepState::Blocked | StepState::Done(_),
                    ..
                },
            ) => true,
            (
                Some(Request::Finish { .. }),
                Observation::Settled {
                    state: StepState::Done(_),
                    ..
                },
            ) => true,
            _ => false,
        };
        if !fits {
            return Err(ScheduleError::Mismatch {
                request: self.pending.clone(),
                observation: Box::new(observation),
            });
        }
        self.pending = None;
        self.answers.push(observation);
        Ok(())
    }
}

/// Why a replay stopped before the end.
enum Stop {
    /// It needs the answer to this request.
    Ask(Request),
    /// The driver gave up waiting for step `.1` after `.0` seconds.
    TimedOut(u64, usize),
    /// The tester would have exited.
    Died,
}

/// How a step is being completed (upstream's `STEP_NONBLOCK` / `STEP_RETRY`).
#[derive(Clone, Copy)]
struct Flags {
    nonblock: bool,
    retry: bool,
}

/// One replay of the permutation over the answers so far.
struct Run<'s> {
    spec: &'s Spec,
    plan: &'s [Planned],
    answers: &'s [Observation],
    used: usize,
    log: PermutationLog,
    /// Each session's active step (index in `plan`).
    active: Vec<Option<usize>>,
    /// Each session's notice count.
    notices: Vec<usize>,
    /// For each step, the notice count each of its `notices` markers waits for.
    targets: Vec<Vec<usize>>,
    /// Results received but not yet reported (a marker holds them).
    results: Vec<Option<StepOutcome>>,
    waiting: Vec<usize>,
    any_new_notice: bool,
    max_step_wait: u64,
    abandon_invalid: bool,
}

impl<'s> Run<'s> {
    fn new(spec: &'s Spec, plan: &'s [Planned], answers: &'s [Observation]) -> Self {
        Run {
            spec,
            plan,
            answers,
            used: 0,
            log: PermutationLog {
                steps: plan.iter().map(|p| p.name.clone()).collect(),
                events: Vec::new(),
            },
            active: vec![None; spec.sessions.len()],
            notices: vec![0; spec.sessions.len()],
            targets: vec![Vec::new(); plan.len()],
            results: vec![None; plan.len()],
            waiting: Vec::new(),
            any_new_notice: false,
            max_step_wait: 360,
            abandon_invalid: false,
        }
    }

    fn ask(&mut self, request: Request) -> Result<&'s Observation, Stop> {
        match self.answers.get(self.used) {
            Some(answer) => {
                self.used += 1;
                Ok(answer)
            }
            None => Err(Stop::Ask(request)),
        }
    }

    fn emit(&mut self, event: PermutationEvent) {
        self.log.events.push(event);
    }

    fn die(&mut self, line: String) -> Stop {
        self.emit(PermutationEvent::Diagnostic(line));
        Stop::Died
    }

    /// Runs a setup or teardown block.
    fn block(
        &mut self,
        connection: Connection,
        sql: &str,
        failed: &str,
        fatal: bool,
    ) -> Result<(), Stop> {
        let answer = self.ask(Request::Run {
            connection,
            sql: sql.to_string(),
        })?;
        let Observation::Ran {
            notices,
            results,
            failure,
        } = answer
        else {
            let seconds = timed_out(answer);
            return Err(self.die(format!("{failed}: timed out after {seconds} seconds")));
        };
        if let Connection::Session(s) = connection {
            let session = self.spec.sessions[s].name.clone();
            for text in notices {
                self.emit(PermutationEvent::Notice {
                    session: session.clone(),
                    text: text.clone(),
                });
            }
        }
        for result in results {
            if let StepResult::Rows(rows) = result {
                self.emit(PermutationEvent::BlockRows(rows.clone()));
            }
        }
        if let Some(message) = failure {
            let line = format!("{failed}: {}", message.trim_end_matches('\n'));
            if fatal {
                return Err(self.die(line));
            }
            self.emit(PermutationEvent::Diagnostic(line));
        }
        Ok(())
    }

    fn permutation(&mut self) -> Result<(), Stop> {
        for setup in &self.spec.setups {
            self.block(Connection::Control, &setup.sql, "setup failed", true)?;
        }
        for (s, session) in self.spec.sessions.iter().enumerate() {
            if let Some(setup) = &session.setup {
                let failed = format!("setup of session {} failed", session.name);
                self.block(Connection::Session(s), &setup.sql, &failed, true)?;
            }
        }
        let mut abandoned = false;
        for i in 0..self.plan.len() {
            if self.abandon_invalid && self.busy_waiting(i) {
                self.abandon(i)?;
                abandoned = true;
                break;
            }
            self.step(i)?;
        }
        if !abandoned {
            // Wait for the remaining steps, each in turn.
            let end = Flags {
                nonblock: false,
                retry: true,
            };
            if let Err(stop) = self.complete_waiting(end, true) {
                return Err(self.timed_out_step(stop));
            }
            if !self.waiting.is_empty() {
                let line = "failed to complete permutation due to mutually-blocking steps";
                return Err(self.die(line.to_string()));
            }
        }
        for (s, session) in self.spec.sessions.iter().enumerate() {
            if let Some(teardown) = &session.teardown {
                let failed = format!("teardown of session {} failed", session.name);
                self.block(Connection::Session(s), &teardown.sql, &failed, false)?;
            }
        }
        if let Some(teardown) = &self.spec.teardown {
            self.block(Connection::Control, &teardown.sql, "teardown failed", false)?;
        }
        Ok(())
    }

    /// Whether step `i`'s session is still busy with a step seen waiting.
    fn busy_waiting(&self, i: usize) -> bool {
        self.active[self.plan[i].session].is_some_and(|a| self.waiting.contains(&a))
    }

    /// The pre-9.6 end of an invalid permutation.
    fn abandon(&mut self, i: usize) -> Result<(), Stop> {
        let session = self.plan[i].session;
        self.emit(PermutationEvent::Diagnostic(
            "invalid permutation detected".to_string(),
        ));
        let answer = self.ask(Request::Abandon { session })?;
        if let Observation::TimedOut { seconds } = answer {
            return Err(self.session_wait_died(i, *seconds));
        }
        for s in 0..self.spec.sessions.len() {
            let answer = self.ask(Request::Run {
                connection: Connection::Session(s),
                sql: "ROLLBACK".to_string(),
            })?;
            // Only notices show (libpq printed them); results and errors are dropped.
            if let Observation::Ran { notices, .. } = answer {
                let name = self.spec.sessions[s].name.clone();
                for text in notices {
                    self.emit(PermutationEvent::Notice {
                        session: name.clone(),
                        text: text.clone(),
                    });
                }
            }
        }
        self.active.iter_mut().for_each(|a| *a = None);
        self.waiting.clear();
        Ok(())
    }

    fn step(&mut self, i: usize) -> Result<(), Stop> {
        let session = self.plan[i].session;
        // The session is still busy with an earlier step: wait for it.
        while let Some(old) = self.active[session] {
            let answers_before = self.used;
            let events_before = self.log.events.len();
            match self.wait_round(old) {
                Ok(()) => {}
                Err(Stop::TimedOut(seconds, _)) => {
                    return Err(self.session_wait_died(old, seconds));
                }
                Err(other) => return Err(other),
            }
            // Nothing asked, nothing printed: the next round would be the same, so upstream
            // would spin until its bound (twice max_step_wait) and die.
            if self.active[session] == Some(old)
                && self.used == answers_before
                && self.log.events.len() == events_before
            {
                let seconds = 2 * self.max_step_wait;
                return Err(self.session_wait_died(old, seconds));
            }
        }
        let answer = self.ask(Request::Launch {
            session,
            step: self.plan[i].name.clone(),
            sql: self.plan[i].sql.clone(),
        })?;
        if let Observation::TimedOut { seconds } = answer {
            let name = self.plan[i].name.clone();
            return Err(self.die(format!(
                "failed to send query for step {name}: timed out after {seconds} seconds"
            )));
        }
        self.active[session] = Some(i);
        self.targets[i] = self.plan[i]
            .blockers
            .iter()
            .map(|b| match b {
                Blocker::Notices { name, count, .. } => {
                    let other = self.spec.session_of(name).unwrap_or(session);
                    *count as usize + self.notices[other]
                }
                _ => 0,
            })
            .collect();
        let launched = self.try_complete(
            i,
            Flags {
                nonblock: true,
                retry: false,
            },
        );
        let must_wait = launched.map_err(|stop| self.timed_out_step(stop))?;
        let polled = self.complete_waiting(
            Flags {
                nonblock: true,
                retry: true,
            },
            false,
        );
        let unblocked = polled.map_err(|stop| self.timed_out_step(stop))?;
        self.report(i, &unblocked);
        if must_wait {
            self.waiting.push(i);
        }
        Ok(())
    }

    /// One round of waiting for `old`, the active step of the next step's session.
    fn wait_round(&mut self, old: usize) -> Result<(), Stop> {
        let old_done = !self.try_complete(
            old,
            Flags {
                nonblock: false,
                retry: true,
            },
        )?;
        if old_done {
            self.waiting.retain(|&w| w != old);
        }
        let unblocked = self.complete_waiting(
            Flags {
                nonblock: true,
                retry: true,
            },
            false,
        )?;
        match (old_done, unblocked.split_first()) {
            (true, _) => self.report(old, &unblocked),
            (false, Some((first, rest))) => self.report(*first, rest),
            (false, None) => {}
        }
        Ok(())
    }

    /// Upstream's lines when waiting for a session's previous step exceeds its bound.
    fn session_wait_died(&mut self, old: usize, seconds: u64) -> Stop {
        let name = self.plan[old].name.clone();
        let active: String = self
            .active
            .iter()
            .flatten()
            .map(|&a| format!(" {}", self.plan[a].name))
            .collect();
        self.emit(PermutationEvent::Diagnostic(format!(
            "step {name} timed out after {seconds} seconds"
        )));
        self.die(format!("active steps are:{active}"))
    }

    /// Upstream's line when a step's own wait exceeds its bound.
    fn timed_out_step(&mut self, stop: Stop) -> Stop {
        match stop {
            Stop::TimedOut(seconds, step) => {
                let name = self.plan[step].name.clone();
                self.die(format!("step {name} timed out after {seconds} seconds"))
            }
            other => other,
        }
    }

    fn report(&mut self, lead: usize, unblocked: &[usize]) {
        let event = PermutationEvent::ReportErrors {
            lead: self.plan[lead].name.clone(),
            unblocked: unblocked
                .iter()
                .map(|&u| self.plan[u].name.clone())
                .collect(),
        };
        self.emit(event);
    }

    /// Upstream's `try_complete_steps`: tries each waiting step; repeats while a step
    /// still waiting has markers and the last pass completed a step or saw a notice.
    /// Returns the steps completed, in order. With `report_each`, records a report
    /// point after each completion (the end of a permutation).
    fn complete_waiting(&mut self, flags: Flags, report_each: bool) -> Result<Vec<usize>, Stop> {
        let mut completed = Vec::new();
        loop {
            self.any_new_notice = false;
            let before = self.waiting.len();
            let mut have_blocker = false;
            let mut w = 0;
            while w < self.waiting.len() {
                let step = self.waiting[w];
                if self.try_complete(step, flags)? {
                    if !self.plan[step].blockers.is_empty() {
                        have_blocker = true;
                    }
                    w += 1;
                } else {
                    self.waiting.remove(w);
                    completed.push(step);
                    if report_each {
                        self.report(step, &[]);
                    }
                }
            }
            if !(have_blocker && (self.waiting.len() < before || self.any_new_notice)) {
                return Ok(completed);
            }
        }
    }

    /// Upstream's `try_complete_step`: `Ok(true)` if the step is not (reported)
    /// complete yet.
    fn try_complete(&mut self, i: usize, flags: Flags) -> Result<bool, Stop> {
        let session = self.plan[i].session;
        if !flags.retry
            && self.plan[i]
                .blockers
                .iter()
                .any(|b| matches!(b, Blocker::Once { .. }))
        {
            self.waiting_line(i);
            return Ok(true);
        }
        if self.results[i].is_none() {
            let request = if flags.nonblock {
                Request::Settle { session }
            } else {
                Request::Finish { session }
            };
            let answer = self.ask(request)?;
            let (arrivals, state) = match answer {
                Observation::Settled { arrivals, state } => (arrivals, state),
                other => return Err(Stop::TimedOut(timed_out(other), i)),
            };
            for arrival in arrivals {
                match arrival {
                    Arrival::Notice(text) => {
                        self.notices[session] += 1;
                        self.any_new_notice = true;
                        self.emit(PermutationEvent::Notice {
                            session: self.spec.sessions[session].name.clone(),
                            text: text.clone(),
                        });
                    }
                    Arrival::Cancelled { seconds } => self.emit(PermutationEvent::Cancelled {
                        step: self.plan[i].name.clone(),
                        seconds: *seconds,
                    }),
                }
            }
            match state {
                StepState::Blocked => {
                    if !flags.retry {
                        self.waiting_line(i);
                    }
                    return Ok(true);
                }
                StepState::Done(outcome) => self.results[i] = Some(outcome.clone()),
            }
        }
        if self.has_blocker(i) {
            if !flags.retry {
                self.waiting_line(i);
            }
            return Ok(true);
        }
        let outcome = self.results[i].take().unwrap_or_default();
        let step = self.plan[i].name.clone();
        if flags.retry {
            self.emit(PermutationEvent::Completed { step, outcome });
        } else {
            let sql = self.plan[i].sql.clone();
            self.emit(PermutationEvent::Ran { step, sql, outcome });
        }
        self.active[session] = None;
        Ok(false)
    }

    fn waiting_line(&mut self, i: usize) {
        let event = PermutationEvent::Waiting {
            step: self.plan[i].name.clone(),
            sql: self.plan[i].sql.clone(),
        };
        self.emit(event);
    }

    /// Whether a marker still holds step `i`'s report.
    fn has_blocker(&self, i: usize) -> bool {
        self.plan[i]
            .blockers
            .iter()
            .enumerate()
            .any(|(k, b)| match b {
                Blocker::Once { .. } => false,
                Blocker::Step { name, .. } => self
                    .spec
                    .session_of(name)
                    .and_then(|s| self.active[s])
                    .is_some_and(|a| self.plan[a].name == *name),
                Blocker::Notices { name, .. } => self.spec.session_of(name).is_some_and(|s| {
                    self.notices[s] < self.targets[i].get(k).copied().unwrap_or(0)
                }),
            })
    }
}

fn timed_out(observation: &Observation) -> u64 {
    match observation {
        Observation::TimedOut { seconds } => *seconds,
        _ => 0,
    }
}
