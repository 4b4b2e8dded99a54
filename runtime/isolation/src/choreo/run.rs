//! Running a spec's choreographies: one `run_all` per permutation over the spec's
//! connections (kept across permutations, as upstream keeps them), the registry's
//! handlers carrying out the effects, the scheduler in the controller's data.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use stormchor_postgres::lock;
use stormchor_runtime::{
    EffectFailure, ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, run_all,
};
use tokio::sync::watch;

use stormchor_choreography::Program;

use super::{
    ChoreoError, MainSetup, MainTeardown, Msg, Observe, Role, SessionBlock, Step,
    permutation_program,
};
use crate::driver::pg::{PgControl, PgLine, PgSession};
use crate::driver::{BlockRun, Controller, DriverError, RunOptions, SpecRun};
use crate::output::TestOutput;
use crate::permutations::permutations;
use crate::schedule::{Connection, Finished, Next, Request, Scheduler};
use crate::spec::{Permutation, Spec};

/// What a session role did for the scheduler, for the controller to read.
#[derive(Debug)]
enum Record {
    /// It sent step `step` at `at`.
    Launched {
        session: usize,
        step: String,
        at: Instant,
    },
    /// It ran a block.
    Ran {
        session: usize,
        sql: String,
        run: BlockRun,
    },
}

/// The controller's data: the scheduler of the running permutation and the driver's
/// part that answers it.
struct ControllerState {
    controller: Controller<PgControl, PgSession>,
    scheduler: Option<Scheduler<'static>>,
    finished: Option<Finished>,
}

/// What the roles of one spec share: each session's connection (its role runs SQL on
/// it, the controller watches it), the request the controller waits for a session to
/// carry out, and what the sessions did.
struct Shared {
    lines: Vec<Arc<PgLine>>,
    wanted: Mutex<Option<Request>>,
    records: Mutex<VecDeque<Record>>,
    controller: tokio::sync::Mutex<ControllerState>,
    /// Set when upstream's tester would have exited: running steps end.
    stopped: watch::Sender<bool>,
    /// The controller's own error, kept whole.
    error: Mutex<Option<DriverError>>,
}

/// Every role's data: the spec's shared state.
#[derive(Clone)]
pub struct Data(Arc<Shared>);

impl RoleLogic<Role, Msg> for Data {
    const READS_STATE: bool = false;
}

type State = RoleState<Role, Msg, Data>;

/// Where a controller effect stops driving the scheduler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// At a request a session carries out (main setup, observations)...
    HandOff,
    /// ... or also before the main teardown (observations).
    HandOffOrTeardown,
    /// At the scheduler's end (main teardown).
    End,
}

impl Shared {
    /// Takes the wanted request if `fits` it.
    fn take_wanted(&self, fits: impl FnOnce(&Request) -> bool) -> Option<Request> {
        let mut wanted = lock(&self.wanted);
        if wanted.as_ref().is_some_and(fits) {
            wanted.take()
        } else {
            None
        }
    }

    /// Drives the scheduler: answers its own requests and the hand-offs the sessions
    /// did, until `until`.
    async fn advance(&self, until: Until) -> Result<(), DriverError> {
        let mut guard = self.controller.lock().await;
        let state = &mut *guard;
        loop {
            let Some(scheduler) = state.scheduler.as_mut() else {
                return Ok(());
            };
            let request = match scheduler.next_move() {
                Next::Finished(finished) => {
                    state.scheduler = None;
                    *lock(&self.wanted) = None;
                    if finished.died {
                        state.controller.cancel_running().await;
                        self.stopped.send_replace(true);
                    }
                    state.finished = Some(finished);
                    return Ok(());
                }
                Next::Ask(request) => request,
            };
            if until == Until::HandOffOrTeardown
                && matches!(
                    request,
                    Request::Run {
                        connection: Connection::Control,
                        ..
                    }
                )
            {
                *lock(&self.wanted) = None;
                return Ok(());
            }
            let observation = match state.controller.answer(&request).await? {
                Some(observation) => observation,
                None => {
                    let record = lock(&self.records).pop_front();
                    match (record, &request) {
                        (None, _) => {
                            if until == Until::End {
                                return Err(DriverError::Choreography(format!(
                                    "the permutation's choreography ended while the scheduler \
                                     asks for {request:?}"
                                )));
                            }
                            *lock(&self.wanted) = Some(request);
                            return Ok(());
                        }
                        (
                            Some(Record::Launched { session, step, at }),
                            Request::Launch {
                                session: asked,
                                step: name,
                                ..
                            },
                        ) if session == *asked && step == *name => {
                            state.controller.launched(session, at)
                        }
                        (
                            Some(Record::Ran { session, sql, run }),
                            Request::Run {
                                connection: Connection::Session(asked),
                                sql: block,
                            },
                        ) if session == *asked && sql == *block => {
                            state.controller.ran(session, run)
                        }
                        (Some(record), request) => {
                            return Err(DriverError::Choreography(format!(
                                "a session did {record:?} where the scheduler asks for {request:?}"
                            )));
                        }
                    }
                }
            };
            scheduler.answer(observation)?;
        }
    }

    /// A controller effect: drives the scheduler; keeps its error whole.
    async fn controller_effect(&self, until: Until) -> Result<(), EffectFailure> {
        match self.advance(until).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let text = error.to_string();
                *lock(&self.error) = Some(error);
                Err(EffectFailure::permanent(text))
            }
        }
    }
}

fn session_index(role: Role) -> Result<usize, EffectFailure> {
    role.index()
        .ok_or_else(|| EffectFailure::permanent("a session's effect placed at the controller"))
}

/// The registry of a spec's effects.
fn registry() -> ExtensionRegistry<State> {
    let mut registry: ExtensionRegistry<State> = ExtensionRegistry::new();
    let registered = registry
        .register_unit::<MainSetup, _>(|state, _| {
            Box::pin(async move { state.data().0.controller_effect(Until::HandOff).await })
        })
        .and_then(|r| {
            r.register_unit::<Observe, _>(|state, _| {
                Box::pin(async move {
                    state
                        .data()
                        .0
                        .controller_effect(Until::HandOffOrTeardown)
                        .await
                })
            })
        })
        .and_then(|r| {
            r.register_unit::<MainTeardown, _>(|state, _| {
                Box::pin(async move { state.data().0.controller_effect(Until::End).await })
            })
        })
        .and_then(|r| r.register_unit::<SessionBlock, _>(session_block))
        .and_then(|r| r.register_unit::<Step, _>(step));
    debug_assert!(registered.is_ok(), "five distinct effect types");
    registry
}

/// A session's block, if the scheduler asks for it.
fn session_block<'a>(
    state: &'a State,
    effect: &'a SessionBlock,
) -> BoxFuture<'a, Result<(), EffectFailure>> {
    Box::pin(async move {
        let shared = &state.data().0;
        let s = session_index(effect.session)?;
        let asked = shared.take_wanted(|r| {
            matches!(r, Request::Run { connection: Connection::Session(i), sql }
                if *i == s && *sql == effect.sql)
        });
        if asked.is_none() {
            return Ok(());
        }
        let run = shared.lines[s].run_block(&effect.sql).await;
        lock(&shared.records).push_back(Record::Ran {
            session: s,
            sql: effect.sql.clone(),
            run,
        });
        Ok(())
    })
}

/// A step, started: sent now, its results left for the controller once all in. It
/// ends early only if the run stopped (upstream's tester exited).
fn step<'a>(state: &'a State, effect: &'a Step) -> BoxFuture<'a, Result<(), EffectFailure>> {
    Box::pin(async move {
        let shared = &state.data().0;
        let s = session_index(effect.session)?;
        let asked = shared.take_wanted(|r| {
            matches!(r, Request::Launch { session, step, .. } if *session == s && *step == effect.name)
        });
        if asked.is_none() {
            return Ok(());
        }
        lock(&shared.records).push_back(Record::Launched {
            session: s,
            step: effect.name.clone(),
            at: Instant::now(),
        });
        let mut stopped = shared.stopped.subscribe();
        tokio::select! {
            () = shared.lines[s].run_step(&effect.sql) => {}
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
        Ok(())
    })
}

/// Runs every permutation of `spec` as its choreography, over the control connection
/// and one connection per session (in the spec's order), kept across permutations.
pub async fn run_spec(
    spec: &Spec,
    control: PgControl,
    lines: Vec<Arc<PgLine>>,
    options: &RunOptions,
) -> Result<SpecRun, DriverError> {
    let rollbacks = options.abandon_invalid_permutations;
    run_programs(spec, control, lines, options, |index, permutation| {
        permutation_program(spec, index, permutation, rollbacks)
    })
    .await
}

/// [`run_spec`] with each permutation's program made by `build`.
async fn run_programs(
    spec: &Spec,
    control: PgControl,
    lines: Vec<Arc<PgLine>>,
    options: &RunOptions,
    build: impl Fn(usize, &Permutation) -> Result<Program<Role, Msg>, ChoreoError>,
) -> Result<SpecRun, DriverError> {
    let shared_spec = Arc::new(spec.clone());
    let sessions = lines.iter().cloned().map(PgSession::new).collect();
    let (stopped, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        lines,
        wanted: Mutex::new(None),
        records: Mutex::new(VecDeque::new()),
        controller: tokio::sync::Mutex::new(ControllerState {
            controller: Controller::new(control, sessions, options.clone()),
            scheduler: None,
            finished: None,
        }),
        stopped,
        error: Mutex::new(None),
    });
    let registry = Arc::new(registry());
    let mut output = TestOutput::for_spec(spec);
    let mut died = false;
    for (index, permutation) in permutations(spec).enumerate() {
        let program =
            build(index, &permutation).map_err(|e| DriverError::Choreography(e.to_string()))?;
        let scheduler = Scheduler::shared(Arc::clone(&shared_spec), &permutation)?
            .abandon_invalid_permutations(options.abandon_invalid_permutations)
            .with_max_step_wait(options.step_timeout.as_secs().max(1));
        {
            let mut state = shared.controller.lock().await;
            state.scheduler = Some(scheduler);
            state.finished = None;
        }
        *lock(&shared.wanted) = None;
        lock(&shared.records).clear();
        let config = RunConfig::default()
            .with_trace(false)
            .with_deadline(deadline(&program, options));
        let report = run_all(
            &program,
            |_| RoleSetup::with_registry(Data(Arc::clone(&shared)), Arc::clone(&registry)),
            config,
        )
        .await
        .map_err(|e| DriverError::Choreography(e.to_string()))?;
        if let Some(error) = lock(&shared.error).take() {
            return Err(error);
        }
        if let Some((role, failure)) = report.failures().next() {
            return Err(DriverError::Choreography(format!("{role:?}: {failure}")));
        }
        let finished = shared.controller.lock().await.finished.take();
        let Some(finished) = finished else {
            return Err(DriverError::Choreography(format!(
                "permutation {} ended before its scheduler",
                index + 1
            )));
        };
        output.permutations.push(finished.log);
        if finished.died {
            died = true;
            break;
        }
    }
    let errors = shared.controller.lock().await.controller.errors();
    Ok(SpecRun {
        output,
        errors,
        died,
    })
}

/// A bound on one permutation's run, past every bound of the driver's own: each
/// effect may wait twice the step bound, plus a minute.
fn deadline(
    program: &stormchor_choreography::Program<Role, Msg>,
    options: &RunOptions,
) -> Duration {
    let effects = u32::try_from(program.counts().total())
        .unwrap_or(u32::MAX)
        .max(1);
    (options.step_timeout * 2 + Duration::from_secs(60)).saturating_mul(effects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormchor_postgres::{ClusterOptions, PgCluster};

    fn options() -> RunOptions {
        RunOptions {
            step_timeout: Duration::from_secs(60),
            ..RunOptions::default()
        }
    }

    async fn connections(conninfo: &str, spec: &Spec) -> (PgControl, Vec<Arc<PgLine>>) {
        let mut control = PgControl::connect(conninfo, "t", false)
            .await
            .expect("control connection");
        let mut lines = Vec::new();
        for session in &spec.sessions {
            lines.push(Arc::new(
                PgLine::connect(conninfo, "t", &session.name, false)
                    .await
                    .expect("session connection"),
            ));
        }
        let pids: Vec<i32> = lines.iter().map(|l| l.pid()).collect();
        control
            .prepare_blocked_check(&pids)
            .await
            .expect("blocked check");
        (control, lines)
    }

    fn step(spec: &Spec, name: &str) -> Step {
        let s = spec.session_of(name).expect("a step");
        Step {
            session: Role::session(spec, s).expect("a role"),
            name: name.into(),
            sql: spec.step(name).expect("a step").sql.clone(),
        }
    }

    fn observe(name: &str) -> Observe {
        Observe {
            after: name.into(),
            step: true,
        }
    }

    /// The negative cases: a program that lacks a step the scheduler asks for, or holds
    /// the steps in another order, is an error naming the request, not a run that
    /// quietly prints something else.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_program_that_disagrees_with_the_scheduler_is_an_error() {
        let spec = Spec::parse(
            "session s1 step a { SELECT 1 AS one; } step b { SELECT 2 AS two; }\n\
             permutation a b",
            "disagree.spec",
        )
        .expect("parses");
        let cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("a throwaway cluster");
        let conninfo = cluster.connection_string();
        let setup = |index: usize, permutation: &Permutation| MainSetup {
            permutation: index + 1,
            steps: permutation.steps.iter().map(|s| s.name.clone()).collect(),
            blocks: Vec::new(),
        };
        let lacking = |index: usize, permutation: &Permutation| {
            Ok(Program::new()
                .ext(setup(index, permutation))
                .ext_start(step(&spec, "a"), "a")
                .ext(observe("a"))
                .ext_finish("a")
                .ext(MainTeardown { block: None }))
        };
        let reordered = |index: usize, permutation: &Permutation| {
            Ok(Program::new()
                .ext(setup(index, permutation))
                .ext_start(step(&spec, "b"), "b")
                .ext(observe("b"))
                .ext_finish("b")
                .ext_start(step(&spec, "a"), "a")
                .ext(observe("a"))
                .ext_finish("a")
                .ext(MainTeardown { block: None }))
        };
        for (what, build) in [
            ("lacking b", &lacking as &dyn Fn(usize, &Permutation) -> _),
            ("b before a", &reordered),
        ] {
            let (control, lines) = connections(&conninfo, &spec).await;
            let error = run_programs(&spec, control, lines, &options(), build)
                .await
                .expect_err(what);
            let text = error.to_string();
            assert!(
                text.contains("ended while the scheduler asks for Launch")
                    && text.contains("step: \"b\""),
                "{what}: {text}"
            );
        }

        // The program the spec makes runs and prints both steps.
        let (control, lines) = connections(&conninfo, &spec).await;
        let run = run_spec(&spec, control, lines, &options())
            .await
            .expect("runs");
        let printed = crate::output::render(&run.output, crate::output::Dialect::CURRENT);
        assert!(
            printed.contains("step a: SELECT 1 AS one;\none\n---\n  1\n(1 row)\n"),
            "{printed}"
        );
        assert!(printed.contains("step b: SELECT 2 AS two;\n"), "{printed}");
    }
}
