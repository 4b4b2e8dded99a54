//! Effects that start now and finish later (`ext_start` .. `ext_finish`), construct by
//! construct: projection checks the handles, orders starts and finishes like effects
//! of their own, and the checker catches a frame, a start or a finish taken out.

mod common;

use std::time::Duration;

use common::*;
use stormchor_choreography::{
    CheckError, Local, Program, ProjectionError, Projections, SeededPolicy, Stage, check,
    order_frames, project_all,
};

type P = Program<Role, Msg>;

fn on(role: Role) -> RunWorkload {
    RunWorkload {
        on: role,
        seconds: 1,
    }
}

fn runs(locals: &Projections<Role, Msg>) {
    for seed in 0..32 {
        check(locals, &mut SeededPolicy::new(seed)).expect("runs, in effect order");
    }
}

/// The stages of a role's top-level extension effects, as text.
fn stages(locals: &Projections<Role, Msg>, role: Role) -> Vec<String> {
    locals[&role]
        .effects()
        .iter()
        .map(|effect| match effect {
            Local::Ext(ext) => match ext.stage() {
                Stage::Whole => format!("ext {}", ext.type_name()),
                Stage::Start(h) => format!("start {h} {}", ext.type_name()),
                Stage::Finish(h) => format!("finish {h} {}", ext.type_name()),
            },
            Local::OrderSend { to, .. } => format!("to {to:?}"),
            Local::OrderRecv { from, .. } => format!("from {from:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// Takes out the first top-level effect of `role` matching `pred`.
fn without(
    locals: &Projections<Role, Msg>,
    role: Role,
    pred: impl Fn(&Local<Role, Msg>) -> bool,
) -> Projections<Role, Msg> {
    let mut broken = locals.clone();
    let effects = broken.get_mut(&role).expect("role").effects_mut();
    let index = effects.iter().position(pred).expect("such an effect");
    effects.remove(index);
    broken
}

fn violated(broken: &Projections<Role, Msg>) -> CheckError {
    (0..64)
        .find_map(|seed| check(broken, &mut SeededPolicy::new(seed)).err())
        .expect("some execution fails")
}

#[test]
fn a_started_effect_lets_others_go_on_and_its_finish_is_a_step_of_its_own() {
    // Backup starts a long effect; the coordinator's effect runs once it has started,
    // and Backup's finish comes after the coordinator's effect.
    let program = P::new()
        .ext_start(on(Backup), "load")
        .ext(on(Coordinator))
        .ext_finish("load");
    let locals = project_all(&program).expect("sound");
    assert_eq!(
        stages(&locals, Backup),
        [
            "start load RunWorkload",
            "to Coordinator",
            "from Coordinator",
            "finish load RunWorkload"
        ]
    );
    assert_eq!(
        stages(&locals, Coordinator),
        ["from Backup", "ext RunWorkload", "to Backup"]
    );
    assert_eq!(order_frames(&program).expect("sound").total(), 2);
    runs(&locals);
    // Each frame is needed.
    let early = without(&locals, Backup, |e| matches!(e, Local::OrderSend { .. }));
    let early = {
        let mut e = early;
        let c = e.get_mut(&Coordinator).expect("c").effects_mut();
        c.remove(0);
        e
    };
    assert!(matches!(
        violated(&early),
        CheckError::OrderViolation { .. }
    ));
    let late = without(&locals, Coordinator, |e| {
        matches!(e, Local::OrderSend { .. })
    });
    let late = {
        let mut l = late;
        let b = l.get_mut(&Backup).expect("b").effects_mut();
        let i = b
            .iter()
            .position(|e| matches!(e, Local::OrderRecv { .. }))
            .expect("recv");
        b.remove(i);
        l
    };
    let error = violated(&late);
    assert!(
        matches!(error, CheckError::OrderViolation { .. })
            && error.to_string().contains("RunWorkload at [2]"),
        "{error}"
    );
}

#[test]
fn the_checker_catches_a_start_or_a_finish_taken_out() {
    let program = P::new()
        .ext_start(on(Backup), "load")
        .send(Backup, Coordinator, Msg::Start)
        .ext_finish("load");
    let locals = project_all(&program).expect("sound");
    runs(&locals);
    let no_finish = without(
        &locals,
        Backup,
        |e| matches!(e, Local::Ext(x) if matches!(x.stage(), Stage::Finish(_))),
    );
    assert_eq!(
        violated(&no_finish).to_string(),
        "Backup ends while the effect it started as `load` still runs"
    );
    let no_start = without(
        &locals,
        Backup,
        |e| matches!(e, Local::Ext(x) if matches!(x.stage(), Stage::Start(_))),
    );
    assert_eq!(
        violated(&no_start).to_string(),
        "Backup finishes `load`, but no effect it started as `load` runs"
    );
}

#[test]
fn a_finish_has_its_starts_roles() {
    let program = P::new()
        .ext_start(
            Checksum {
                on: vec![Backup, Worker(0)],
            },
            "sum",
        )
        .send(Coordinator, Backup, Msg::Start)
        .ext_finish("sum");
    let locals = project_all(&program).expect("sound");
    for role in [Backup, Worker(0)] {
        assert!(
            stages(&locals, role).contains(&"finish sum Checksum".to_owned()),
            "{role:?}: {:?}",
            stages(&locals, role)
        );
    }
    assert!(
        !stages(&locals, Coordinator)
            .iter()
            .any(|s| s.starts_with("finish"))
    );
    runs(&locals);
}

#[test]
fn every_construct_holds_starts_finished_in_the_same_block() {
    let inside = |p: P| {
        p.ext_start(on(Backup), "h")
            .ext(on(Coordinator))
            .ext_finish("h")
    };
    let programs = [
        P::new().choice(
            Coordinator,
            [
                ("a", inside(P::new().send(Coordinator, Backup, Msg::Start))),
                ("b", P::new().send(Coordinator, Backup, Msg::Stop)),
            ],
        ),
        P::new().loop_n(3, inside(P::new())),
        P::new().loop_until(Coordinator, inside(P::new())),
        P::new().par([inside(P::new()), P::new().ext(on(Worker(0)))]),
        P::new().timeout(Backup, Duration::from_secs(5), inside(P::new())),
        // A sub-program composed with `then` finishes what the first one started.
        P::new()
            .ext_start(on(Backup), "h")
            .then(P::new().ext(on(Coordinator)).ext_finish("h")),
        // A handle is free again once finished, in the same round too.
        inside(inside(P::new())),
    ];
    for program in programs {
        let locals = project_all(&program).unwrap_or_else(|e| panic!("{e}\n{program:#?}"));
        runs(&locals);
    }
}

#[test]
fn a_start_not_finished_on_every_path_is_rejected_with_its_place() {
    let cases: Vec<(P, &str)> = vec![
        (
            P::new().ext_start(on(Backup), "h").ext(on(Coordinator)),
            "the effect started as `h` at [0] is not finished in the program: \
             every start needs its `ext finish h` on every path, in the same block",
        ),
        (
            P::new()
                .choice(
                    Coordinator,
                    [
                        (
                            "a",
                            P::new()
                                .send(Coordinator, Backup, Msg::Start)
                                .ext_start(on(Backup), "h"),
                        ),
                        ("b", P::new().send(Coordinator, Backup, Msg::Stop)),
                    ],
                )
                .ext_finish("h"),
            "the effect started as `h` at [0] > branch \"a\" > [1] is not finished in branch \"a\" \
             of the choice: every start needs its `ext finish h` on every path, in the same block",
        ),
        (
            P::new().loop_n(2, P::new().ext_start(on(Backup), "h")),
            "the effect started as `h` at [0] > body > [0] is not finished in the loop's round: \
             every start needs its `ext finish h` on every path, in the same block",
        ),
        (
            P::new().par([
                P::new().ext_start(on(Backup), "h"),
                P::new().ext(on(Coordinator)),
            ]),
            "the effect started as `h` at [0] > part 0 > [0] is not finished in part 0 of the par: \
             every start needs its `ext finish h` on every path, in the same block",
        ),
    ];
    for (program, message) in cases {
        let error = project_all(&program).expect_err("unfinished");
        assert!(
            matches!(error, ProjectionError::UnfinishedStart { .. }),
            "{error}"
        );
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn a_finish_of_nothing_running_is_rejected() {
    let cases: Vec<(P, &str)> = vec![
        (
            P::new().ext(on(Backup)).ext_finish("h"),
            "`ext finish h` at [1] finishes nothing: no effect was started as `h` before it",
        ),
        (
            P::new()
                .ext_start(on(Backup), "h")
                .ext_finish("h")
                .ext_finish("h"),
            "`ext finish h` at [2] finishes nothing: it was finished already at [1]",
        ),
        (
            P::new().ext_start(on(Backup), "h").choice(
                Coordinator,
                [
                    (
                        "a",
                        P::new()
                            .send(Coordinator, Backup, Msg::Start)
                            .ext_finish("h"),
                    ),
                    (
                        "b",
                        P::new()
                            .send(Coordinator, Backup, Msg::Stop)
                            .ext_finish("h"),
                    ),
                ],
            ),
            "`ext finish h` at [1] > branch \"a\" > [1] finishes nothing: it was started at [0], \
             outside branch \"a\" of the choice: finish it in the same block it starts in",
        ),
    ];
    for (program, message) in cases {
        let error = project_all(&program).expect_err("nothing to finish");
        assert!(
            matches!(error, ProjectionError::UnknownFinish { .. }),
            "{error}"
        );
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn a_handle_in_use_cannot_be_started_again() {
    let twice = P::new()
        .ext_start(on(Backup), "h")
        .ext_start(on(Coordinator), "h")
        .ext_finish("h");
    let error = project_all(&twice).expect_err("in use");
    assert_eq!(
        error.to_string(),
        "`h` is started at [1] while the effect started as `h` at [0] still runs"
    );
    let nested = P::new()
        .ext_start(on(Backup), "h")
        .loop_n(2, P::new().ext_start(on(Backup), "h").ext_finish("h"))
        .ext_finish("h");
    assert!(matches!(
        project_all(&nested),
        Err(ProjectionError::HandleInUse { .. })
    ));
    let parts = P::new().par([
        P::new().ext_start(on(Backup), "h").ext_finish("h"),
        P::new().ext_start(on(Coordinator), "h").ext_finish("h"),
    ]);
    assert_eq!(
        project_all(&parts).expect_err("two parts").to_string(),
        "`h` is started at [0] > part 1 while the effect started as `h` at [0] > part 0 still runs"
    );
}
