//! Effect order, construct by construct: where projection puts order frames, that the
//! checker accepts the projections, and that it reports an order violation once a
//! frame is taken out.

mod common;

use std::time::Duration;

use common::*;
use stormchor_choreography::{
    At, CheckError, Family, Local, Program, Projections, SeededPolicy, check, order_frames,
    project_all,
};

type P = Program<Role, Msg>;

fn on(role: Role) -> RunWorkload {
    RunWorkload {
        on: role,
        seconds: 1,
    }
}

fn frames_of(locals: &Projections<Role, Msg>, role: Role) -> Vec<String> {
    fn walk(effects: &[Local<Role, Msg>], out: &mut Vec<String>) {
        for effect in effects {
            match effect {
                Local::OrderSend { to, .. } => out.push(format!("to {to:?}")),
                Local::OrderRecv { from, .. } => out.push(format!("from {from:?}")),
                Local::Select { branches, .. } | Local::Branch { branches, .. } => {
                    branches.iter().for_each(|(_, b)| walk(b, out))
                }
                Local::Loop { body, .. } | Local::Timeout { body, .. } => walk(body, out),
                Local::Par { parts } => parts.iter().for_each(|p| walk(p, out)),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(locals[&role].effects(), &mut out);
    out
}

/// Sound under many seeds.
fn runs(locals: &Projections<Role, Msg>) {
    for seed in 0..32 {
        check(locals, &mut SeededPolicy::new(seed)).expect("effect order holds");
    }
}

/// With the first order frame from `from` to `to` taken out at both ends, some seed
/// reports an order violation.
fn needed(locals: &Projections<Role, Msg>, from: Role, to: Role) {
    let mut broken = locals.clone();
    let strip = |effects: &mut Vec<Local<Role, Msg>>, pred: &dyn Fn(&Local<Role, Msg>) -> bool| {
        fn go(
            effects: &mut Vec<Local<Role, Msg>>,
            pred: &dyn Fn(&Local<Role, Msg>) -> bool,
        ) -> bool {
            if let Some(i) = effects.iter().position(pred) {
                effects.remove(i);
                return true;
            }
            effects.iter_mut().any(|effect| match effect {
                Local::Select { branches, .. } | Local::Branch { branches, .. } => {
                    branches.iter_mut().any(|(_, b)| go(b, pred))
                }
                Local::Loop { body, .. } | Local::Timeout { body, .. } => go(body, pred),
                Local::Par { parts } => parts.iter_mut().any(|p| go(p, pred)),
                _ => false,
            })
        }
        assert!(go(effects, pred), "no such frame");
    };
    strip(
        broken.get_mut(&from).expect("sender").effects_mut(),
        &|e| matches!(e, Local::OrderSend { to: t, .. } if *t == to),
    );
    strip(
        broken.get_mut(&to).expect("receiver").effects_mut(),
        &|e| matches!(e, Local::OrderRecv { from: f, .. } if *f == from),
    );
    let violation = (0..64).find_map(|seed| check(&broken, &mut SeededPolicy::new(seed)).err());
    assert!(
        matches!(violation, Some(CheckError::OrderViolation { .. })),
        "{violation:?}"
    );
}

#[test]
fn a_sequence_hands_over_with_one_frame() {
    let program = P::new().ext(on(Coordinator)).ext(on(Backup));
    let locals = project_all(&program).expect("sound");
    assert_eq!(frames_of(&locals, Coordinator), ["to Backup"]);
    assert_eq!(frames_of(&locals, Backup), ["from Coordinator"]);
    runs(&locals);
    needed(&locals, Coordinator, Backup);
    let error = {
        let mut broken = locals.clone();
        broken
            .get_mut(&Coordinator)
            .expect("c")
            .effects_mut()
            .remove(1);
        broken.get_mut(&Backup).expect("b").effects_mut().remove(0);
        check(&broken, &mut SeededPolicy::new(0)).expect_err("out of order")
    };
    assert_eq!(
        error.to_string(),
        "effect order violated: Backup started RunWorkload at [1] while RunWorkload at [0] \
         had finished at 0 of its 1 roles"
    );
}

#[test]
fn messages_that_already_order_the_effects_need_no_frame() {
    let program = P::new()
        .ext(on(Coordinator))
        .send(Coordinator, Backup, Msg::Start)
        .ext(on(Backup))
        .send(Backup, Worker(0), Msg::Lsn(0))
        .ext(Checksum {
            on: vec![Worker(0)],
        });
    let locals = project_all(&program).expect("sound");
    assert_eq!(order_frames(&program).expect("sound").total(), 0);
    runs(&locals);
    // A message before the effect (not after it) does not order it.
    let early = P::new()
        .send(Coordinator, Backup, Msg::Start)
        .ext(on(Coordinator))
        .ext(on(Backup));
    assert_eq!(order_frames(&early).expect("sound").total(), 1);
}

#[test]
fn one_role_in_a_row_needs_nothing_and_unordered_effects_add_nothing() {
    let program = P::new().ext(on(Backup)).ext(Checksum { on: vec![Backup] });
    assert_eq!(order_frames(&program).expect("sound").total(), 0);
}

#[test]
fn every_participant_of_a_family_effect_waits() {
    let workers = Family::indexed("Worker", 3, Worker);
    let program = P::new()
        .family(&workers)
        .role(Coordinator)
        .ext(on(Coordinator))
        .ext(Checksum {
            on: workers.members().to_vec(),
        })
        .ext(on(Coordinator));
    let locals = project_all(&program).expect("sound");
    assert_eq!(
        frames_of(&locals, Coordinator),
        [
            "to Worker(0)",
            "to Worker(1)",
            "to Worker(2)",
            "from Worker(0)",
            "from Worker(1)",
            "from Worker(2)"
        ]
    );
    runs(&locals);
    needed(&locals, Coordinator, Worker(1));
    needed(&locals, Worker(2), Coordinator);
}

#[test]
fn a_choice_orders_each_branch_and_what_follows() {
    let program = P::new()
        .ext(on(Worker(0)))
        .choice(
            Coordinator,
            [
                (
                    "a",
                    P::new()
                        .send(Coordinator, Backup, Msg::Start)
                        .ext(on(Backup)),
                ),
                ("b", P::new().send(Coordinator, Backup, Msg::Stop)),
            ],
        )
        .ext(on(Coordinator));
    let locals = project_all(&program).expect("sound");
    // Worker(0)'s effect is older than the choice: its frame goes before it, so the
    // worker need not learn the pick. After the choice, the coordinator waits for
    // Backup, which knows both branch a's last effect and Worker(0)'s (branch b lets
    // it through).
    assert_eq!(frames_of(&locals, Worker(0)), ["to Backup"]);
    assert!(matches!(
        locals[&Worker(0)].effects()[1],
        Local::OrderSend { to: Backup, .. }
    ));
    assert_eq!(
        frames_of(&locals, Backup),
        ["from Worker(0)", "to Coordinator"]
    );
    runs(&locals);
    needed(&locals, Worker(0), Backup);
    needed(&locals, Backup, Coordinator);
}

#[test]
fn a_counted_loop_orders_the_last_effects_of_a_round_before_the_next() {
    let program = P::new().loop_n(3, P::new().ext(on(Coordinator)).ext(on(Backup)));
    let locals = project_all(&program).expect("sound");
    // Backup -> Coordinator at a round's start (the round before is over), then the
    // hand-over inside the round.
    assert_eq!(
        frames_of(&locals, Coordinator),
        ["from Backup", "to Backup"]
    );
    runs(&locals);
    needed(&locals, Backup, Coordinator);
    needed(&locals, Coordinator, Backup);
    // One round: nothing to order across rounds.
    let once = P::new().loop_n(1, P::new().ext(on(Coordinator)).ext(on(Backup)));
    assert_eq!(order_frames(&once).expect("sound").total(), 1);
}

#[test]
fn a_decided_loop_orders_its_rounds_and_what_follows() {
    let program = P::new()
        .ext(on(Worker(0)))
        .loop_until(Coordinator, P::new().ext(on(Backup)).ext(on(Worker(0))))
        .ext(on(Coordinator));
    let locals = project_all(&program).expect("sound");
    runs(&locals);
    for (from, to) in [(Worker(0), Backup), (Backup, Worker(0))] {
        needed(&locals, from, to);
    }
    // The coordinator's effect after the loop waits for the last round (or, with no
    // round, for the effect before the loop).
    assert!(frames_of(&locals, Coordinator).contains(&"from Worker(0)".to_owned()));
    needed(&locals, Worker(0), Coordinator);
}

#[test]
fn parts_of_a_par_are_not_ordered_but_what_follows_waits_for_all() {
    let program = P::new()
        .ext(on(Coordinator))
        .par([P::new().ext(on(Backup)), P::new().ext(on(Worker(0)))])
        .ext(on(Worker(1)));
    let locals = project_all(&program).expect("sound");
    // Frames for what came before the par are sent before it.
    assert_eq!(
        frames_of(&locals, Coordinator),
        ["to Backup", "to Worker(0)"]
    );
    assert!(matches!(
        locals[&Coordinator].effects()[1],
        Local::OrderSend { .. }
    ));
    // Backup and Worker(0) do not wait for each other; Worker(1) waits for both.
    assert_eq!(
        frames_of(&locals, Worker(1)),
        ["from Backup", "from Worker(0)"]
    );
    runs(&locals);
    needed(&locals, Coordinator, Backup);
    needed(&locals, Worker(0), Worker(1));
}

#[test]
fn a_frame_that_would_share_a_channel_between_parts_is_an_error() {
    // Inside part 0, Backup's effect must wait for the coordinator's, but part 1 uses
    // the channel Coordinator -> Backup.
    let program = P::new().par([
        P::new().ext(on(Coordinator)).ext(on(Backup)),
        P::new().send(Coordinator, Backup, Msg::Start),
    ]);
    let error = project_all(&program).expect_err("race");
    assert!(
        error
            .to_string()
            .contains("needs an order frame from Coordinator to Backup"),
        "{error}"
    );
}

#[test]
fn a_timeout_body_is_ordered_like_any_sequence() {
    let program = P::new().ext(on(Coordinator)).timeout(
        Backup,
        Duration::from_secs(5),
        P::new().ext(on(Backup)),
    );
    let locals = project_all(&program).expect("sound");
    // The wait is inside Backup's bounded share.
    assert!(matches!(
        &locals[&Backup].effects()[0],
        Local::Timeout { body, .. } if matches!(body[0], Local::OrderRecv { from: Coordinator, .. })
    ));
    runs(&locals);
    needed(&locals, Coordinator, Backup);
}

#[test]
fn composed_sub_programs_are_ordered_across_the_seam() {
    let first = P::new().ext(on(Coordinator));
    let second = P::new().ext(on(Backup));
    let composed = first.then(second);
    let locals = project_all(&composed).expect("sound");
    assert_eq!(frames_of(&locals, Backup), ["from Coordinator"]);
    runs(&locals);
}

#[test]
fn effects_with_named_roles_and_no_role_are_handled() {
    // `At` with no role takes part nowhere: nothing to order.
    let program = P::new()
        .ext(on(Coordinator))
        .ext(At::new(on(Backup), Vec::<Role>::new()))
        .ext(At::new(on(Backup), [Worker(0)]));
    let locals = project_all(&program).expect("sound");
    assert_eq!(frames_of(&locals, Worker(0)), ["from Coordinator"]);
    runs(&locals);
}

#[test]
fn the_documented_example_needs_two_frames() {
    // docs/choreography.md, effect order: Load @ T1; Update @ T2; T2 -> T1: done;
    // Commit @ T1; Check @ [T1, T2].
    let (t1, t2) = (Coordinator, Backup);
    let program = P::new()
        .ext(on(t1))
        .ext(on(t2))
        .send(t2, t1, Msg::Stop)
        .ext(on(t1))
        .ext(Checksum { on: vec![t1, t2] });
    let locals = project_all(&program).expect("sound");
    assert_eq!(frames_of(&locals, t1), ["to Backup", "to Backup"]);
    assert_eq!(
        frames_of(&locals, t2),
        ["from Coordinator", "from Coordinator"]
    );
    runs(&locals);
}

#[test]
fn long_programs_stay_exact_when_old_facts_are_forgotten() {
    // Past a few hundred effects, projection forgets facts no frontier can need: the
    // hand-overs stay one per step, and the run stays in order.
    let roles = [Coordinator, Backup, Worker(0), Worker(1)];
    let program = (0..2_000).fold(P::new(), |p, i| p.ext(on(roles[i % 4])));
    assert_eq!(order_frames(&program).expect("sound").total(), 1_999);
    let locals = project_all(&program).expect("sound");
    check(&locals, &mut SeededPolicy::new(0)).expect("in order");
    // The same with a message after every step: no frame at all.
    let handed = (0..2_000).fold(P::new(), |p, i| {
        p.ext(on(roles[i % 4]))
            .send(roles[i % 4], roles[(i + 1) % 4], Msg::Start)
    });
    assert_eq!(order_frames(&handed).expect("sound").total(), 0);
}
