//! `#[derive(ExtensionEffect)]`: participants from marked fields, global effects,
//! generic and tuple structs, and their projection.

use stormchor::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Worker(u16),
}

#[derive(Clone, Debug, ExtensionEffect)]
struct RunWorkload {
    #[participant]
    worker: Role,
    seconds: u32,
}

#[derive(Clone, Debug, ExtensionEffect)]
struct Checksum {
    #[participants]
    nodes: Vec<Role>,
    #[participants]
    also: Option<Role>,
}

#[derive(Clone, Debug, ExtensionEffect)]
#[effect(unordered)]
struct LogPhase(&'static str);

#[derive(Clone, Debug, ExtensionEffect)]
struct OnOne<R>(#[participant] R);

#[test]
fn participants_come_from_the_marked_fields() {
    let run = Extension::new(RunWorkload {
        worker: Role::Worker(2),
        seconds: 30,
    });
    assert_eq!(run.type_name(), "RunWorkload");
    assert_eq!(
        run.participation::<Role>(),
        Participation::Roles(vec![Role::Worker(2)])
    );
    assert_eq!(
        run.downcast_ref::<RunWorkload>().map(|r| r.seconds),
        Some(30)
    );

    let checksum = Extension::new(Checksum {
        nodes: vec![Role::Worker(1), Role::Worker(0)],
        also: Some(Role::Coordinator),
    });
    assert_eq!(
        checksum.participation::<Role>(),
        Participation::Roles(vec![Role::Coordinator, Role::Worker(0), Role::Worker(1)])
    );
    let none = Extension::new(Checksum {
        nodes: Vec::new(),
        also: None,
    });
    assert_eq!(
        none.participation::<Role>(),
        Participation::Everyone,
        "no role named: everyone"
    );

    let log = Extension::new(LogPhase("load"));
    assert_eq!(log.participation::<Role>(), Participation::Everyone);
    assert_eq!(log.downcast_ref::<LogPhase>().map(|l| l.0), Some("load"));
    let generic = Extension::new(OnOne(Role::Coordinator));
    assert_eq!(
        generic.participation::<Role>(),
        Participation::Roles(vec![Role::Coordinator])
    );
    assert_eq!(
        generic.participation::<u8>(),
        Participation::Roles(vec![]),
        "roles of another type are skipped"
    );
    let copy = generic.effect().clone_box();
    assert!(copy.as_any().downcast_ref::<OnOne<Role>>().is_some());
}

#[test]
fn derived_effects_project_to_their_participants() {
    let workers = Family::indexed("Worker", 2, Role::Worker);
    let program: Program<Role, &str> = Program::new()
        .role(Role::Coordinator)
        .family(&workers)
        .ext(RunWorkload {
            worker: Role::Worker(1),
            seconds: 5,
        })
        .ext(LogPhase("verify"));
    let locals = project_all(&program).expect("sound");
    assert_eq!(locals[&Role::Worker(1)].effects().len(), 2);
    assert_eq!(locals[&Role::Worker(0)].effects().len(), 1);
    assert_eq!(locals[&Role::Coordinator].effects().len(), 1);
}

#[derive(Clone, Debug, ExtensionEffect)]
#[effect(unordered)]
struct Marker(#[participant] Role);

#[test]
fn unordered_effects_add_no_order_frames() {
    assert!(
        Extension::new(RunWorkload {
            worker: Role::Worker(0),
            seconds: 1
        })
        .is_ordered()
    );
    assert!(!Extension::new(Marker(Role::Coordinator)).is_ordered());
    // `At` keeps the inner effect's choice.
    assert!(!Extension::new(At::new(Marker(Role::Coordinator), [Role::Worker(0)])).is_ordered());

    let ordered: Program<Role, &str> = Program::new()
        .ext(RunWorkload {
            worker: Role::Worker(0),
            seconds: 1,
        })
        .ext(RunWorkload {
            worker: Role::Worker(1),
            seconds: 1,
        });
    assert_eq!(order_frames(&ordered).expect("sound").total(), 1);
    let bookkeeping: Program<Role, &str> = Program::new()
        .ext(Marker(Role::Worker(0)))
        .ext(Marker(Role::Worker(1)));
    assert_eq!(order_frames(&bookkeeping).expect("sound").total(), 0);
}
