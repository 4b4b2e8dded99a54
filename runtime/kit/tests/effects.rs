//! Kit effects on a real throwaway cluster: a statement that must wait for a given
//! role's lock (and its negative), row counts, a registered workload, a WAL switch.

use std::time::Duration;

use stormchor_choreography::At;
use stormchor_kit::effects::sql::MISSED;
use stormchor_kit::effects::{
    Case, Expect, Finish, Level, RunWorkload, SessionPid, Sql, StartServer, SwitchWal, Verdict,
};
use stormchor_kit::slots::PRIMARY;
use stormchor_kit::{Carry, DbEffect, Kit, KitRole, Program, ScenarioOptions, Slot, run_program};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Primary,
    Holder,
    Waiter,
    Judge,
}

impl KitRole for Role {}

use Role::*;

const HOLDER: Slot<i32> = Slot::new("holder");

fn at<E: stormchor_choreography::ExtensionEffect>(effect: E, roles: &[Role]) -> At<E, Role> {
    At::new(effect, roles.to_vec())
}

/// The waiter's UPDATE must wait for the lock of the backend in `holder_from`'s HOLDER.
fn lock_wait(holder_from: Role) -> Program<Role, Carry> {
    let go = || Carry::signal("go");
    let program = Program::new()
        .with_roles([Primary, Holder, Waiter, Judge])
        .ext(at(StartServer::throwaway().into_slot(PRIMARY), &[Primary]))
        .send(Primary, Holder, PRIMARY.carry())
        .send(Primary, Waiter, PRIMARY.carry())
        .send(Primary, Judge, PRIMARY.carry())
        .ext(at(
            Case {
                name: "lock wait",
                level: Level::ReadCommitted,
                claim: "the second writer waits for the first",
            },
            &[Holder, Waiter, Judge],
        ))
        .ext(at(
            Sql::ok(
                PRIMARY,
                "CREATE TABLE stormchor_k (id int PRIMARY KEY); INSERT INTO stormchor_k VALUES (1)",
            ),
            &[Holder],
        ))
        .ext(at(
            SessionPid { on: PRIMARY }.into_slot(HOLDER),
            &[holder_from],
        ));
    let program = if holder_from == Holder {
        program.send(Holder, Waiter, HOLDER.carry())
    } else {
        program
            .send(holder_from, Holder, go())
            .send(holder_from, Waiter, HOLDER.carry())
    };
    program
        .ext(at(
            Sql::ok(PRIMARY, "BEGIN; UPDATE stormchor_k SET id = 1 WHERE id = 1"),
            &[Holder],
        ))
        .send(Holder, Waiter, go())
        .ext(at(
            Sql::waits_for(
                PRIMARY,
                "UPDATE stormchor_k SET id = 1 WHERE id = 1",
                HOLDER,
            ),
            &[Waiter],
        ))
        .send(Waiter, Holder, go())
        .ext(at(Sql::ok(PRIMARY, "COMMIT"), &[Holder]))
        .send(Holder, Waiter, go())
        .ext(at(Finish { expect: Expect::Ok }, &[Waiter]))
        .ext(at(
            Sql {
                expect: Expect::Rows(1),
                ..Sql::ok(PRIMARY, "SELECT * FROM stormchor_k")
            },
            &[Waiter],
        ))
        .send(Holder, Judge, MISSED.carry())
        .send(Waiter, Judge, MISSED.carry())
        .ext(at(Verdict, &[Judge]))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_statement_waits_for_the_lock_of_the_role_that_holds_it() {
    let report = runtime()
        .block_on(run_program(
            "lock wait",
            &lock_wait(Holder),
            &ScenarioOptions::short(),
            Kit::new().expect("kit"),
        ))
        .expect("runs");
    assert!(report.success, "{}", report.render());
    assert!(report.checks[0].passed);
}

#[test]
fn waiting_for_another_backend_than_the_named_one_is_caught() {
    // The judge's own idle session holds no lock: the wait is for the holder, not it.
    let report = runtime()
        .block_on(run_program(
            "lock wait, wrong holder",
            &lock_wait(Judge),
            &ScenarioOptions::short(),
            Kit::new().expect("kit"),
        ))
        .expect("runs");
    assert!(!report.success);
    let check = &report.checks[0];
    assert!(
        check
            .evidence
            .iter()
            .any(|e| e.contains("expected to wait for backend")),
        "{check:?}"
    );
}

#[test]
fn a_registered_workload_and_a_wal_switch_run_as_effects() {
    const SEGMENT: Slot<String> = Slot::new("segment");
    let program: Program<Role, Carry> = Program::new()
        .with_roles([Primary, Judge])
        .ext(at(
            StartServer::throwaway().archiving().into_slot(PRIMARY),
            &[Primary],
        ))
        .send(Primary, Judge, PRIMARY.carry())
        .ext(at(
            RunWorkload::builtin(PRIMARY, "tpcb", 2, Duration::from_secs(1)),
            &[Judge],
        ))
        .ext(at(
            SwitchWal {
                on: PRIMARY,
                bound: Duration::from_secs(60),
            }
            .into_slot(SEGMENT),
            &[Judge],
        ));
    let report = runtime()
        .block_on(run_program(
            "workload",
            &program,
            &ScenarioOptions::short(),
            Kit::new().expect("kit"),
        ))
        .expect("runs");
    assert!(report.success, "{}", report.render());
    let operations = report.figures["tpcb_operations"].as_u64().expect("a count");
    assert!(operations > 0, "{:?}", report.figures);
}
