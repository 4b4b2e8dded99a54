//! The `choreography!` DSL: every construct's expansion equals the program the builder
//! makes, and the programs it makes project and run.
#![allow(missing_docs)]

use std::time::Duration;

use stormchor_choreography::{
    At, Extension, Family, Participation, Program, SeededPolicy, check, primitives, project_all,
};
use stormchor_macros::{ExtensionEffect, choreography};

#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Start,
    Rows(u64),
    Verdict(bool),
    Token,
}

#[derive(Clone, Debug, ExtensionEffect)]
pub struct RunWorkload {
    pub seconds: u32,
}

#[derive(Clone, Debug, ExtensionEffect)]
pub struct TakeBackup {
    #[participant]
    pub node: Role,
}

choreography! {
    /// The roles of these tests.
    pub enum Role { Coordinator, Backup, Worker(u16) }

    /// A send, a broadcast and a gather.
    pub fn messages(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[workers];
        Coordinator -> Backup: Msg::Start;
        Coordinator -> Worker: Msg::Start;
        Worker -> Coordinator: Msg::Rows(0);
        Worker[1] -> Backup: Msg::Rows(1);
    }

    pub fn choice(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[workers];
        choice at Coordinator {
            commit => {
                Coordinator -> Worker: Msg::Verdict(true);
                Coordinator -> Backup: Msg::Verdict(true);
            }
            "roll back" => {
                Coordinator -> Worker: Msg::Verdict(false);
                Coordinator -> Backup: Msg::Verdict(false);
            }
        }
    }

    pub fn loops(workers: u16, rounds: u64) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        loop rounds {
            Coordinator -> Worker: Msg::Start;
        }
        loop until Coordinator {
            Worker -> Coordinator: Msg::Rows(0);
        }
    }

    pub fn parallel(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[workers];
        par {
            Coordinator -> Worker: Msg::Start;
        } and {
            Coordinator -> Backup: Msg::Start;
        } and {
            Backup -> Coordinator: Msg::Rows(0);
        }
    }

    pub fn bounded(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        timeout Duration::from_secs(5) at Worker[0] {
            Worker[0] -> Coordinator: Msg::Rows(0);
        }
    }

    pub fn effects(workers: u16, chosen: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[workers];
        ext RunWorkload { seconds: 30 } @ Worker[chosen];
        ext RunWorkload { seconds: 5 } @ Worker, Coordinator;
        ext TakeBackup { node: Backup };
    }

    /// `=> SLOT`: the effect's `into_slot(SLOT)`.
    pub fn producing(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        ext RunWorkload { seconds: 3 } => "seconds" @ Worker;
        ext RunWorkload { seconds: 4 } => "seconds";
    }

    pub fn calls(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        let ring = [Coordinator, Worker[0]];
        call primitives::barrier(Coordinator, Worker, Msg::Start, Msg::Start);
        call primitives::round_robin(&ring, Msg::Token, 2);
        call messages_to(Worker[workers - 1]);
    }

    pub fn messages_to(worker: Role) -> Program<Role, Msg> {
        roles Coordinator;
        call Program::new().role(worker).send(Coordinator, worker, Msg::Start);
    }

    /// `ext start .. as h` .. `ext finish h`: an effect that runs while the program
    /// goes on.
    pub fn started(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[workers];
        ext start RunWorkload { seconds: 30 } @ Worker as load;
        ext start TakeBackup { node: Backup } as backup;
        Coordinator -> Backup: Msg::Start;
        ext finish backup;
        ext finish load @ Worker;
    }

    pub fn each(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        for w in Worker {
            Coordinator -> w: Msg::Start;
            w -> Coordinator: Msg::Rows(0);
        }
    }
}

/// What an effect becomes with `=> slot` (the database kit's `Produce`, in miniature).
#[derive(Clone, Debug, ExtensionEffect)]
pub struct Produced {
    pub effect: RunWorkload,
    pub slot: &'static str,
}

impl RunWorkload {
    fn into_slot(self, slot: &'static str) -> Produced {
        Produced { effect: self, slot }
    }
}

#[test]
fn an_effect_producing_a_value_is_its_into_slot() {
    let workers: Vec<Role> = family(2).members().to_vec();
    let built = Program::new()
        .role(Role::Coordinator)
        .family(&family(2))
        .ext(At::new(
            RunWorkload { seconds: 3 }.into_slot("seconds"),
            workers,
        ))
        .ext(RunWorkload { seconds: 4 }.into_slot("seconds"));
    assert_eq!(producing(2), built);
}

fn family(n: u16) -> Family<Role> {
    Family::indexed("Worker", n, Role::Worker)
}

fn base(n: u16) -> Program<Role, Msg> {
    Program::new()
        .role(Role::Coordinator)
        .role(Role::Backup)
        .family(&family(n))
}

#[test]
fn messages_equal_the_builder() {
    let w = family(3);
    let built = base(3)
        .send(Role::Coordinator, Role::Backup, Msg::Start)
        .broadcast(Role::Coordinator, &w, Msg::Start)
        .gather(&w, Role::Coordinator, Msg::Rows(0))
        .send(Role::Worker(1), Role::Backup, Msg::Rows(1));
    assert_eq!(messages(3), built);
    assert_ne!(messages(4), built, "the family size is the argument");
}

#[test]
fn choice_equals_the_builder() {
    let w = family(2);
    let verdict = |v| {
        Program::new()
            .broadcast(Role::Coordinator, &w, Msg::Verdict(v))
            .send(Role::Coordinator, Role::Backup, Msg::Verdict(v))
    };
    let built = base(2).choice(
        Role::Coordinator,
        [("commit", verdict(true)), ("roll back", verdict(false))],
    );
    assert_eq!(choice(2), built);
}

#[test]
fn loops_equal_the_builder() {
    let w = family(2);
    let built = Program::new()
        .role(Role::Coordinator)
        .family(&w)
        .loop_n(
            7,
            Program::new().broadcast(Role::Coordinator, &w, Msg::Start),
        )
        .loop_until(
            Role::Coordinator,
            Program::new().gather(&w, Role::Coordinator, Msg::Rows(0)),
        );
    assert_eq!(loops(2, 7), built);
}

#[test]
fn start_and_finish_equal_the_builder() {
    let w = family(2);
    let built = base(2)
        .ext_start(
            At::new(RunWorkload { seconds: 30 }, w.members().to_vec()),
            "load",
        )
        .ext_start(TakeBackup { node: Role::Backup }, "backup")
        .send(Role::Coordinator, Role::Backup, Msg::Start)
        .ext_finish("backup")
        .ext_finish("load");
    assert_eq!(started(2), built);
    let locals = project_all(&built).expect("sound");
    check(&locals, &mut SeededPolicy::new(1)).expect("runs");
    // The DSL's effects know their statement's line, for failure messages.
    let locals = project_all(&started(2)).expect("sound");
    let places: Vec<String> = locals[&Role::Backup]
        .effects()
        .iter()
        .filter_map(|effect| match effect {
            stormchor_choreography::Local::Ext(ext) => ext.place().map(ToString::to_string),
            _ => None,
        })
        .collect();
    let line = |text: &str| {
        let source = include_str!("dsl.rs");
        let at = source.find(text).expect("statement");
        source[..at].lines().count()
    };
    assert_eq!(
        places,
        [
            format!("macros/tests/dsl.rs:{}", line("ext start TakeBackup")),
            format!("macros/tests/dsl.rs:{}", line("ext finish backup;")),
        ]
    );
}

#[test]
fn par_equals_the_builder() {
    let w = family(2);
    let built = base(2).par([
        Program::new().broadcast(Role::Coordinator, &w, Msg::Start),
        Program::new().send(Role::Coordinator, Role::Backup, Msg::Start),
        Program::new().send(Role::Backup, Role::Coordinator, Msg::Rows(0)),
    ]);
    assert_eq!(parallel(2), built);
}

#[test]
fn timeout_equals_the_builder() {
    let built = Program::new()
        .role(Role::Coordinator)
        .family(&family(2))
        .timeout(
            Role::Worker(0),
            Duration::from_secs(5),
            Program::new().send(Role::Worker(0), Role::Coordinator, Msg::Rows(0)),
        );
    assert_eq!(bounded(2), built);
}

#[test]
fn effects_equal_the_builder_and_take_their_roles_from_at() {
    let mut everyone: Vec<Role> = family(3).members().to_vec();
    everyone.push(Role::Coordinator);
    let built = base(3)
        .ext(At::new(RunWorkload { seconds: 30 }, [Role::Worker(2)]))
        .ext(At::new(RunWorkload { seconds: 5 }, everyone))
        .ext(TakeBackup { node: Role::Backup });
    let program = effects(3, 2);
    assert_eq!(program, built);
    let participation: Vec<Participation<Role>> = program
        .effects()
        .iter()
        .map(|effect| match effect {
            stormchor_choreography::Global::Ext(ext) => ext.participation::<Role>(),
            other => panic!("not an effect: {other:?}"),
        })
        .collect();
    assert_eq!(
        participation[0],
        Participation::Roles(vec![Role::Worker(2)])
    );
    assert_eq!(
        participation[2],
        Participation::Roles(vec![Role::Backup]),
        "without @, the effect's own fields name its roles"
    );
    // The wrapper is transparent: the registry's downcast finds the inner effect.
    let Some(stormchor_choreography::Global::Ext(first)) = program.effects().first() else {
        panic!("first effect");
    };
    assert_eq!(
        first.downcast_ref::<RunWorkload>().map(|e| e.seconds),
        Some(30)
    );
    assert_eq!(first.type_name(), "RunWorkload");
    let _: &Extension = first;
    let _ = first.effect().effect_type_id();
}

#[test]
fn calls_compose_sub_choreographies() {
    let w = family(3);
    let built = Program::new()
        .role(Role::Coordinator)
        .family(&w)
        .then(primitives::barrier(
            Role::Coordinator,
            &w,
            Msg::Start,
            Msg::Start,
        ))
        .then(primitives::round_robin(
            &[Role::Coordinator, Role::Worker(0)],
            Msg::Token,
            2,
        ))
        .then(
            Program::new()
                .role(Role::Coordinator)
                .role(Role::Worker(2))
                .send(Role::Coordinator, Role::Worker(2), Msg::Start),
        );
    assert_eq!(calls(3), built);
}

#[test]
fn for_repeats_the_body_per_member() {
    let w = family(3);
    let mut built = Program::new().role(Role::Coordinator).family(&w);
    for &member in w.members() {
        built = built.then(
            Program::new()
                .send(Role::Coordinator, member, Msg::Start)
                .send(member, Role::Coordinator, Msg::Rows(0)),
        );
    }
    assert_eq!(each(3), built);
}

#[test]
fn every_choreography_projects_and_runs() {
    let programs = [
        messages(4),
        choice(4),
        loops(4, 3),
        parallel(4),
        bounded(4),
        effects(4, 1),
        calls(4),
        each(4),
    ];
    for (i, program) in programs.iter().enumerate() {
        let locals = project_all(program).unwrap_or_else(|e| panic!("program {i}: {e}"));
        check(&locals, &mut SeededPolicy::new(i as u64))
            .unwrap_or_else(|e| panic!("program {i}: {e}"));
    }
}

#[test]
fn the_role_enum_gets_the_role_derives() {
    let mut roles = vec![Role::Worker(1), Role::Backup, Role::Coordinator];
    roles.sort();
    assert_eq!(roles, [Role::Coordinator, Role::Backup, Role::Worker(1)]);
    let copy = roles[0];
    assert_eq!(format!("{copy:?}"), "Coordinator");
}

/// A broadcast made by a helper in plain Rust: opaque to the compile-time check.
fn tell(from: Role, to: &Family<Role>, msg: Msg) -> Program<Role, Msg> {
    Program::new().broadcast(from, to, msg)
}

choreography! {
    /// The workers learn the choice from a message a sub-choreography sends.
    pub fn informed_by_call(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        choice at Coordinator {
            go => {
                call tell(Coordinator, Worker, Msg::Start);
                Worker -> Coordinator: Msg::Rows(0);
            }
            stop => { call tell(Coordinator, Worker, Msg::Verdict(false)); }
        }
    }

    /// Nobody tells the workers: only the projection at run time can see it, since
    /// the called part is not known while compiling.
    pub fn not_informed_by_call(workers: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[workers];
        choice at Coordinator {
            go => {
                call Program::new().send(Coordinator, Coordinator, Msg::Start).loop_n(0, Program::new());
                Worker -> Coordinator: Msg::Rows(0);
            }
            stop => { call Program::new(); }
        }
    }
}

#[test]
fn programs_with_calls_are_checked_when_projected() {
    let locals = project_all(&informed_by_call(3)).expect("the call informs the workers");
    check(&locals, &mut SeededPolicy::new(1)).expect("runs");
    let error = project_all(&not_informed_by_call(3)).expect_err("the workers cannot learn");
    assert!(error.to_string().contains("Coordinator"), "{error}");
}
