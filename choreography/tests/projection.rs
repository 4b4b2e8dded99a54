//! Projection of every effect, and every error case.

mod common;

use std::time::Duration;

use common::*;
use stormchor_choreography::{
    CheckError, Family, Global, Label, Local, LoopControl, LoopKind, Path, Program,
    ProjectionError, SeededPolicy, Step, check, project, project_all,
};

type P = Program<Role, Msg>;

fn locals(program: &P) -> std::collections::BTreeMap<Role, Vec<Local<Role, Msg>>> {
    project_all(program)
        .expect("projects")
        .into_iter()
        .map(|(role, local)| (role, local.effects().to_vec()))
        .collect()
}

fn runs(program: &P) {
    let projected = project_all(program).expect("projects");
    for seed in 0..16 {
        check(&projected, &mut SeededPolicy::new(seed)).expect("runs to completion");
    }
}

fn send(to: Role, msg: Msg) -> Local<Role, Msg> {
    Local::Send {
        to,
        msg,
        at: Default::default(),
    }
}

fn recv(from: Role, msg: Msg) -> Local<Role, Msg> {
    Local::Recv {
        from,
        msg,
        at: Default::default(),
    }
}

fn workers(n: u16) -> Family<Role> {
    Family::indexed("Worker", n, Worker)
}

#[test]
fn send_projects_to_sender_and_receiver_only() {
    let program = P::new().with_roles([Coordinator, Backup, Worker(0)]).send(
        Coordinator,
        Worker(0),
        Msg::Start,
    );
    let l = locals(&program);
    assert_eq!(l[&Coordinator], vec![send(Worker(0), Msg::Start)]);
    assert_eq!(l[&Worker(0)], vec![recv(Coordinator, Msg::Start)]);
    assert_eq!(l[&Backup], vec![]);
    runs(&program);
}

#[test]
fn broadcast_and_gather_expand_per_member_in_order() {
    let family = workers(3);
    let program = P::new().broadcast(Coordinator, &family, Msg::Start).gather(
        &family,
        Coordinator,
        Msg::Rows(0),
    );
    let l = locals(&program);
    assert_eq!(
        l[&Coordinator],
        vec![
            send(Worker(0), Msg::Start),
            send(Worker(1), Msg::Start),
            send(Worker(2), Msg::Start),
            recv(Worker(0), Msg::Rows(0)),
            recv(Worker(1), Msg::Rows(0)),
            recv(Worker(2), Msg::Rows(0)),
        ]
    );
    assert_eq!(
        l[&Worker(1)],
        vec![
            recv(Coordinator, Msg::Start),
            send(Coordinator, Msg::Rows(0))
        ]
    );
    runs(&program);
}

#[test]
fn one_program_serves_any_family_size() {
    for n in [1u16, 4, 16, 64] {
        let family = workers(n);
        let program = P::new()
            .role(Coordinator)
            .family(&family)
            .broadcast(Coordinator, &family, Msg::Start)
            .gather(&family, Coordinator, Msg::Rows(0));
        let projected = project_all(&program).expect("projects");
        assert_eq!(projected.len(), n as usize + 1);
        let report = check(&projected, &mut SeededPolicy::new(1)).expect("runs");
        assert_eq!(report.messages, 2 * n as usize);
    }
}

#[test]
fn choice_informs_learners_and_merges_unaware_roles() {
    // The backup does the same in both branches; the worker learns from the coordinator.
    let program = P::new().send(Coordinator, Backup, Msg::Start).choice(
        Coordinator,
        [
            ("crash", P::new().send(Coordinator, Worker(0), Msg::Stop)),
            ("go", P::new().send(Coordinator, Worker(0), Msg::Start)),
        ],
    );
    let l = locals(&program);
    assert_eq!(
        l[&Coordinator][1],
        Local::Select {
            tell: vec![Worker(0)],
            branches: vec![
                (Label::from("crash"), vec![send(Worker(0), Msg::Stop)]),
                (Label::from("go"), vec![send(Worker(0), Msg::Start)]),
            ],
            at: Default::default(),
        }
    );
    assert_eq!(
        l[&Worker(0)],
        vec![Local::Branch {
            from: Coordinator,
            tell: vec![],
            branches: vec![
                (Label::from("crash"), vec![recv(Coordinator, Msg::Stop)]),
                (Label::from("go"), vec![recv(Coordinator, Msg::Start)]),
            ],
            at: Default::default(),
        }]
    );
    assert_eq!(l[&Backup], vec![recv(Coordinator, Msg::Start)]);
    runs(&program);
}

#[test]
fn identical_branches_merge_for_everyone_but_the_chooser() {
    let body = || P::new().send(Worker(0), Backup, Msg::Rows(1));
    let program = P::new().choice(Coordinator, [("a", body()), ("b", body())]);
    let l = locals(&program);
    assert_eq!(l[&Worker(0)], vec![send(Backup, Msg::Rows(1))]);
    assert_eq!(l[&Backup], vec![recv(Worker(0), Msg::Rows(1))]);
    assert!(matches!(&l[&Coordinator][0], Local::Select { tell, .. } if tell.is_empty()));
    runs(&program);
}

#[test]
fn knowledge_of_a_choice_travels_from_role_to_role() {
    let program = P::new().choice(
        Coordinator,
        [
            (
                "backup",
                P::new().send(Coordinator, Worker(0), Msg::Start).send(
                    Worker(0),
                    Backup,
                    Msg::Lsn(0),
                ),
            ),
            (
                "skip",
                P::new()
                    .send(Coordinator, Worker(0), Msg::Stop)
                    .send(Worker(0), Backup, Msg::Stop),
            ),
        ],
    );
    let l = locals(&program);
    assert!(
        matches!(&l[&Worker(0)][0], Local::Branch { from: Coordinator, tell, .. } if *tell == vec![Backup])
    );
    assert!(
        matches!(&l[&Backup][0], Local::Branch { from: Worker(0), tell, .. } if tell.is_empty())
    );
    runs(&program);
}

#[test]
fn a_role_that_acts_differently_without_being_told_is_rejected() {
    // The worker sends first in one branch: it cannot know which branch it is in.
    let program = P::new().choice(
        Coordinator,
        [
            ("a", P::new().send(Worker(0), Coordinator, Msg::Rows(1))),
            ("b", P::new().send(Coordinator, Worker(0), Msg::Stop)),
        ],
    );
    let err = project_all(&program).expect_err("unsound");
    match &err {
        ProjectionError::UnlearnedChoice {
            role,
            chooser,
            branch,
            path,
            ..
        } => {
            assert_eq!(role, "Worker(0)");
            assert_eq!(chooser, "Coordinator");
            assert_eq!(branch, "a");
            assert_eq!(*path, Path::from_steps(vec![Step::Index(0)]));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("its first action is `send Rows(1) to Coordinator`"),
        "{err}"
    );
}

#[test]
fn a_role_idle_in_one_branch_but_active_in_another_is_rejected() {
    let program = P::new().choice(
        Coordinator,
        [
            (
                "a",
                P::new()
                    .send(Coordinator, Backup, Msg::Start)
                    .send(Backup, Worker(0), Msg::Start),
            ),
            ("b", P::new().send(Coordinator, Backup, Msg::Stop)),
        ],
    );
    let err = project_all(&program).expect_err("unsound");
    assert!(
        matches!(&err, ProjectionError::UnlearnedChoice { role, branch, .. } if role == "Worker(0)" && branch == "b"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("it does nothing, but it acts in branch \"a\""),
        "{err}"
    );
}

#[test]
fn learning_from_different_roles_in_different_branches_is_rejected() {
    let program = P::new().choice(
        Coordinator,
        [
            (
                "a",
                P::new().send(Coordinator, Worker(0), Msg::Start).send(
                    Coordinator,
                    Backup,
                    Msg::Start,
                ),
            ),
            (
                "b",
                P::new()
                    .send(Coordinator, Backup, Msg::Stop)
                    .send(Backup, Worker(0), Msg::Stop),
            ),
        ],
    );
    let err = project_all(&program).expect_err("unsound");
    assert!(
        matches!(&err, ProjectionError::UnlearnedChoice { role, branch, .. } if role == "Worker(0)" && branch == "b"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("from the same role in every branch"),
        "{err}"
    );
}

#[test]
fn learning_from_a_role_that_does_not_know_is_rejected() {
    // Backup behaves the same in both branches, so it cannot tell the worker anything.
    let program = P::new().choice(
        Coordinator,
        [
            (
                "a",
                P::new().send(Backup, Worker(0), Msg::Start).send(
                    Worker(0),
                    Coordinator,
                    Msg::Rows(1),
                ),
            ),
            (
                "b",
                P::new().send(Backup, Worker(0), Msg::Start).send(
                    Worker(0),
                    Coordinator,
                    Msg::Rows(2),
                ),
            ),
        ],
    );
    let err = project_all(&program).expect_err("unsound");
    assert!(
        err.to_string()
            .contains("which does not know which branch was taken"),
        "{err}"
    );
}

#[test]
fn empty_choice_and_duplicate_labels_are_rejected() {
    let empty = P::new()
        .send(Coordinator, Backup, Msg::Start)
        .choice::<&str>(Coordinator, []);
    assert_eq!(
        project_all(&empty),
        Err(ProjectionError::EmptyChoice {
            chooser: "Coordinator".into(),
            path: Path::from_steps(vec![Step::Index(1)]),
        })
    );
    let dup = P::new().choice(Coordinator, [("x", P::new()), ("x", P::new())]);
    assert!(
        matches!(project_all(&dup), Err(ProjectionError::DuplicateLabel { label, .. }) if label == "x")
    );
}

#[test]
fn nested_errors_name_the_whole_path() {
    let inner = P::new().send(Worker(1), Worker(1), Msg::Start);
    let program = P::new().send(Coordinator, Worker(1), Msg::Start).loop_n(
        2,
        P::new().choice(
            Coordinator,
            [(
                "go",
                P::new()
                    .send(Coordinator, Worker(1), Msg::Start)
                    .par([P::new(), inner]),
            )],
        ),
    );
    let err = project_all(&program).expect_err("self-send");
    assert_eq!(
        err,
        ProjectionError::SelfSend {
            role: "Worker(1)".into(),
            path: Path::from_steps(vec![
                Step::Index(1),
                Step::Body,
                Step::Index(0),
                Step::Branch("go".into()),
                Step::Index(1),
                Step::Part(1),
                Step::Index(0),
            ]),
        }
    );
    assert_eq!(
        err.to_string(),
        "Worker(1) sends a message to itself at [1] > body > [0] > branch \"go\" > [1] > part 1 > [0]"
    );
}

#[test]
fn self_sends_in_broadcast_and_gather_are_rejected() {
    let family = Family::new("all", [Coordinator, Worker(0)]);
    let b = P::new().broadcast(Coordinator, &family, Msg::Start);
    assert!(
        matches!(project_all(&b), Err(ProjectionError::SelfSend { role, .. }) if role == "Coordinator")
    );
    let g = P::new().gather(&family, Worker(0), Msg::Start);
    assert!(
        matches!(project_all(&g), Err(ProjectionError::SelfSend { role, .. }) if role == "Worker(0)")
    );
}

#[test]
fn undeclared_and_unknown_roles_are_rejected() {
    let program = P::new()
        .role(Coordinator)
        .role(Worker(0))
        .send(Coordinator, Backup, Msg::Start);
    let err = project_all(&program).expect_err("Backup is not declared");
    assert_eq!(
        err,
        ProjectionError::UnknownRole {
            role: "Backup".into(),
            context: "receives".into(),
            path: Path::from_steps(vec![Step::Index(0)]),
        }
    );
    let fine = P::new().send(Coordinator, Worker(0), Msg::Start);
    assert!(
        matches!(project(&fine, Backup), Err(ProjectionError::UnknownRole { role, .. }) if role == "Backup")
    );
    let decider = P::new().role(Coordinator).loop_until(Backup, P::new());
    assert!(
        matches!(project_all(&decider), Err(ProjectionError::UnknownRole { context, .. }) if context == "decides a loop")
    );
    let ext = P::new().role(Coordinator).ext(RunWorkload {
        on: Worker(3),
        seconds: 1,
    });
    let err = project_all(&ext).expect_err("Worker(3) is not declared");
    assert!(
        err.to_string()
            .contains("takes part in the extension effect RunWorkload"),
        "{err}"
    );
}

#[test]
fn counted_loops_project_to_involved_roles_only() {
    let program = P::new()
        .with_roles([Coordinator, Backup, Worker(0)])
        .loop_n(3, P::new().send(Coordinator, Worker(0), Msg::Rows(0)))
        .loop_n(0, P::new().send(Coordinator, Worker(0), Msg::Stop));
    let l = locals(&program);
    assert_eq!(
        l[&Worker(0)],
        vec![Local::Loop {
            control: LoopControl::Count(3),
            body: vec![recv(Coordinator, Msg::Rows(0))],
            at: Default::default(),
        }]
    );
    assert_eq!(l[&Backup], vec![]);
    let report = check(
        &project_all(&program).expect("projects"),
        &mut SeededPolicy::new(0),
    )
    .expect("runs");
    assert_eq!(report.messages, 3);
}

#[test]
fn decided_loops_tell_every_involved_role_each_round() {
    let family = workers(2);
    let program = P::new()
        .with_roles([Coordinator, Backup])
        .family(&family)
        .loop_until(
            Coordinator,
            P::new().gather(&family, Coordinator, Msg::Rows(0)),
        );
    let l = locals(&program);
    assert_eq!(
        l[&Coordinator],
        vec![Local::Loop {
            control: LoopControl::Decide {
                tell: vec![Worker(0), Worker(1)]
            },
            body: vec![recv(Worker(0), Msg::Rows(0)), recv(Worker(1), Msg::Rows(0))],
            at: Default::default(),
        }]
    );
    assert_eq!(
        l[&Worker(1)],
        vec![Local::Loop {
            control: LoopControl::Follow {
                decider: Coordinator
            },
            body: vec![send(Coordinator, Msg::Rows(0))],
            at: Default::default(),
        }]
    );
    assert_eq!(l[&Backup], vec![]);
    runs(&program);
}

#[test]
fn par_runs_parts_concurrently_and_inlines_single_parts() {
    let program = P::new().par([
        P::new().send(Coordinator, Worker(0), Msg::Start).send(
            Worker(0),
            Coordinator,
            Msg::Rows(0),
        ),
        P::new().send(Coordinator, Backup, Msg::Start),
    ]);
    let l = locals(&program);
    assert_eq!(
        l[&Coordinator],
        vec![Local::Par {
            parts: vec![
                vec![send(Worker(0), Msg::Start), recv(Worker(0), Msg::Rows(0))],
                vec![send(Backup, Msg::Start)],
            ],
        }]
    );
    assert_eq!(l[&Backup], vec![recv(Coordinator, Msg::Start)]);
    runs(&program);
}

#[test]
fn parallel_parts_sharing_a_channel_are_rejected() {
    let program = P::new().par([
        P::new().send(Coordinator, Worker(0), Msg::Start),
        P::new().send(Coordinator, Backup, Msg::Start),
        P::new().send(Coordinator, Worker(0), Msg::Stop),
    ]);
    let err = project_all(&program).expect_err("race");
    assert_eq!(
        err.to_string(),
        "parts 0 and 2 of the par at [0] both use the channel Coordinator -> Worker(0)"
    );
    // Opposite directions are different channels.
    let ok = P::new().par([
        P::new().send(Coordinator, Worker(0), Msg::Start),
        P::new().send(Worker(0), Coordinator, Msg::Stop),
    ]);
    runs(&ok);
}

#[test]
fn label_messages_count_as_channel_use_in_par() {
    let choice = || {
        P::new().choice(
            Coordinator,
            [
                ("a", P::new().send(Coordinator, Worker(0), Msg::Start)),
                ("b", P::new().send(Coordinator, Worker(0), Msg::Stop)),
            ],
        )
    };
    let program = P::new().par([
        choice(),
        P::new().send(Coordinator, Worker(0), Msg::Rows(1)),
    ]);
    assert!(matches!(
        project_all(&program),
        Err(ProjectionError::ParallelChannelRace { .. })
    ));
}

#[test]
fn timeouts_bound_their_role_only() {
    let body = P::new().send(Coordinator, Worker(0), Msg::Start).send(
        Worker(0),
        Coordinator,
        Msg::Rows(0),
    );
    let program = P::new().timeout(Coordinator, Duration::from_secs(5), body);
    let l = locals(&program);
    assert_eq!(
        l[&Coordinator],
        vec![Local::Timeout {
            duration: Duration::from_secs(5),
            body: vec![send(Worker(0), Msg::Start), recv(Worker(0), Msg::Rows(0))],
            at: Default::default(),
        }]
    );
    assert_eq!(
        l[&Worker(0)],
        vec![
            recv(Coordinator, Msg::Start),
            send(Coordinator, Msg::Rows(0))
        ]
    );
    runs(&program);
    let zero = P::new().timeout(
        Coordinator,
        Duration::ZERO,
        P::new().send(Coordinator, Backup, Msg::Start),
    );
    assert!(matches!(
        project_all(&zero),
        Err(ProjectionError::ZeroTimeout { .. })
    ));
}

#[test]
fn extensions_go_to_their_participants_in_global_order() {
    let program = P::new()
        .ext(RunWorkload {
            on: Worker(0),
            seconds: 30,
        })
        .send(Worker(0), Backup, Msg::Lsn(0))
        .ext(LogPhase("backup"))
        .ext(Checksum {
            on: vec![Backup, Coordinator],
        })
        .ext(Foreign { on: "someone else" });
    let projected = project_all(&program).expect("projects");
    let names = |role: Role| -> Vec<String> {
        projected[&role]
            .effects()
            .iter()
            .map(|e| match e {
                Local::Ext(ext) => ext.type_name().to_owned(),
                Local::Send { .. } => "send".to_owned(),
                Local::Recv { .. } => "recv".to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    // The send already orders RunWorkload before Backup's LogPhase; every other
    // hand-over is an order frame, whose origin is the effect it orders.
    assert_eq!(
        names(Worker(0)),
        [
            "RunWorkload",
            "send",
            "LogPhase",
            "OrderSend { to: Coordinator, at: [3] }"
        ]
    );
    assert_eq!(
        names(Backup),
        [
            "recv",
            "OrderSend { to: Coordinator, at: [2] }",
            "LogPhase",
            "OrderSend { to: Coordinator, at: [3] }",
            "OrderRecv { from: Coordinator, at: [3] }",
            "Checksum"
        ]
    );
    assert_eq!(
        names(Coordinator),
        [
            "OrderRecv { from: Backup, at: [2] }",
            "LogPhase",
            "OrderRecv { from: Backup, at: [3] }",
            "OrderRecv { from: Worker(0), at: [3] }",
            "OrderSend { to: Backup, at: [3] }",
            "Checksum"
        ]
    );
    let workload = match &projected[&Worker(0)].effects()[0] {
        Local::Ext(ext) => ext.downcast_ref::<RunWorkload>().map(|w| w.seconds),
        _ => None,
    };
    assert_eq!(workload, Some(30));
    let report = check(&projected, &mut SeededPolicy::new(0)).expect("runs");
    assert_eq!(report.extensions.len(), 6);
}

#[test]
fn an_extension_in_one_branch_makes_its_role_learn() {
    let program = P::new().choice(
        Coordinator,
        [
            (
                "load",
                P::new()
                    .send(Coordinator, Worker(0), Msg::Start)
                    .ext(RunWorkload {
                        on: Worker(0),
                        seconds: 1,
                    }),
            ),
            ("idle", P::new().send(Coordinator, Worker(0), Msg::Start)),
        ],
    );
    // The worker's first action is the same receive in both branches, so it learns from it.
    let l = locals(&program);
    assert!(matches!(
        &l[&Worker(0)][0],
        Local::Branch {
            from: Coordinator,
            ..
        }
    ));
    runs(&program);
    let untold = P::new().choice(
        Coordinator,
        [
            (
                "load",
                P::new().ext(RunWorkload {
                    on: Worker(0),
                    seconds: 1,
                }),
            ),
            ("idle", P::new()),
        ],
    );
    let err = project_all(&untold).expect_err("worker cannot know");
    assert!(
        err.to_string().contains("extension effect RunWorkload"),
        "{err}"
    );
}

#[test]
fn then_composes_and_keeps_declarations() {
    let first = P::new()
        .role(Backup)
        .send(Coordinator, Worker(0), Msg::Start);
    let second = P::new()
        .role(Worker(1))
        .send(Worker(0), Coordinator, Msg::Rows(0));
    let program = first.then(second).end();
    assert_eq!(program.effects().len(), 2);
    assert_eq!(
        program.declared_roles().iter().copied().collect::<Vec<_>>(),
        vec![Backup, Worker(1)]
    );
    // Declared roles make the used-but-undeclared ones unknown.
    assert!(matches!(
        project_all(&program),
        Err(ProjectionError::UnknownRole { .. })
    ));
    let complete = program.clone().with_roles([Coordinator, Worker(0)]);
    assert_eq!(project_all(&complete).expect("projects").len(), 4);
}

#[test]
fn programs_are_inspectable() {
    let family = workers(3);
    let program = P::new()
        .broadcast(Coordinator, &family, Msg::Start)
        .loop_until(
            Coordinator,
            P::new().choice(
                Coordinator,
                [
                    ("a", P::new().send(Coordinator, Backup, Msg::Stop)),
                    ("b", P::new()),
                ],
            ),
        )
        .par([
            P::new().ext(LogPhase("x")),
            P::new().timeout(Backup, Duration::from_secs(1), P::new()),
        ])
        .gather(&family, Coordinator, Msg::Verdict(true));
    let counts = program.counts();
    assert_eq!(
        (
            counts.sends,
            counts.broadcasts,
            counts.gathers,
            counts.choices,
            counts.loops,
            counts.pars,
            counts.timeouts,
            counts.extensions
        ),
        (1, 1, 1, 1, 1, 1, 1, 1)
    );
    assert_eq!(counts.total(), 8);
    assert_eq!(counts.messages, 7);
    assert_eq!(program.roles().len(), 5);
    let mut paths = Vec::new();
    program.walk(|path, effect| {
        if matches!(effect, Global::Send { .. }) {
            paths.push(path.to_string());
        }
    });
    assert_eq!(paths, ["[1] > body > [0] > branch \"a\" > [0]"]);
    assert!(matches!(
        program.effects()[1],
        Global::Loop {
            kind: LoopKind::Until {
                decider: Coordinator
            },
            ..
        }
    ));
}

#[test]
fn the_checker_reports_deadlock_orphans_and_wrong_labels() {
    let program = P::new().send(Coordinator, Worker(0), Msg::Start).choice(
        Coordinator,
        [
            ("a", P::new().send(Coordinator, Worker(0), Msg::Stop)),
            ("b", P::new().send(Coordinator, Worker(0), Msg::Rows(1))),
        ],
    );
    let projected = project_all(&program).expect("projects");

    let mut deadlock = projected.clone();
    deadlock
        .get_mut(&Coordinator)
        .expect("role")
        .effects_mut()
        .remove(1);
    let err = check(&deadlock, &mut SeededPolicy::new(0)).expect_err("worker waits");
    assert!(
        matches!(&err, CheckError::Deadlock { waiting } if waiting[0] == "Worker(0) waits for a label from Coordinator"),
        "{err}"
    );

    let mut swapped = projected.clone();
    swapped
        .get_mut(&Coordinator)
        .expect("role")
        .effects_mut()
        .remove(0);
    let err = check(&swapped, &mut SeededPolicy::new(0)).expect_err("label arrives first");
    assert!(matches!(err, CheckError::UnexpectedMessage { .. }), "{err}");

    let mut orphan = projected.clone();
    orphan
        .get_mut(&Coordinator)
        .expect("role")
        .effects_mut()
        .insert(0, send(Worker(0), Msg::Lsn(9)));
    orphan
        .get_mut(&Worker(0))
        .expect("role")
        .effects_mut()
        .push(recv(Coordinator, Msg::Lsn(9)));
    // The worker expects Start first but gets Lsn.
    assert!(matches!(
        check(&orphan, &mut SeededPolicy::new(0)),
        Err(CheckError::UnexpectedMessage { .. })
    ));

    let mut extra = projected.clone();
    extra
        .get_mut(&Coordinator)
        .expect("role")
        .effects_mut()
        .push(send(Worker(0), Msg::Lsn(9)));
    let err = check(&extra, &mut SeededPolicy::new(0)).expect_err("unread message");
    assert!(
        matches!(&err, CheckError::Orphans { messages } if messages[0].contains("Lsn(9)")),
        "{err}"
    );

    let mut relabel = projected;
    if let Some(Local::Branch { branches, .. }) = relabel
        .get_mut(&Worker(0))
        .expect("role")
        .effects_mut()
        .get_mut(1)
    {
        branches[0].0 = Label::from("renamed");
        branches[1].0 = Label::from("renamed too");
    }
    let err = check(&relabel, &mut SeededPolicy::new(0)).expect_err("unknown label");
    assert!(matches!(err, CheckError::UnexpectedLabel { .. }), "{err}");
}

#[test]
fn long_flat_programs_project_without_recursion() {
    // Well past the size where recursive projectors overflow the stack.
    let mut program = P::new();
    for i in 0..20_000u64 {
        program = program.send(Coordinator, Worker((i % 4) as u16), Msg::Rows(i));
    }
    let projected = project_all(&program).expect("projects");
    assert_eq!(projected[&Coordinator].effects().len(), 20_000);
    assert_eq!(projected[&Worker(3)].effects().len(), 5_000);
}

#[test]
fn deeply_nested_programs_project_without_recursion() {
    let mut program = P::new().send(Coordinator, Worker(0), Msg::Start);
    for _ in 0..1_500 {
        program = P::new().loop_n(1, program);
    }
    let projected = project_all(&program).expect("projects");
    assert_eq!(projected[&Worker(0)].size(), 1_501);
    check(&projected, &mut SeededPolicy::new(0)).expect("runs");
}
