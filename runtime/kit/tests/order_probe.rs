//! Effect order and started effects as a user meets them, on a real throwaway
//! cluster: Hermitage-style cases (two transaction roles and a judge) written with
//! the DSL and with the builder, with no hand-off written by hand, through every
//! construct (sequence, counted loop, choice, nested `par`, timeout, `call`), and a
//! role that fails while another's statement is started.

use std::time::Duration;

use stormchor_choreography::At;
use stormchor_kit::effects::sql::MISSED;
use stormchor_kit::effects::{Case, Expect, Level, Sql, StartServer, Verdict};
use stormchor_kit::slots::PRIMARY;
use stormchor_kit::{Carry, DbEffect, Kit, KitRole, Program, ScenarioOptions, Slot, run_program};
use stormchor_macros::choreography;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Judge,
    T1,
    T2,
}

impl KitRole for Role {}

use Role::*;

const TABLE: &str = "DROP TABLE IF EXISTS probe; CREATE TABLE probe (id int PRIMARY KEY, v int NOT NULL); \
     INSERT INTO probe VALUES (1, 10), (2, 20)";
const LEVEL: Level = Level::ReadCommitted;

choreography! {
    /// The judge starts the server and tells the transactions where it is.
    fn setup() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext StartServer::throwaway() => PRIMARY @ Judge;
        Judge -> T1: PRIMARY.carry();
        Judge -> T2: PRIMARY.carry();
    }

    /// The end of a case: what missed goes to the judge.
    fn verdict() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// Hermitage's G0 (write cycles): T2's writes wait for T1's, row after row; the
    /// last writer of each row is T2.
    fn g0() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "G0", level: LEVEL, claim: "prevented" };
        ext Sql::ok(PRIMARY, TABLE) @ Judge;
        ext Sql::ok(PRIMARY, LEVEL.begin()) @ T1;
        ext Sql::ok(PRIMARY, LEVEL.begin()) @ T2;
        ext Sql::ok(PRIMARY, "UPDATE probe SET v = 11 WHERE id = 1") @ T1;
        ext start Sql::waits(PRIMARY, "UPDATE probe SET v = 12 WHERE id = 1") @ T2 as first;
        ext Sql::ok(PRIMARY, "UPDATE probe SET v = 21 WHERE id = 2") @ T1;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext finish first @ T2;
        ext Sql::ok(PRIMARY, "UPDATE probe SET v = 22 WHERE id = 2") @ T2;
        ext Sql::ok(PRIMARY, "COMMIT") @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 12) @ Judge;
        ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 2", 22) @ Judge;
        call verdict();
    }

    /// Rounds of a lost-update-free increment: T1 increments and holds the lock, T2's
    /// increment waits for it; each round adds 2, so order across rounds shows in
    /// the total.
    fn rounds(count: u64) -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "rounds", level: LEVEL, claim: "every increment lands" };
        ext Sql::ok(PRIMARY, TABLE) @ Judge;
        loop count {
            ext Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = v + 1 WHERE id = 1") @ T1;
            ext start Sql::waits(PRIMARY, "UPDATE probe SET v = v + 1 WHERE id = 1") @ T2 as bump;
            ext Sql::ok(PRIMARY, "COMMIT") @ T1;
            ext finish bump @ T2;
            ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 12) @ T1;
            ext Sql::ok(PRIMARY, "ROLLBACK") @ T2;
            ext Sql::ok(PRIMARY, "UPDATE probe SET v = 10 WHERE id = 1") @ Judge;
        }
        ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 10) @ Judge;
        call verdict();
    }

    /// A choice between T1's commit and its rollback, with T2's statement started
    /// before it and finished after it: in each branch, T2's outcome follows T1's.
    fn choose() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "choice", level: LEVEL, claim: "the waiter sees the chosen end" };
        ext Sql::ok(PRIMARY, TABLE) @ Judge;
        ext Sql::ok(PRIMARY, "BEGIN; DELETE FROM probe WHERE id = 1") @ T1;
        ext start Sql {
            expect: Expect::Rows(0),
            ..Sql::waits(PRIMARY, "SELECT v FROM probe WHERE id = 1 FOR UPDATE")
        } @ T2 as locked;
        choice at Judge {
            commit => {
                Judge -> T1: Carry::signal("commit");
                ext Sql::ok(PRIMARY, "COMMIT") @ T1;
            }
            rollback => {
                Judge -> T1: Carry::signal("rollback");
                ext Sql::ok(PRIMARY, "ROLLBACK") @ T1;
            }
        }
        ext finish locked @ T2;
        ext Sql::read(PRIMARY, "SELECT count(*) FROM probe", 1) @ Judge;
        call verdict();
    }

    /// Nested parts: T1 and T2 write different rows concurrently (a part each,
    /// T2's inside a nested par with the judge's read of a third row); what follows
    /// the par sees both writes.
    fn parts() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "nested par", level: LEVEL, claim: "after the par, both parts' writes" };
        ext Sql::ok(PRIMARY, TABLE) @ Judge;
        ext Sql::ok(PRIMARY, "INSERT INTO probe VALUES (3, 30)") @ Judge;
        par {
            ext Sql::ok(PRIMARY, "UPDATE probe SET v = v + 100 WHERE id = 1") @ T1;
        } and {
            par {
                ext Sql::ok(PRIMARY, "UPDATE probe SET v = v + 100 WHERE id = 2") @ T2;
            } and {
                ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 3", 30) @ Judge;
            }
        }
        ext Sql::read(PRIMARY, "SELECT sum(v) FROM probe", 260) @ Judge;
        call verdict();
    }

    /// T2's whole share bounded by a timeout, its statement started and finished
    /// inside it while T1 commits.
    fn bounded() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "timeout", level: LEVEL, claim: "the started statement ends in time" };
        ext Sql::ok(PRIMARY, TABLE) @ Judge;
        ext Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = 11 WHERE id = 1") @ T1;
        timeout Duration::from_secs(60) at T2 {
            ext start Sql::waits(PRIMARY, "UPDATE probe SET v = v + 1 WHERE id = 1") @ T2 as bump;
            ext Sql::ok(PRIMARY, "COMMIT") @ T1;
            ext finish bump @ T2;
        }
        ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 12) @ Judge;
        call verdict();
    }

    fn called() -> Program<Role, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "call", level: LEVEL, claim: "a start in a called program" };
        ext Sql::ok(PRIMARY, TABLE) @ Judge;
        ext Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = 11 WHERE id = 1") @ T1;
        call start_bump();
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext finish bump @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 12) @ Judge;
        call verdict();
    }
}

/// A started statement whose start is in a called sub-program. (Written with the
/// builder: the DSL checks each choreography as a whole program, so one that starts
/// without finishing is refused.)
fn start_bump() -> Program<Role, Carry> {
    Program::new().ext_start(
        at(
            Sql::waits(PRIMARY, "UPDATE probe SET v = v + 1 WHERE id = 1"),
            T2,
        ),
        "bump",
    )
}

fn at<E: stormchor_choreography::ExtensionEffect>(effect: E, role: Role) -> At<E, Role> {
    At::new(effect, [role])
}

/// G0 with the builder.
fn g0_built() -> Program<Role, Carry> {
    Program::new()
        .ext(Case {
            name: "G0 (builder)",
            level: LEVEL,
            claim: "prevented",
        })
        .ext(at(Sql::ok(PRIMARY, TABLE), Judge))
        .ext(at(Sql::ok(PRIMARY, "BEGIN"), T1))
        .ext(at(Sql::ok(PRIMARY, "BEGIN"), T2))
        .ext(at(
            Sql::ok(PRIMARY, "UPDATE probe SET v = 11 WHERE id = 1"),
            T1,
        ))
        .ext_start(
            at(
                Sql::waits(PRIMARY, "UPDATE probe SET v = 12 WHERE id = 1"),
                T2,
            ),
            "first",
        )
        .ext(at(
            Sql::ok(PRIMARY, "UPDATE probe SET v = 21 WHERE id = 2"),
            T1,
        ))
        .ext(at(Sql::ok(PRIMARY, "COMMIT"), T1))
        .ext_finish("first")
        .ext(at(
            Sql::ok(PRIMARY, "UPDATE probe SET v = 22 WHERE id = 2"),
            T2,
        ))
        .ext(at(Sql::ok(PRIMARY, "COMMIT"), T2))
        .ext(at(
            Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 12),
            Judge,
        ))
        .ext(at(
            Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 2", 22),
            Judge,
        ))
        .then(verdict())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn run(name: &str, program: &Program<Role, Carry>) -> stormchor_kit::ScenarioReport {
    runtime()
        .block_on(run_program(
            name,
            program,
            &ScenarioOptions::short(),
            Kit::new().expect("kit"),
        ))
        .expect("runs")
}

#[test]
fn every_construct_keeps_the_program_order_on_a_real_server() {
    let program = [
        g0(),
        g0_built(),
        rounds(3),
        choose(),
        parts(),
        bounded(),
        called(),
    ]
    .into_iter()
    .fold(setup(), Program::then);
    let report = run("order probe", &program);
    assert!(report.success, "{}", report.render());
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(
        report.checks.iter().all(|c| c.passed),
        "{}",
        report.render()
    );
}

#[test]
fn a_wrong_expectation_in_a_case_is_caught() {
    // The negative: G0 where the judge expects T1's value to have won.
    let wrong = setup().then(
        Program::new()
            .ext(Case {
                name: "G0, wrong end",
                level: LEVEL,
                claim: "T1 wins",
            })
            .ext(at(Sql::ok(PRIMARY, TABLE), Judge))
            .ext(at(
                Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = 11 WHERE id = 1"),
                T1,
            ))
            .ext_start(
                at(
                    Sql::waits(PRIMARY, "UPDATE probe SET v = 12 WHERE id = 1"),
                    T2,
                ),
                "w",
            )
            .ext(at(Sql::ok(PRIMARY, "COMMIT"), T1))
            .ext_finish("w")
            .ext(at(
                Sql::read(PRIMARY, "SELECT v FROM probe WHERE id = 1", 11),
                Judge,
            ))
            .then(verdict()),
    );
    let report = run("order probe, wrong", &wrong);
    assert!(!report.success);
    assert!(
        report.checks[0]
            .evidence
            .iter()
            .any(|e| e.contains("expected 11, read 12")),
        "{:?}",
        report.checks
    );
}

#[test]
fn a_role_that_fails_while_another_statement_is_started_ends_the_run_at_once() {
    // T1 holds the lock, T2's update waits for it, then T1 fails (it reads a value
    // nobody sent): the run ends naming T1, without waiting out the statement bound.
    const NEVER: Slot<i32> = Slot::new("never sent");
    let program = setup().then(
        Program::new()
            .ext(Case {
                name: "role fails",
                level: LEVEL,
                claim: "-",
            })
            .ext(at(Sql::ok(PRIMARY, TABLE), Judge))
            .ext(at(
                Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = 11 WHERE id = 1"),
                T1,
            ))
            .ext_start(
                at(
                    Sql::waits(PRIMARY, "UPDATE probe SET v = 12 WHERE id = 1"),
                    T2,
                ),
                "w",
            )
            .ext(at(
                Sql::waits_for(PRIMARY, "UPDATE probe SET v = 13 WHERE id = 2", NEVER),
                T1,
            ))
            .ext(at(Sql::ok(PRIMARY, "COMMIT"), T1))
            .ext_finish("w"),
    );
    let report = run("role fails", &program);
    // From the case's start (the server is up), not counting the server's start.
    let case = report.phases.iter().map(|p| p.at).min().expect("a phase");
    let took = report.elapsed.saturating_sub(case);
    assert!(!report.success);
    let t1 = report
        .roles
        .iter()
        .find(|r| r.role == "T1")
        .expect("T1's record");
    let failure = t1.failure.as_deref().unwrap_or_default();
    assert!(
        failure.contains("never sent"),
        "T1 fails naming the value it lacks: {failure}"
    );
    assert!(
        took < Duration::from_secs(9),
        "ended at once, not after the 10 s statement bound: {took:?}"
    );
}

#[test]
fn a_second_statement_on_a_busy_session_is_refused_at_once() {
    // T2 runs a statement while its started one waits: on one session it would wait
    // behind it, for the lock T1 only releases after it (a stall, then "still
    // running"). It is refused at once, naming both statements.
    let program = setup().then(
        Program::new()
            .ext(Case {
                name: "busy session",
                level: LEVEL,
                claim: "-",
            })
            .ext(at(Sql::ok(PRIMARY, TABLE), Judge))
            .ext(at(
                Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = 11 WHERE id = 1"),
                T1,
            ))
            .ext_start(
                at(
                    Sql::waits(PRIMARY, "UPDATE probe SET v = 12 WHERE id = 1"),
                    T2,
                ),
                "w",
            )
            .ext(at(Sql::read(PRIMARY, "SELECT 1", 1), T2))
            .ext(at(Sql::ok(PRIMARY, "COMMIT"), T1))
            .ext_finish("w"),
    );
    let report = run("busy session", &program);
    let case = report.phases.iter().map(|p| p.at).min().expect("a phase");
    let took = report.elapsed.saturating_sub(case);
    assert!(!report.success, "{}", report.render());
    let t2 = report.roles.iter().find(|r| r.role == "T2").expect("T2");
    let failure = t2.failure.as_deref().unwrap_or_default();
    assert!(
        failure.contains("cannot run `SELECT 1`")
            && failure.contains("`UPDATE probe SET v = 12 WHERE id = 1` it started"),
        "{failure}"
    );
    assert!(took < Duration::from_secs(9), "refused at once: {took:?}");
    // Once finished, the session is free again: the same statement after the finish
    // runs. (The started statement is T2's first: it connects first, and counts as
    // started only once seen waiting, not at that first wait.)
    let program = setup().then(
        Program::new()
            .ext(Case {
                name: "free again",
                level: LEVEL,
                claim: "-",
            })
            .ext(at(Sql::ok(PRIMARY, TABLE), Judge))
            .ext(at(
                Sql::ok(PRIMARY, "BEGIN; UPDATE probe SET v = 11 WHERE id = 1"),
                T1,
            ))
            .ext_start(
                at(
                    Sql::waits(PRIMARY, "UPDATE probe SET v = 12 WHERE id = 1"),
                    T2,
                ),
                "w",
            )
            .ext(at(Sql::ok(PRIMARY, "COMMIT"), T1))
            .ext_finish("w")
            .ext(at(Sql::read(PRIMARY, "SELECT 1", 1), T2))
            .then(verdict()),
    );
    let report = run("free again", &program);
    assert!(report.success, "{}", report.render());
}

mod load {
    //! A load started in the background and a kill the program puts after its start.

    use stormchor_choreography::At;
    use stormchor_kit::effects::{Case, Level, Sql, Verdict, VerifyLedger, WriteLedger};
    use stormchor_kit::effects::{CreateLedger, KillServer, RestartServer, StartServer};
    use stormchor_kit::slots::{LEDGER, PRIMARY};
    use stormchor_kit::{Carry, DbEffect, Kit, KitRole, Program, ScenarioOptions, run_program};

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    enum Role {
        Coordinator,
        Primary,
        Worker(u16),
    }

    impl KitRole for Role {
        fn member(&self) -> Option<u16> {
            match self {
                Role::Worker(k) => Some(*k),
                _ => None,
            }
        }
    }

    #[test]
    fn the_steps_after_a_started_load_find_it_writing() {
        use Role::*;
        let program: Program<Role, Carry> = Program::new()
            .ext(At::new(
                StartServer::throwaway().into_slot(PRIMARY),
                [Primary],
            ))
            .ext(At::new(CreateLedger { on: PRIMARY }, [Primary]))
            .send(Primary, Worker(0), PRIMARY.carry())
            .send(Primary, Coordinator, PRIMARY.carry())
            .ext(At::new(
                Case {
                    name: "started load",
                    level: Level::ReadCommitted,
                    claim: "the steps after the start find it writing",
                },
                [Coordinator],
            ))
            // The coordinator's session is open before the start, so that its read
            // right after it takes a moment only.
            .ext(At::new(Sql::ok(PRIMARY, "SELECT 1"), [Coordinator]))
            .ext_start(
                At::new(
                    WriteLedger {
                        on: PRIMARY,
                        duration: std::time::Duration::from_secs(3),
                    }
                    .into_slot(LEDGER),
                    [Worker(0)],
                ),
                "load",
            )
            // Right after the start: the load has committed.
            .ext(At::new(
                Sql::read(
                    PRIMARY,
                    "SELECT least(count(*), 1) FROM stormchor_ledger",
                    1,
                ),
                [Coordinator],
            ))
            .ext(At::new(KillServer, [Primary]))
            .ext(At::new(RestartServer, [Primary]))
            .ext_finish("load")
            .send(Worker(0), Coordinator, LEDGER.carry())
            .ext(At::new(
                VerifyLedger {
                    on: PRIMARY,
                    ledgers: LEDGER,
                },
                [Coordinator],
            ))
            .ext(At::new(Verdict, [Coordinator]));
        let report = super::runtime()
            .block_on(run_program(
                "kill during a started load",
                &program,
                &ScenarioOptions::short(),
                Kit::new().expect("kit"),
            ))
            .expect("runs");
        // The read right after the start found a commit (it counts as started at
        // its first acknowledged one), and the kill after it lost nothing.
        assert!(report.success, "{}", report.render());
    }
}
