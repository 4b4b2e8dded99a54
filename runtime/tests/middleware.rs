//! Middleware layers over real runs: retry, metrics, fault injection, recording and
//! tracing, alone and stacked.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;
mod support;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stormchor_choreography::Extension;
use stormchor_runtime::tcp::{TcpHandler, run_all_over_tcp_layered};
use stormchor_runtime::{
    Channels, Dispatch, EffectContext, Effects, ExtOutcome, Fault, FaultLayer, FaultPlan, Faulty,
    Frame, Handler, Layer, Layers, MemoryEndpoint, MemoryHandler, Metrics, MetricsLayer, Recorded,
    Recording, Retry, RetryLayer, RetryPolicy, RoleSetup, RunConfig, RunError, RunErrorKind,
    RunReport, StartedRun, TraceLayer, Transport, memory_mesh, run_all_layered, run_all_with,
};
use support::*;

/// Every role's handle on a layer's log.
type Logs<T> = Arc<Mutex<Vec<(Role, Arc<Mutex<Vec<T>>>)>>>;

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        seed: 1,
    }
}

async fn run_wrapped<T, E>(
    program: &P,
    wrap: impl FnMut(Role, MemoryHandler<Role, Msg>) -> Handler<T, E>,
    deadline: Duration,
) -> RunReport<Role, Msg, Data>
where
    T: Transport<Role, Msg> + 'static,
    E: Effects<Role> + 'static,
{
    let registry = registry();
    run_all_with(
        program,
        |_| RoleSetup::with_registry(Data::default(), registry.clone()),
        RunConfig::default().with_deadline(deadline),
        wrap,
    )
    .await
    .expect("sound")
}

#[tokio::test]
async fn transient_extension_failures_are_retried_within_bounds() {
    let program = P::new()
        .ext(RunWorkload {
            on: Backup,
            seconds: 555,
        })
        .send(Backup, Coordinator, Msg::Lsn(0));
    // Retry wraps the effect side only.
    let report = run_wrapped(
        &program,
        |_, handler| handler.map_effects(|effects| Retry::new(effects, quick_retry(3))),
        Duration::from_secs(5),
    )
    .await;
    assert!(report.is_success());
    // The coordinator received the result of the third, successful attempt.
    assert_eq!(
        report
            .state(&Coordinator)
            .and_then(|s| s.latest_from(&Backup)),
        Some(Msg::Lsn(3))
    );

    let report = run_wrapped(
        &program,
        |role, handler| RetryLayer(quick_retry(2)).layer(role, handler),
        Duration::from_secs(5),
    )
    .await;
    let failure = report.outcomes[&Backup]
        .result
        .as_ref()
        .expect_err("two attempts are not enough");
    assert!(
        failure.to_string().contains("serialization failure"),
        "{failure}"
    );
    assert_eq!(
        report
            .state(&Backup)
            .map(|s| s.data().counter.load(Ordering::SeqCst)),
        Some(2)
    );
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let program = P::new().ext(RunWorkload {
        on: Backup,
        seconds: 999,
    });
    let report = run_wrapped(
        &program,
        |role, handler| RetryLayer(quick_retry(5)).layer(role, handler),
        Duration::from_secs(5),
    )
    .await;
    assert!(!report.is_success());
    assert_eq!(
        report
            .state(&Backup)
            .map(|s| s.data().counter.load(Ordering::SeqCst)),
        Some(0)
    );
}

#[tokio::test]
async fn metrics_count_every_operation() {
    let (program, _) = scenario("family-4");
    let metrics = Metrics::new();
    let report = run_wrapped(
        &program,
        |role, handler| MetricsLayer::new(metrics.clone()).layer(role, handler),
        Duration::from_secs(5),
    )
    .await;
    assert!(report.is_success());
    let figures = metrics.snapshot();
    // 4 starts, 3 x 4 verdicts, 4 LSNs.
    assert_eq!(figures["send"].count, 20);
    assert_eq!(figures["recv"].count, 20);
    assert_eq!(figures["ext RunWorkload"].count, 1);
    assert_eq!(figures["send"].errors, 0);
}

fn faulty_run_log(plan: FaultPlan) -> (RunReport<Role, Msg, Data>, Vec<(Role, Fault)>) {
    let (program, _) = scenario("family-4");
    let logs: Logs<Fault> = Arc::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = rt.block_on(run_wrapped(
        &program,
        |role, handler| {
            let faulty = Faulty::around(handler, plan.clone(), &role);
            logs.lock()
                .expect("logs")
                .push((role, faulty.transport.fault_log()));
            faulty
        },
        Duration::from_millis(500),
    ));
    let mut faults: Vec<(Role, Fault)> = logs
        .lock()
        .expect("logs")
        .iter()
        .flat_map(|(role, log)| {
            log.lock()
                .expect("log")
                .clone()
                .into_iter()
                .map(|f| (*role, f))
        })
        .collect();
    faults.sort_by_key(|(role, _)| *role);
    (report, faults)
}

#[test]
fn seeded_faults_replay_identically() {
    let plan = FaultPlan {
        seed: 42,
        delay: 0.3,
        max_delay: Duration::from_millis(3),
        ..FaultPlan::default()
    };
    let (first, faults) = faulty_run_log(plan.clone());
    let (second, again) = faulty_run_log(plan);
    assert!(
        first.is_success() && second.is_success(),
        "delays alone do not break a run"
    );
    assert!(!faults.is_empty(), "some delays were injected");
    assert_eq!(faults, again);
    let (_, other) = faulty_run_log(FaultPlan {
        seed: 43,
        delay: 0.3,
        max_delay: Duration::from_millis(3),
        ..FaultPlan::default()
    });
    assert_ne!(faults, other, "another seed injects other faults");
}

#[test]
fn an_injected_crash_fails_the_role_and_its_peers_name_it() {
    let (report, faults) = faulty_run_log(FaultPlan {
        seed: 1,
        crash_at: Some(3),
        ..FaultPlan::default()
    });
    // Every role crashes at its third operation; the coordinator's is a send.
    assert!(
        faults
            .iter()
            .any(|(role, fault)| *role == Coordinator && *fault == Fault::Crashed { op: 3 })
    );
    let failure = report.outcomes[&Coordinator]
        .result
        .as_ref()
        .expect_err("crashed");
    assert!(
        matches!(failure.error.kind(), RunErrorKind::Injected(_)),
        "{failure}"
    );
}

#[test]
fn a_dropped_message_ends_in_a_deadline_not_a_hang() {
    let (report, faults) = faulty_run_log(FaultPlan {
        seed: 5,
        drop: 0.2,
        ..FaultPlan::default()
    });
    assert!(
        faults
            .iter()
            .any(|(_, f)| matches!(f, Fault::Dropped { .. }))
    );
    assert!(
        report.failures().any(
            |(_, f)| f.timed_out() || matches!(f.error.kind(), RunErrorKind::PeerFailed { .. })
        )
    );
}

#[tokio::test]
async fn recording_shows_the_exact_sequence() {
    let program = P::new()
        .send(Coordinator, Backup, Msg::Start)
        .choice(
            Coordinator,
            [
                ("go", P::new().send(Coordinator, Backup, Msg::Stop)),
                ("no", P::new().send(Coordinator, Backup, Msg::Start)),
            ],
        )
        .ext(RunWorkload {
            on: Backup,
            seconds: 1,
        })
        .send(Backup, Coordinator, Msg::Lsn(0));
    let logs: Logs<Recorded<Role>> = Arc::default();
    let report = run_wrapped(
        &program,
        |role, handler| {
            let recording = Recording::around(handler);
            logs.lock()
                .expect("logs")
                .push((role, recording.transport.log()));
            recording
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(report.is_success());
    let backup = logs
        .lock()
        .expect("logs")
        .iter()
        .find(|(r, _)| *r == Backup)
        .map(|(_, l)| l.lock().expect("log").clone());
    assert_eq!(
        backup,
        Some(vec![
            Recorded::Received(Coordinator, "message Start".into()),
            Recorded::Received(Coordinator, "branch label #0".into()),
            Recorded::Received(Coordinator, "message Stop".into()),
            Recorded::Ext("RunWorkload"),
            Recorded::Sent(Coordinator, "message Lsn(1)".into()),
        ])
    );
}

/// A subscriber that keeps the names of the spans it sees.
struct SpanNames(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for SpanNames {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut names = self.0.lock().expect("names");
        names.push(span.metadata().name().to_owned());
        tracing::span::Id::from_u64(names.len() as u64)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn layers_stack_and_trace_every_operation() {
    let names: Arc<Mutex<Vec<String>>> = Arc::default();
    let metrics = Metrics::new();
    let program = P::new()
        .ext(RunWorkload {
            on: Backup,
            seconds: 555,
        })
        .send(Backup, Coordinator, Msg::Lsn(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Traced(Retry(Metered(handler))): Retry on the effect side only.
    let layers = Layers::new()
        .with(TraceLayer)
        .with(RetryLayer(quick_retry(3)))
        .with(MetricsLayer::new(metrics.clone()));
    let report = tracing::subscriber::with_default(SpanNames(names.clone()), || {
        rt.block_on(run_wrapped(
            &program,
            |role, handler| layers.layer(role, handler),
            Duration::from_secs(5),
        ))
    });
    assert!(report.is_success());
    let names = names.lock().expect("names").clone();
    assert_eq!(names.iter().filter(|n| *n == "ext").count(), 1, "{names:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "send").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "recv").count(),
        1,
        "{names:?}"
    );
    // Retry sits above Metered: the metrics see all three attempts.
    let ext = metrics.snapshot()["ext RunWorkload"];
    assert_eq!((ext.count, ext.errors), (3, 2));
}

/// Backup starts a workload, goes on receiving while it runs, then finishes it and
/// reports its result.
fn started_program(seconds: u32) -> P {
    P::new()
        .send(Coordinator, Backup, Msg::Start)
        .ext_start(
            RunWorkload {
                on: Backup,
                seconds,
            },
            "load",
        )
        .send(Coordinator, Backup, Msg::Stop)
        .ext_finish("load")
        .send(Backup, Coordinator, Msg::Lsn(0))
}

#[tokio::test]
async fn started_effects_and_their_finish_go_through_the_layers() {
    // Recording: the start when it starts, the run's end, the finish at its step.
    let logs: Logs<Recorded<Role>> = Arc::default();
    let metrics = Metrics::new();
    let report = run_wrapped(
        &started_program(1),
        |role, handler| {
            let metered = MetricsLayer::new(metrics.clone()).layer(role, handler);
            let recording = Recording::around(metered);
            logs.lock()
                .expect("logs")
                .push((role, recording.effects.log()));
            recording
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    let backup = logs
        .lock()
        .expect("logs")
        .iter()
        .find(|(r, _)| *r == Backup)
        .map(|(_, l)| l.lock().expect("log").clone())
        .expect("a log");
    let at = |wanted: &Recorded<Role>| {
        backup
            .iter()
            .position(|seen| seen == wanted)
            .unwrap_or_else(|| panic!("{wanted:?} not in {backup:?}"))
    };
    let started = at(&Recorded::Started("RunWorkload"));
    let ran = at(&Recorded::Ext("RunWorkload"));
    let finished = at(&Recorded::Finished("RunWorkload"));
    let start_msg = at(&Recorded::Received(Coordinator, "message Start".into()));
    let stop_msg = at(&Recorded::Received(Coordinator, "message Stop".into()));
    let reported = at(&Recorded::Sent(Coordinator, "message Lsn(1)".into()));
    assert!(start_msg < started && started < stop_msg, "{backup:?}");
    assert!(
        started < ran && ran < finished && stop_msg < finished,
        "{backup:?}"
    );
    assert!(finished < reported, "{backup:?}");
    assert_eq!(backup.len(), 6, "nothing else, nothing twice: {backup:?}");
    // Metered: the started effect's run and its finish, once each.
    let figures = metrics.snapshot();
    assert_eq!(figures["ext RunWorkload"].count, 1);
    assert_eq!(figures["finish RunWorkload"].count, 1);
}

#[tokio::test]
async fn a_started_effect_is_retried_like_a_whole_one() {
    // Two transient failures, then success: three attempts are enough.
    let report = run_wrapped(
        &started_program(555),
        |role, handler| RetryLayer(quick_retry(3)).layer(role, handler),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(
        report
            .state(&Coordinator)
            .and_then(|s| s.latest_from(&Backup)),
        Some(Msg::Lsn(3))
    );
    // Two are not: the started effect fails its role, naming the start.
    let report = run_wrapped(
        &started_program(555),
        |role, handler| RetryLayer(quick_retry(2)).layer(role, handler),
        Duration::from_secs(5),
    )
    .await;
    let failure = report.outcomes[&Backup]
        .result
        .as_ref()
        .expect_err("two attempts are not enough")
        .to_string();
    assert!(
        failure.starts_with("Backup failed at ext start RunWorkload as load ([1]): ")
            && failure.contains("serialization failure"),
        "{failure}"
    );
    assert_eq!(
        report
            .state(&Backup)
            .map(|s| s.data().counter.load(Ordering::SeqCst)),
        Some(2)
    );
}

#[tokio::test]
async fn an_injected_crash_at_a_start_or_a_finish_fails_the_role_there() {
    // Backup's operations: receive Start (1), the start (2), receive Stop (3), the
    // finish (4).
    for (crash_at, step) in [
        (2, "ext start RunWorkload as load ([1])"),
        (4, "ext finish load (RunWorkload) ([3])"),
    ] {
        let report = run_wrapped(
            &started_program(1),
            |role, handler| {
                let plan = FaultPlan {
                    crash_at: (role == Backup).then_some(crash_at),
                    ..FaultPlan::default()
                };
                FaultLayer(plan).layer(role, handler)
            },
            Duration::from_secs(5),
        )
        .await;
        let failure = report.outcomes[&Backup]
            .result
            .as_ref()
            .expect_err("crashes")
            .to_string();
        assert_eq!(
            failure,
            format!("Backup failed at {step}: injected fault: crash at operation {crash_at}")
        );
    }
}

// ---------------------------------------------------------------- one side only

/// An effect-side layer of the tests' own: effects of the `skipped` type do not run
/// (a dry run) and are counted. It never touches the transport.
struct DryRun<E> {
    inner: E,
    skipped: &'static str,
    count: Arc<AtomicU64>,
}

impl<E: Effects<Role>> Effects<Role> for DryRun<E> {
    async fn extension<'a, Env: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, Role, Env>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        if effect.type_name() == self.skipped {
            self.count.fetch_add(1, Ordering::SeqCst);
            return Ok(None);
        }
        self.inner.extension(context, effect).await
    }

    fn start_extension<'s, Env: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, Role, Env>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        self.inner.start_extension(context, effect)
    }

    fn finish_extension<'a>(
        &'a mut self,
        role: Role,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> impl Future<Output = ExtOutcome> + Send + 'a {
        self.inner.finish_extension(role, effect, outcome)
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        let forked = self.inner.fork(parts);
        forked
            .into_iter()
            .map(|inner| DryRun {
                inner,
                skipped: self.skipped,
                count: self.count.clone(),
            })
            .collect()
    }
}

#[derive(Clone)]
struct DryRunLayer {
    skipped: &'static str,
    count: Arc<AtomicU64>,
}

impl<T, E> Layer<Role, Handler<T, E>> for DryRunLayer {
    type Handler = Handler<T, DryRun<E>>;

    fn layer(&self, _role: Role, inner: Handler<T, E>) -> Self::Handler {
        inner.map_effects(|inner| DryRun {
            inner,
            skipped: self.skipped,
            count: self.count.clone(),
        })
    }
}

/// A transport-side layer of the tests' own: adds `by` to every LSN the role sends.
/// It never touches the effects.
struct ShiftLsn<T> {
    inner: T,
    by: u64,
}

impl<T: Transport<Role, Msg>> Transport<Role, Msg> for ShiftLsn<T> {
    fn role(&self) -> Role {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: Role, frame: Frame<Msg>) -> Result<(), RunError> {
        let frame = match frame {
            Frame::Message(Msg::Lsn(lsn)) => Frame::Message(Msg::Lsn(lsn + self.by)),
            other => other,
        };
        self.inner.send_frame(to, frame).await
    }

    fn recv_frame(
        &mut self,
        from: Role,
    ) -> impl Future<Output = Result<Frame<Msg>, RunError>> + Send {
        self.inner.recv_frame(from)
    }

    fn split(&mut self, parts: &[Channels<Role>]) -> Result<Vec<Self>, RunError> {
        let by = self.by;
        let split = self.inner.split(parts)?;
        Ok(split
            .into_iter()
            .map(|inner| ShiftLsn { inner, by })
            .collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.inner
            .join(parts.into_iter().map(|part| part.inner).collect());
    }
}

#[derive(Clone)]
struct ShiftLayer(u64);

impl<T, E> Layer<Role, Handler<T, E>> for ShiftLayer {
    type Handler = Handler<ShiftLsn<T>, E>;

    fn layer(&self, _role: Role, inner: Handler<T, E>) -> Self::Handler {
        inner.map_transport(|inner| ShiftLsn { inner, by: self.0 })
    }
}

/// Backup runs a workload inside a part of a `par` (so the layers split with the
/// role) and reports its result; the other part receives from the coordinator.
fn par_program() -> P {
    P::new().par([
        P::new()
            .ext(RunWorkload {
                on: Backup,
                seconds: 5,
            })
            .send(Backup, Coordinator, Msg::Lsn(0)),
        P::new().send(Coordinator, Backup, Msg::Start),
    ])
}

/// Runs `program` with `layers` in memory, then over loopback TCP.
async fn in_memory_and_over_tcp<L, T1, E1, T2, E2>(
    program: &P,
    layers: L,
) -> [RunReport<Role, Msg, Data>; 2]
where
    L: Layer<Role, MemoryHandler<Role, Msg>, Handler = Handler<T1, E1>>
        + Layer<Role, TcpHandler<Role, Msg>, Handler = Handler<T2, E2>>
        + Send
        + Sync
        + 'static,
    T1: Transport<Role, Msg> + 'static,
    E1: Effects<Role> + 'static,
    T2: Transport<Role, Msg> + 'static,
    E2: Effects<Role> + 'static,
{
    let registry = registry();
    let config = RunConfig::default().with_deadline(Duration::from_secs(10));
    let setup = |_| RoleSetup::with_registry(Data::default(), registry.clone());
    let in_memory = run_all_layered(program, setup, config.clone(), &layers)
        .await
        .expect("sound");
    let over_tcp = run_all_over_tcp_layered(program, setup, config, Duration::from_secs(5), layers)
        .await
        .expect("connected");
    [in_memory, over_tcp]
}

fn backup_counter(report: &RunReport<Role, Msg, Data>) -> Option<u64> {
    report
        .state(&Backup)
        .map(|s| s.data().counter.load(Ordering::SeqCst))
}

fn lsn_at_coordinator(report: &RunReport<Role, Msg, Data>) -> Option<Msg> {
    report
        .state(&Coordinator)
        .and_then(|s| s.latest_from(&Backup))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_of_the_effect_side_alone_changes_effects_and_leaves_frames_alone() {
    // Without it, the workload runs and Backup reports its result.
    let plain = run_wrapped(&par_program(), |_, handler| handler, Duration::from_secs(5)).await;
    assert_eq!(
        (backup_counter(&plain), lsn_at_coordinator(&plain)),
        (Some(5), Some(Msg::Lsn(5)))
    );

    let count = Arc::new(AtomicU64::new(0));
    let layer = DryRunLayer {
        skipped: "RunWorkload",
        count: count.clone(),
    };
    // The transport keeps the runner's own type: the layer did not wrap it.
    let (mut handlers, _) = memory_mesh::<Role, Msg>(&[Coordinator, Backup]);
    let _: Handler<MemoryEndpoint<Role, Msg>, DryRun<Dispatch>> =
        layer.layer(Coordinator, handlers.remove(0));

    for report in in_memory_and_over_tcp(&par_program(), layer).await {
        assert!(
            report.is_success(),
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        // The workload did not run, and the message about it still went through.
        assert_eq!(
            (backup_counter(&report), lsn_at_coordinator(&report)),
            (Some(0), Some(Msg::Lsn(0)))
        );
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "skipped once per runner, by the part's forked layer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_of_the_transport_side_alone_changes_frames_and_leaves_effects_alone() {
    // The effects keep the runner's own type: the layer did not wrap them.
    let (mut handlers, _) = memory_mesh::<Role, Msg>(&[Coordinator, Backup]);
    let _: Handler<ShiftLsn<MemoryEndpoint<Role, Msg>>, Dispatch> =
        ShiftLayer(100).layer(Coordinator, handlers.remove(0));

    for report in in_memory_and_over_tcp(&par_program(), ShiftLayer(100)).await {
        assert!(
            report.is_success(),
            "{:?}",
            report.failures().collect::<Vec<_>>()
        );
        // The workload ran as ever; what Backup sent about it was shifted on the way
        // out, by the transport of the part that sent it.
        assert_eq!(
            (backup_counter(&report), lsn_at_coordinator(&report)),
            (Some(5), Some(Msg::Lsn(105)))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_of_either_side_stack_in_one_stack() {
    let count = Arc::new(AtomicU64::new(0));
    let layers = Layers::new().with(ShiftLayer(100)).with(DryRunLayer {
        skipped: "RunWorkload",
        count: count.clone(),
    });
    for report in in_memory_and_over_tcp(&par_program(), layers).await {
        assert!(report.is_success());
        assert_eq!(
            (backup_counter(&report), lsn_at_coordinator(&report)),
            (Some(0), Some(Msg::Lsn(100)))
        );
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
}
