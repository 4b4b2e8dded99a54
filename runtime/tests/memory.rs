//! The interpreter over in-memory channels: every construct, values, and failures.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stormchor_choreography::Family;
use stormchor_runtime::{
    EventKind, ExtensionError, RoleSetup, RunConfig, RunErrorKind, RunReport, run_all,
};
use support::*;

async fn run(program: &P, data: impl Fn(Role) -> Data) -> RunReport<Role, Msg, Data> {
    let registry = registry();
    run_all(
        program,
        |role| RoleSetup::with_registry(data(role), registry.clone()),
        RunConfig::default().with_deadline(Duration::from_secs(10)),
    )
    .await
    .expect("sound program")
}

fn latest(report: &RunReport<Role, Msg, Data>, role: Role, from: Role) -> Option<Msg> {
    report.state(&role).and_then(|s| s.latest_from(&from))
}

#[tokio::test]
async fn ping_pong_carries_values_made_at_run_time() {
    let program = P::new().loop_n(
        10,
        P::new().send(Coordinator, Worker(0), Msg::Rows(0)).send(
            Worker(0),
            Coordinator,
            Msg::Rows(0),
        ),
    );
    let report = run(&program, |_| Data::default()).await;
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    // Each side answers one more than it received: 0, 1, 2, ... 19.
    assert_eq!(latest(&report, Coordinator, Worker(0)), Some(Msg::Rows(19)));
    assert_eq!(latest(&report, Worker(0), Coordinator), Some(Msg::Rows(18)));
    let trace = &report.outcomes[&Worker(0)].trace;
    assert_eq!(trace.len(), 20);
    assert!(matches!(
        trace[0].kind,
        EventKind::Received { from: Coordinator }
    ));
    assert!(matches!(trace[1].kind, EventKind::Sent { to: Coordinator }));
    assert!(trace.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn the_chooser_decides_from_its_state_and_the_others_follow() {
    let family = Family::indexed("Worker", 3, Worker);
    let program = P::new().choice(
        Coordinator,
        [
            (
                "commit",
                P::new().broadcast(Coordinator, &family, Msg::Start).gather(
                    &family,
                    Coordinator,
                    Msg::Verdict(true),
                ),
            ),
            ("abort", P::new().broadcast(Coordinator, &family, Msg::Stop)),
        ],
    );
    for pick in ["commit", "abort"] {
        let report = run(&program, |_| Data {
            pick,
            ..Data::default()
        })
        .await;
        assert!(report.is_success());
        let learned = report.outcomes[&Worker(2)]
            .trace
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Learned { from, label } => Some((*from, label.to_string())),
                _ => None,
            });
        assert_eq!(learned, Some((Coordinator, pick.to_owned())));
        let expected = if pick == "commit" {
            Some(Msg::Start)
        } else {
            Some(Msg::Stop)
        };
        assert_eq!(latest(&report, Worker(1), Coordinator), expected);
        if pick == "commit" {
            assert_eq!(
                latest(&report, Coordinator, Worker(2)),
                Some(Msg::Verdict(true))
            );
            assert_eq!(
                latest(&report, Coordinator, Worker(1)),
                Some(Msg::Verdict(false))
            );
        }
    }
}

#[tokio::test]
async fn loop_until_runs_as_many_rounds_as_the_decider_wants() {
    let family = Family::indexed("Worker", 2, Worker);
    let program = P::new().loop_until(
        Coordinator,
        P::new()
            .broadcast(Coordinator, &family, Msg::Start)
            .ext(RunWorkload {
                on: Worker(1),
                seconds: 1,
            }),
    );
    for rounds in [0u64, 1, 7] {
        let report = run(&program, |_| Data {
            rounds,
            ..Data::default()
        })
        .await;
        assert!(report.is_success());
        let worker = report.state(&Worker(1)).expect("state");
        assert_eq!(worker.data().counter.load(Ordering::SeqCst), rounds);
        let followed = report.outcomes[&Worker(0)]
            .trace
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Round { .. }))
            .count();
        assert_eq!(followed as u64, rounds);
    }
}

#[tokio::test]
async fn par_parts_run_concurrently() {
    // Run one after the other, the first part would wait forever for the second.
    let program = P::new().par([
        P::new()
            .ext(WaitForSignal(Backup))
            .send(Backup, Coordinator, Msg::Lsn(0)),
        P::new()
            .send(Coordinator, Backup, Msg::Start)
            .ext(RaiseSignal(Backup)),
    ]);
    let report = run(&program, |_| Data::default()).await;
    assert!(
        report.is_success(),
        "{:?}",
        report
            .failures()
            .map(|f| f.1.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(latest(&report, Backup, Coordinator), Some(Msg::Start));
}

#[tokio::test]
async fn a_timeout_fails_its_role_and_the_others_hear_of_it() {
    let program = P::new().send(Coordinator, Worker(0), Msg::Start).timeout(
        Worker(0),
        Duration::from_millis(50),
        P::new()
            .ext(RunWorkload {
                on: Worker(0),
                seconds: 3_600,
            })
            .send(Worker(0), Coordinator, Msg::Stop),
    );
    let report = run(&program, |_| Data::default()).await;
    let worker = report.outcomes[&Worker(0)]
        .result
        .as_ref()
        .expect_err("timed out");
    assert!(worker.timed_out());
    assert_eq!(worker.path, vec![1]);
    assert_eq!(
        worker.to_string(),
        "Worker(0) failed at timeout 50ms ([1]): timed out after 50ms"
    );
    let coordinator = report.outcomes[&Coordinator]
        .result
        .as_ref()
        .expect_err("peer failed");
    assert!(
        matches!(coordinator.error.kind(), RunErrorKind::PeerFailed { peer, .. } if peer == "Worker(0)"),
        "{coordinator}"
    );
}

#[tokio::test]
async fn families_of_1_4_16_workers_run_the_same_program() {
    for n in [1u16, 4, 16] {
        let family = Family::indexed("Worker", n, Worker);
        let program = P::new()
            .role(Coordinator)
            .family(&family)
            .broadcast(Coordinator, &family, Msg::Start)
            .ext(RunWorkload {
                on: Coordinator,
                seconds: 5,
            })
            .loop_n(
                3,
                P::new().gather(&family, Coordinator, Msg::Verdict(false)),
            )
            .broadcast(Coordinator, &family, Msg::Lsn(0));
        let report = run(&program, |_| Data::default()).await;
        assert!(report.is_success());
        assert_eq!(report.outcomes.len(), n as usize + 1);
        for i in 0..n {
            // The coordinator's LSN message carries its RunWorkload result.
            assert_eq!(latest(&report, Worker(i), Coordinator), Some(Msg::Lsn(5)));
        }
        let received = report.outcomes[&Coordinator]
            .trace
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Received { .. }))
            .count();
        assert_eq!(received, 3 * n as usize);
    }
}

#[tokio::test]
async fn a_failing_role_is_named_by_every_waiting_peer() {
    let family = Family::indexed("Worker", 4, Worker);
    let program = P::new()
        .broadcast(Coordinator, &family, Msg::Start)
        .ext(RunWorkload {
            on: Worker(2),
            seconds: 999,
        })
        .gather(&family, Coordinator, Msg::Verdict(true))
        .broadcast(Coordinator, &family, Msg::Stop);
    let report = run(&program, |_| Data::default()).await;
    let failed = report.outcomes[&Worker(2)]
        .result
        .as_ref()
        .expect_err("handler failed");
    assert!(matches!(
        failed.error.kind(),
        RunErrorKind::Extension(ExtensionError::Failed {
            effect: "RunWorkload",
            ..
        })
    ));
    assert!(
        failed
            .to_string()
            .contains("the server refused the connection"),
        "{failed}"
    );
    for role in [Coordinator, Worker(0), Worker(1), Worker(3)] {
        let error = report.outcomes[&role]
            .result
            .as_ref()
            .expect_err("peer failed");
        assert!(
            matches!(error.error.kind(), RunErrorKind::PeerFailed { peer, .. } if peer == "Worker(2)"),
            "{role:?}: {error}"
        );
    }
}

#[tokio::test]
async fn a_panicking_role_is_reported_not_propagated() {
    let program = P::new()
        .ext(RunWorkload {
            on: Backup,
            seconds: 666,
        })
        .send(Backup, Coordinator, Msg::Start);
    let report = run(&program, |_| Data::default()).await;
    assert!(report.state(&Backup).is_none());
    let error = report.outcomes[&Coordinator]
        .result
        .as_ref()
        .expect_err("peer panicked");
    assert!(
        matches!(error.error.kind(), RunErrorKind::PeerFailed { peer, reason } if peer == "Backup" && reason == "it panicked")
    );
}

#[tokio::test]
async fn an_unregistered_effect_names_its_type_and_role() {
    let program = P::new().ext(Checksum { on: vec![Backup] });
    let report = run(&program, |_| Data::default()).await;
    let error = report.outcomes[&Backup]
        .result
        .as_ref()
        .expect_err("no handler");
    assert_eq!(
        error.error.to_string(),
        "no handler is registered for extension effect Checksum (role Backup)"
    );
}

#[tokio::test]
async fn the_overall_deadline_ends_a_stuck_role() {
    let program = P::new().ext(RunWorkload {
        on: Backup,
        seconds: 3_600,
    });
    let registry = registry();
    let report = run_all(
        &program,
        |_| RoleSetup::with_registry(Data::default(), registry.clone()),
        RunConfig::default().with_deadline(Duration::from_millis(100)),
    )
    .await
    .expect("sound");
    assert!(
        report.outcomes[&Backup]
            .result
            .as_ref()
            .expect_err("deadline")
            .timed_out()
    );
}

#[tokio::test]
async fn unexpected_frames_and_labels_are_errors_not_panics() {
    use stormchor_choreography::{Label, Local, LocalProgram};
    use stormchor_runtime::{ExtensionRegistry, Interpreter, RoleState, Transport, memory_mesh};

    let registry = ExtensionRegistry::new();
    let branch = |labels: &[&str]| {
        LocalProgram::new(
            Backup,
            vec![Local::Branch {
                from: Coordinator,
                tell: vec![],
                branches: labels
                    .iter()
                    .map(|l| (Label::from(*l), Vec::new()))
                    .collect(),
                at: Default::default(),
            }],
        )
    };
    let run_backup = |local: LocalProgram<Role, Msg>, mut handler| {
        let registry = &registry;
        async move {
            let state = RoleState::new(Backup, [Coordinator, Backup], Data::default());
            Interpreter::new(&state, registry)
                .run(&local, &mut handler)
                .await
                .0
        }
    };

    // A message where a label is expected.
    let (mut handlers, _) = memory_mesh::<Role, Msg>(&[Coordinator, Backup]);
    let (mut coordinator, backup) = (handlers.remove(0), handlers.remove(0));
    coordinator
        .transport
        .send(Backup, Msg::Start)
        .await
        .expect("sent");
    let failure = run_backup(branch(&["x"]), backup)
        .await
        .expect_err("not a label");
    assert_eq!(
        failure.to_string(),
        "Backup failed at learn a branch from Coordinator: expected a branch label from Coordinator, but received message Start"
    );

    // A label the choice does not have.
    let (mut handlers, _) = memory_mesh::<Role, Msg>(&[Coordinator, Backup]);
    let (mut coordinator, backup) = (handlers.remove(0), handlers.remove(0));
    coordinator.transport.choose(Backup, 5).await.expect("sent");
    let failure = run_backup(branch(&["x", "y"]), backup)
        .await
        .expect_err("unknown label");
    assert!(
        matches!(
            failure.error.kind(),
            RunErrorKind::UnknownLabel {
                index: 5,
                count: 2,
                ..
            }
        ),
        "{failure}"
    );

    // A message of another kind than the program says.
    let (mut handlers, _) = memory_mesh::<Role, Msg>(&[Coordinator, Backup]);
    let (mut coordinator, backup) = (handlers.remove(0), handlers.remove(0));
    coordinator
        .transport
        .send(Backup, Msg::Lsn(3))
        .await
        .expect("sent");
    let recv = LocalProgram::new(
        Backup,
        vec![Local::Recv {
            from: Coordinator,
            msg: Msg::Start,
            at: Default::default(),
        }],
    );
    let failure = run_backup(recv, backup).await.expect_err("wrong kind");
    assert!(
        failure
            .to_string()
            .ends_with("expected message Start from Coordinator, but received message Lsn(3)"),
        "{failure}"
    );
}

/// Role data whose logic reads nothing while running.
struct Quiet;

impl stormchor_runtime::RoleLogic<Role, Msg> for Quiet {
    const READS_STATE: bool = false;
}

#[tokio::test]
async fn batched_values_still_reach_extension_handlers_and_the_final_state() {
    use std::sync::Mutex;
    use stormchor_runtime::{EffectFailure, ExtensionRegistry, RoleState};
    let seen: Arc<Mutex<Vec<Option<Msg>>>> = Arc::default();
    let mut registry: ExtensionRegistry<RoleState<Role, Msg, Quiet>> = ExtensionRegistry::new();
    let record = seen.clone();
    registry
        .register::<RunWorkload, (), _>(move |state, _| {
            let record = record.clone();
            Box::pin(async move {
                record
                    .lock()
                    .expect("lock")
                    .push(state.latest_from(&Coordinator));
                Ok::<_, EffectFailure>(())
            })
        })
        .expect("registered");
    let registry = Arc::new(registry);
    let program = P::new()
        .send(Coordinator, Worker(0), Msg::Rows(1))
        .ext(RunWorkload {
            on: Worker(0),
            seconds: 1,
        })
        .send(Coordinator, Worker(0), Msg::Rows(2));
    let report = run_all(
        &program,
        |_| RoleSetup::with_registry(Quiet, registry.clone()),
        RunConfig::default(),
    )
    .await
    .expect("sound");
    assert!(report.is_success());
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![Some(Msg::Rows(1))],
        "the handler saw the value received before it"
    );
    assert_eq!(
        report
            .state(&Worker(0))
            .and_then(|s| s.latest_from(&Coordinator)),
        Some(Msg::Rows(2))
    );
}
