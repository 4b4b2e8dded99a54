//! Running a parsed spec on a real server: isolationtester's driver, as the controller
//! of a choreography.
//!
//! The decisions (what to launch, what prints `<waiting ...>`, markers) are the
//! [`Scheduler`](crate::schedule::Scheduler)'s. A spec runs as a stormchor choreography ([`crate::choreo`]): one
//! role per session runs its blocks and steps as effects (a step is an effect that
//! starts now and finishes later), and the controller role answers the scheduler's
//! other requests here ([`Controller`]): it watches each session's connection through
//! [`Session`] (is the step's result in, what arrived, cancel it) and asks the server
//! whether a session waits on another ([`Control::is_blocked`], upstream's
//! `pg_isolation_test_session_is_blocked`). [`pg`] implements both over tokio-postgres.
//!
//! As upstream, the connections are opened once per spec and kept across its
//! permutations.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use stormchor_isolation::driver::{run_spec_on, RunOptions};
//! use stormchor_isolation::output::{render, Dialect};
//! use stormchor_isolation::spec::Spec;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = Spec::parse(
//!     "session s1 step a { SELECT 1 AS one; }\nsession s2 step b { SELECT 2 AS two; }",
//!     "mini.spec",
//! )?;
//! let options = RunOptions { step_timeout: Duration::from_secs(60), ..RunOptions::default() };
//! let run = run_spec_on("host=127.0.0.1 user=postgres", "mini", &spec, &options).await?;
//! print!("{}", render(&run.output, Dialect::CURRENT));
//! # Ok(()) }
//! ```

pub mod pg;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::output::{Notification, StepOutcome, StepResult, TestOutput};
use crate::schedule::{Arrival, Connection, Observation, Request, ScheduleError, StepState};
use crate::spec::Spec;

/// An error the server sent, kept to judge whether a spec needs a newer server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// When it arrived (to order errors of several connections).
    pub at: Instant,
    /// Its SQLSTATE.
    pub code: String,
    /// `SEVERITY:  message`, as a step's error prints.
    pub text: String,
    /// The SQL that failed.
    pub sql: String,
    /// Whether it was a setup or teardown block's (not a step's).
    pub in_block: bool,
}

/// A `NOTIFY` a connection received, before its sender is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawNotification {
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
    /// The sending backend's pid.
    pub pid: i32,
}

/// What a setup or teardown block returned (see [`Observation::Ran`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockRun {
    /// The result of the block's last statement, if it returned rows or failed.
    pub results: Vec<StepResult>,
    /// libpq's error message if the block failed.
    pub failure: Option<String>,
}

/// The controller's view of one session's connection: the SQL runs in the session
/// role's effects; the controller waits (boundedly) for a step's results, cancels it,
/// and takes what else arrived. No method blocks the thread.
pub trait Session {
    /// The session's name (`control connection` for the control one).
    fn name(&self) -> &str;
    /// Its backend's pid.
    fn pid(&self) -> i32;
    /// Waits at most `within` for the launched step's results (every result of the
    /// submission, in order; the first error ends it). `None`: not yet.
    fn wait(&mut self, within: Duration) -> impl Future<Output = Option<Vec<StepResult>>> + Send;
    /// Asks the server to cancel the launched step (it then ends with an error).
    fn cancel(&mut self) -> impl Future<Output = ()> + Send;
    /// The notices received since the last call, as libpq prints them.
    fn take_notices(&mut self) -> Vec<String>;
    /// The notifications received since the last call.
    fn take_notifications(&mut self) -> Vec<RawNotification>;
    /// The server errors seen since the last call.
    fn take_errors(&mut self) -> Vec<ServerError>;
}

/// The control connection, the controller's own: it runs the main setup and teardown
/// blocks and tells whether a session's backend waits on another session's.
pub trait Control: Session {
    /// Runs a block to its end (one simple-query submission).
    fn run(&mut self, sql: &str) -> impl Future<Output = BlockRun> + Send;
    /// Whether backend `pid` waits for a lock held or awaited by one of `pids` (or for
    /// a safe snapshot): upstream's `pg_isolation_test_session_is_blocked`.
    fn is_blocked(
        &mut self,
        pid: i32,
        pids: &[i32],
    ) -> impl Future<Output = Result<bool, DriverError>> + Send;
}

/// How a spec is run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Upstream's `max_step_wait`: a step still running after it is cancelled; after
    /// twice it the run stops as upstream's tester dies.
    pub step_timeout: Duration,
    /// Behave as testers before 9.6 on invalid permutations (see
    /// [`Scheduler::abandon_invalid_permutations`](crate::schedule::Scheduler::abandon_invalid_permutations)).
    pub abandon_invalid_permutations: bool,
    /// Run every connection with `client_min_messages = warning`, as testers before
    /// PostgreSQL 14 did (their expected files show no notices, only warnings).
    pub quiet_notices: bool,
    /// How often a running step is checked for being blocked (upstream: 10 ms).
    pub poll_interval: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            step_timeout: Duration::from_secs(360),
            abandon_invalid_permutations: false,
            quiet_notices: false,
            poll_interval: Duration::from_millis(10),
        }
    }
}

/// A spec run to its end (or to where upstream's tester would have died).
#[derive(Clone, Debug)]
pub struct SpecRun {
    /// What isolationtester prints.
    pub output: TestOutput,
    /// Every error the server sent, in order of arrival.
    pub errors: Vec<ServerError>,
    /// Whether the run stopped early, as upstream's tester exits.
    pub died: bool,
}

/// Why a spec could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A connection could not be opened.
    #[error("cannot connect {who}: {source}")]
    Connect {
        /// The session, or `control connection`.
        who: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// The connection string is not valid.
    #[error("invalid connection string: {0}")]
    ConnectionString(tokio_postgres::Error),
    /// A query of the driver's own failed.
    #[error("{what}: {source}")]
    Query {
        /// What the driver was doing.
        what: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// A wait of the driver's own exceeded its bound.
    #[error("timed out {what}")]
    Timeout {
        /// What the driver was doing.
        what: String,
    },
    /// The scheduler refused an answer (a driver bug).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The spec's choreography did not project, or a role of it failed.
    #[error("the spec's choreography: {0}")]
    Choreography(String),
}

/// Connects (control connection plus one per session, application names
/// `isolation/NAME/SESSION`) to the server of `conninfo` and runs `spec` there, as a
/// choreography ([`crate::choreo::run_spec`]).
pub async fn run_spec_on(
    conninfo: &str,
    name: &str,
    spec: &Spec,
    options: &RunOptions,
) -> Result<SpecRun, DriverError> {
    let quiet = options.quiet_notices;
    let mut control = pg::PgControl::connect(conninfo, name, quiet).await?;
    let mut lines = Vec::with_capacity(spec.sessions.len());
    for session in &spec.sessions {
        lines.push(Arc::new(
            pg::PgLine::connect(conninfo, name, &session.name, quiet).await?,
        ));
    }
    let pids: Vec<i32> = lines.iter().map(|line| line.pid()).collect();
    control.prepare_blocked_check(&pids).await?;
    crate::choreo::run_spec(spec, control, lines, options).await
}

/// A launched step's clock: when it was sent, whether it was cancelled.
#[derive(Clone, Copy, Debug)]
struct Launch {
    at: Instant,
    cancelled: bool,
}

/// The controller's part of isolationtester's driver: it answers the scheduler's
/// requests that are its own (a block on the control connection, waiting for a step's
/// result or a blocked verdict, abandoning a step) over the connections it watches.
/// Launching a step and running a session's block are the session roles' effects.
pub(crate) struct Controller<C, S> {
    control: C,
    sessions: Vec<S>,
    options: RunOptions,
    launched: Vec<Option<Launch>>,
}

impl<C: Control, S: Session> Controller<C, S> {
    pub(crate) fn new(control: C, sessions: Vec<S>, options: RunOptions) -> Self {
        let launched = vec![None; sessions.len()];
        Controller {
            control,
            sessions,
            options,
            launched,
        }
    }

    /// The answer to a request the controller carries out itself; `None` for one a
    /// session role carries out ([`Request::Launch`], [`Request::Run`] on a session).
    pub(crate) async fn answer(
        &mut self,
        request: &Request,
    ) -> Result<Option<Observation>, DriverError> {
        Ok(Some(match request {
            Request::Run {
                connection: Connection::Control,
                sql,
            } => {
                let run = self.control.run(sql).await;
                // The control connection's notices are not printed.
                self.control.take_notices();
                Observation::Ran {
                    notices: Vec::new(),
                    results: run.results,
                    failure: run.failure,
                }
            }
            Request::Run {
                connection: Connection::Session(_),
                ..
            }
            | Request::Launch { .. } => return Ok(None),
            Request::Settle { session } => self.settle(*session, true).await?,
            Request::Finish { session } => self.settle(*session, false).await?,
            Request::Abandon { session } => {
                let session = *session;
                self.sessions[session].cancel().await;
                let bound = self.options.step_timeout;
                let _ = self.sessions[session].wait(bound).await;
                self.sessions[session].take_notices();
                self.sessions[session].take_notifications();
                self.launched[session] = None;
                Observation::Abandoned
            }
        }))
    }

    /// A session role ran a block: the answer, with the notices it received.
    pub(crate) fn ran(&mut self, session: usize, run: BlockRun) -> Observation {
        Observation::Ran {
            notices: self.sessions[session].take_notices(),
            results: run.results,
            failure: run.failure,
        }
    }

    /// A session role sent a step at `at`.
    pub(crate) fn launched(&mut self, session: usize, at: Instant) -> Observation {
        self.launched[session] = Some(Launch {
            at,
            cancelled: false,
        });
        Observation::Launched
    }

    /// Cancels every step still running (the run stops, as upstream's tester exits).
    pub(crate) async fn cancel_running(&mut self) {
        for i in 0..self.sessions.len() {
            if self.launched[i].take().is_some() {
                self.sessions[i].cancel().await;
            }
        }
    }

    /// Every error the server sent, in order of arrival.
    pub(crate) fn errors(&mut self) -> Vec<ServerError> {
        let mut errors = self.control.take_errors();
        for session in self.sessions.iter_mut() {
            errors.extend(session.take_errors());
        }
        errors.sort_by_key(|e| e.at);
        errors
    }

    /// Waits for session `i`'s step: its result, or (with `check_blocked`) a blocked
    /// verdict; cancels it after the step bound, gives up after twice the bound.
    async fn settle(&mut self, i: usize, check_blocked: bool) -> Result<Observation, DriverError> {
        let pids: Vec<i32> = self.sessions.iter().map(|s| s.pid()).collect();
        let bound = self.options.step_timeout;
        let mut arrivals = Vec::new();
        loop {
            if let Some(results) = self.sessions[i].wait(self.options.poll_interval).await {
                return Ok(self.done(i, arrivals, results));
            }
            arrivals.extend(
                self.sessions[i]
                    .take_notices()
                    .into_iter()
                    .map(Arrival::Notice),
            );
            let launch = self.launched[i].get_or_insert(Launch {
                at: Instant::now(),
                cancelled: false,
            });
            let elapsed = launch.at.elapsed();
            if elapsed >= bound * 2 {
                return Ok(Observation::TimedOut {
                    seconds: elapsed.as_secs(),
                });
            }
            if elapsed >= bound && !launch.cancelled {
                launch.cancelled = true;
                arrivals.push(Arrival::Cancelled {
                    seconds: elapsed.as_secs(),
                });
                self.sessions[i].cancel().await;
                continue;
            }
            if check_blocked && self.control.is_blocked(pids[i], &pids).await? {
                // Upstream reads the connection once more and prefers a result that
                // arrived during the check.
                if let Some(results) = self.sessions[i].wait(Duration::ZERO).await {
                    return Ok(self.done(i, arrivals, results));
                }
                arrivals.extend(
                    self.sessions[i]
                        .take_notices()
                        .into_iter()
                        .map(Arrival::Notice),
                );
                return Ok(Observation::Settled {
                    arrivals,
                    state: StepState::Blocked,
                });
            }
        }
    }

    fn done(
        &mut self,
        i: usize,
        mut arrivals: Vec<Arrival>,
        results: Vec<StepResult>,
    ) -> Observation {
        self.launched[i] = None;
        arrivals.extend(
            self.sessions[i]
                .take_notices()
                .into_iter()
                .map(Arrival::Notice),
        );
        let notifications = self.sessions[i]
            .take_notifications()
            .into_iter()
            .map(|n| Notification {
                session: self.sessions[i].name().to_string(),
                sender: self
                    .sessions
                    .iter()
                    .find(|s| s.pid() == n.pid)
                    .map(|s| s.name().to_string())
                    .unwrap_or_else(|| format!("PID {}", n.pid)),
                channel: n.channel,
                payload: n.payload,
            })
            .collect();
        Observation::Settled {
            arrivals,
            state: StepState::Done(StepOutcome {
                results,
                notifications,
            }),
        }
    }
}
