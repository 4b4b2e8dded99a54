//! Effects started now and finished later, at run time: the role goes on while its
//! started effect runs (polled with its program, nothing spawned), the handler may say
//! when it has started (`StartSignal`), the finish waits for the outcome, and a
//! started effect is dropped when its role fails.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Backup, Coordinator, Msg, Role, Worker};
use stormchor_choreography::{At, Extension, ExtensionEffect, Program};
use stormchor_runtime::{
    EffectFailure, EventKind, ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig,
    StartSignal, run_all,
};

type P = Program<Role, Msg>;

/// What the test's effects do.
#[derive(Clone, Debug, PartialEq)]
enum Act {
    /// Wait (at most 10 s) until `Mark` has run, then stamp.
    AwaitMark,
    /// Stamp, set the mark.
    Mark,
    /// Say "started" after a stamp, then wait for the mark, then stamp.
    SignalThenAwaitMark,
    /// Fail after a yield.
    Fail,
    /// Never end; count its drop.
    Forever,
}

#[derive(Clone, Debug)]
struct Do(Act);

impl ExtensionEffect for Do {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "Do"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        Vec::new()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn ExtensionEffect> {
        Box::new(self.clone())
    }
}

#[derive(Clone, Default)]
struct Shared {
    clock: Arc<AtomicU64>,
    marked: Arc<AtomicBool>,
    /// (what, stamp) in stamp order.
    log: Arc<std::sync::Mutex<Vec<(&'static str, u64)>>>,
    dropped: Arc<AtomicU64>,
}

impl Shared {
    fn stamp(&self, what: &'static str) {
        let at = self.clock.fetch_add(1, Ordering::SeqCst);
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what, at));
    }

    fn log(&self) -> Vec<&'static str> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(what, _)| *what)
            .collect()
    }

    async fn await_mark(&self) -> Result<(), EffectFailure> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.marked.load(Ordering::SeqCst) {
            if tokio::time::Instant::now() > deadline {
                return Err(EffectFailure::permanent("the mark never came"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }
}

impl RoleLogic<Role, Msg> for Shared {}

struct CountDrop(Arc<AtomicU64>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn registry() -> Arc<ExtensionRegistry<RoleState<Role, Msg, Shared>>> {
    let mut registry = ExtensionRegistry::new();
    registry
        .register_unit::<Do, _>(|state: &RoleState<Role, Msg, Shared>, effect| {
            Box::pin(async move {
                let shared = state.data();
                match effect.0 {
                    Act::AwaitMark => {
                        shared.await_mark().await?;
                        shared.stamp("awaited");
                    }
                    Act::Mark => {
                        shared.stamp("mark");
                        shared.marked.store(true, Ordering::SeqCst);
                    }
                    Act::SignalThenAwaitMark => {
                        let signal = StartSignal::take()
                            .ok_or_else(|| EffectFailure::permanent("not started"))?;
                        // The role must not go on before the signal: yield a while.
                        for _ in 0..20 {
                            tokio::task::yield_now().await;
                        }
                        shared.stamp("signalled");
                        signal.started();
                        shared.await_mark().await?;
                        shared.stamp("awaited");
                    }
                    Act::Fail => {
                        tokio::task::yield_now().await;
                        return Err(EffectFailure::permanent("the statement broke"));
                    }
                    Act::Forever => {
                        let _count = CountDrop(shared.dropped.clone());
                        std::future::pending::<()>().await;
                    }
                }
                Ok(())
            })
        })
        .expect("one handler");
    Arc::new(registry)
}

async fn run(program: &P, shared: &Shared) -> stormchor_runtime::RunReport<Role, Msg, Shared> {
    let registry = registry();
    run_all(
        program,
        |_| RoleSetup::with_registry(shared.clone(), registry.clone()),
        RunConfig::default().with_deadline(Duration::from_secs(20)),
    )
    .await
    .expect("sound program")
}

fn at(act: Act, role: Role) -> At<Do, Role> {
    At::new(Do(act), [role])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_effect_runs_while_the_program_goes_on() {
    // Backup's effect can only end after the coordinator's, which effect order puts
    // after Backup's start: run whole, it would wait for the mark forever.
    let program = P::new()
        .ext_start(at(Act::AwaitMark, Backup), "wait")
        .ext(at(Act::Mark, Coordinator))
        .ext_finish("wait");
    let shared = Shared::default();
    let report = run(&program, &shared).await;
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(shared.log(), ["mark", "awaited"]);
    let trace = &report.outcomes[&Backup].trace;
    let started = trace
        .iter()
        .position(|e| matches!(e.kind, EventKind::Started { effect: "Do", .. }))
        .expect("a start in the trace");
    let finished = trace
        .iter()
        .position(|e| matches!(e.kind, EventKind::Ext { effect: "Do", .. }))
        .expect("a finish in the trace");
    assert!(started < finished);

    // The same program with the effect run whole cannot end: the negative case.
    let whole = P::new()
        .ext(at(Act::AwaitMark, Backup))
        .ext(at(Act::Mark, Coordinator));
    let shared = Shared::default();
    let report = run(&whole, &shared).await;
    assert!(!report.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_says_when_its_effect_has_started() {
    let program = P::new()
        .ext_start(at(Act::SignalThenAwaitMark, Backup), "wait")
        .ext(at(Act::Mark, Coordinator))
        .ext_finish("wait");
    for _ in 0..20 {
        let shared = Shared::default();
        let report = run(&program, &shared).await;
        assert!(
            report.is_success(),
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        // The coordinator's effect waits for the start point, not the first yield.
        assert_eq!(shared.log(), ["signalled", "mark", "awaited"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_effect_that_fails_fails_its_role_at_once() {
    let program = P::new()
        .ext_start(at(Act::Fail, Backup), "broken")
        .send(Coordinator, Backup, Msg::Start)
        .ext_finish("broken");
    let shared = Shared::default();
    let report = run(&program, &shared).await;
    let failures: Vec<String> = report.failures().map(|(_, f)| f.to_string()).collect();
    assert!(
        failures
            .iter()
            .any(|f| f == "Backup failed at ext start Do as broken ([0]): the statement broke"),
        "{failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_names_the_step_once_in_global_terms() {
    // Where the DSL wrote the statement: its source line; else its global path (here
    // inside a loop's body, not the index into the role's local program).
    let program = P::new().send(Coordinator, Backup, Msg::Start).loop_n(
        1,
        P::new()
            .send(Coordinator, Backup, Msg::Stop)
            .ext(at(Act::Fail, Backup)),
    );
    let shared = Shared::default();
    let report = run(&program, &shared).await;
    let failure = report.outcomes[&Backup]
        .result
        .as_ref()
        .expect_err("fails")
        .to_string();
    assert_eq!(
        failure,
        "Backup failed at ext Do ([1] > body > [1]): the statement broke"
    );
    let program = P::new()
        .send(Coordinator, Backup, Msg::Start)
        .ext_shared(Extension::new(at(Act::Fail, Backup)).with_source("src/scenarios/x.rs", 42));
    let report = run(&program, &Shared::default()).await;
    let failure = report.outcomes[&Backup]
        .result
        .as_ref()
        .expect_err("fails")
        .to_string();
    assert_eq!(
        failure,
        "Backup failed at ext Do (src/scenarios/x.rs:42): the statement broke"
    );
}

/// The failure message of `role` in a run of `program` within `deadline`.
async fn failure_of(program: &P, role: Role, deadline: Duration) -> String {
    let registry = registry();
    let report = run_all(
        program,
        |_| RoleSetup::with_registry(Shared::default(), registry.clone()),
        RunConfig::default().with_deadline(deadline),
    )
    .await
    .expect("sound program");
    report.outcomes[&role]
        .result
        .as_ref()
        .expect_err("fails")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_frame_failures_name_their_global_place() {
    const GONE: &str = "peer Coordinator failed: extension effect Do failed on role Coordinator: \
                        the statement broke";
    let deadline = Duration::from_secs(20);
    // A receive whose sender is gone: the message's path, not the local index [0].
    let program = P::new().loop_n(
        1,
        P::new()
            .ext(at(Act::Fail, Coordinator))
            .send(Coordinator, Backup, Msg::Start),
    );
    assert_eq!(
        failure_of(&program, Backup, deadline).await,
        format!("Backup failed at receive Start from Coordinator ([0] > body > [1]): {GONE}")
    );
    // An order frame whose sender is gone: the place of the effect it orders, its
    // source line when it has one, else its path.
    let program = P::new()
        .send(Coordinator, Backup, Msg::Stop)
        .ext(at(Act::Fail, Coordinator))
        .ext(at(Act::Mark, Backup));
    assert_eq!(
        failure_of(&program, Backup, deadline).await,
        format!("Backup failed at wait for an order frame from Coordinator ([2]): {GONE}")
    );
    let program = P::new()
        .ext(at(Act::Fail, Coordinator))
        .ext_shared(Extension::new(at(Act::Mark, Backup)).with_source("src/scenarios/x.rs", 7));
    assert_eq!(
        failure_of(&program, Backup, deadline).await,
        format!(
            "Backup failed at wait for an order frame from Coordinator (src/scenarios/x.rs:7): {GONE}"
        )
    );
    // A branch label and a loop decision from a chooser that is gone.
    let program = P::new().ext(at(Act::Fail, Coordinator)).choice(
        Coordinator,
        [
            ("a", P::new().send(Coordinator, Backup, Msg::Start)),
            ("b", P::new().send(Coordinator, Backup, Msg::Stop)),
        ],
    );
    assert_eq!(
        failure_of(&program, Backup, deadline).await,
        format!("Backup failed at learn a branch from Coordinator ([1]): {GONE}")
    );
    let program = P::new()
        .ext(at(Act::Fail, Coordinator))
        .loop_until(Coordinator, P::new().send(Coordinator, Backup, Msg::Start));
    assert_eq!(
        failure_of(&program, Backup, deadline).await,
        format!("Backup failed at learn the loop decision from Coordinator ([1]): {GONE}")
    );
    // A role that does the same in every branch: no one branch is the place.
    let program = P::new().ext(at(Act::Fail, Coordinator)).choice(
        Backup,
        [
            ("a", P::new().send(Coordinator, Worker(0), Msg::Stop)),
            ("b", P::new().send(Coordinator, Worker(0), Msg::Stop)),
        ],
    );
    assert_eq!(
        failure_of(&program, Worker(0), deadline).await,
        format!(
            "Worker(0) failed at receive Stop from Coordinator (every branch of the choice at [1]): {GONE}"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_names_its_global_place() {
    // The coordinator never sends (its effect never ends; the run's deadline ends it).
    let program = P::new()
        .send(Coordinator, Backup, Msg::Stop)
        .ext(at(Act::Forever, Coordinator))
        .timeout(
            Backup,
            Duration::from_millis(50),
            P::new().send(Coordinator, Backup, Msg::Start),
        );
    assert_eq!(
        failure_of(&program, Backup, Duration::from_secs(3)).await,
        "Backup failed at timeout 50ms ([2]): timed out after 50ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_effect_is_dropped_when_its_role_fails() {
    // Backup starts an effect that never ends, then fails: the effect goes with it.
    let program = P::new()
        .ext_start(at(Act::Forever, Backup), "forever")
        .ext(at(Act::Fail, Backup))
        .ext_finish("forever");
    let shared = Shared::default();
    let report = run(&program, &shared).await;
    assert!(!report.is_success());
    assert_eq!(shared.dropped.load(Ordering::SeqCst), 1, "dropped once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_in_loops_par_and_choices_run() {
    let round = P::new()
        .ext_start(at(Act::Mark, Backup), "h")
        .send(Coordinator, Backup, Msg::Start)
        .ext_finish("h");
    let program = P::new()
        .loop_n(3, round.clone())
        .par([round.clone(), P::new().ext(at(Act::Mark, Coordinator))])
        .loop_until(Coordinator, round);
    let shared = Shared::default();
    let report = run(&program, &shared).await;
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert!(shared.log().len() >= 5, "{:?}", shared.log());
}
