//! `isolation`: two transaction roles, `T1` and `T2`, whose statements the
//! choreography interleaves step by step, and a `Judge` that sets each case up and
//! checks its end state. Each case checks one anomaly that PostgreSQL's documentation
//! says is possible, or prevented, at one isolation level:
//!
//! | case | level | PostgreSQL says |
//! |---|---|---|
//! | dirty read | read uncommitted | prevented (read uncommitted behaves as read committed) |
//! | dirty write | read committed | prevented: the second writer waits for the first |
//! | non-repeatable read | read committed | possible |
//! | non-repeatable read | repeatable read | prevented |
//! | phantom read | read committed | possible |
//! | phantom read | repeatable read | prevented (PostgreSQL goes beyond the standard) |
//! | lost update | read committed | possible (read, compute, write back) |
//! | lost update | repeatable read | prevented: the second writer gets a serialization failure |
//! | read skew | read committed | possible |
//! | read skew | repeatable read | prevented |
//! | write skew | repeatable read | possible |
//! | write skew | serializable | prevented: one commit fails with a serialization failure |
//!
//! The steps run in the program's order with no hand-off written by hand: effect
//! order (docs/choreography.md) makes each statement wait until the one before it,
//! at whichever role, has finished. A statement that must wait for another
//! transaction's lock is started (`ext start Sql::waits(..) @ T2 as update;`): it
//! counts as started once the server reports it blocked, so the other role's next
//! statement comes after that, and `ext finish update @ T2;` waits for its outcome.
//! The judge runs the server; each transaction role has its own session; what missed
//! in a case travels to the judge in a message (`MISSED`).

use std::time::Duration;

use stormchor_kit::effects::sql::MISSED;
use stormchor_kit::effects::{Case, Level, Phase, Sql, StartServer, Verdict};
use stormchor_kit::slots::PRIMARY;
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitRole, KitScenario, Program};
use stormchor_macros::choreography;

use super::ScenarioOptions;

/// The roles of the isolation cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IsoRole {
    /// Runs the server, sets each case up and checks its end state.
    Judge,
    /// The first transaction.
    T1,
    /// The second transaction.
    T2,
}

impl KitRole for IsoRole {}

const TWO_ROWS: &str = "DROP TABLE IF EXISTS stormchor_iso; CREATE TABLE stormchor_iso (id int PRIMARY KEY, v int NOT NULL); \
     INSERT INTO stormchor_iso VALUES (1, 10), (2, 20)";
const ACCOUNTS: &str = "DROP TABLE IF EXISTS stormchor_iso; CREATE TABLE stormchor_iso (id int PRIMARY KEY, v int NOT NULL); \
     INSERT INTO stormchor_iso VALUES (1, 50), (2, 50)";
const DOCTORS: &str = "DROP TABLE IF EXISTS stormchor_doctors; CREATE TABLE stormchor_doctors (name text PRIMARY KEY, on_call bool NOT NULL); \
     INSERT INTO stormchor_doctors VALUES ('alice', true), ('bob', true)";

choreography! {
    /// T2 reads a row T1 changed but has not committed.
    pub fn dirty_read(level: Level) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "dirty read", level, claim: "prevented at every level" };
        ext Sql::ok(PRIMARY, TWO_ROWS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::ok(PRIMARY, "UPDATE stormchor_iso SET v = 11 WHERE id = 1") @ T1;
        ext Sql::ok(PRIMARY, level.begin()) @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T2;
        ext Sql::ok(PRIMARY, "COMMIT") @ T2;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 11) @ Judge;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// T2 writes a row T1 changed but has not committed: it must wait for T1.
    pub fn dirty_write(level: Level) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "dirty write", level, claim: "prevented: the second writer waits" };
        ext Sql::ok(PRIMARY, TWO_ROWS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::ok(PRIMARY, "UPDATE stormchor_iso SET v = 11 WHERE id = 1") @ T1;
        ext Sql::ok(PRIMARY, level.begin()) @ T2;
        ext start Sql::waits(PRIMARY, "UPDATE stormchor_iso SET v = 12 WHERE id = 1") @ T2 as update;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext finish update @ T2;
        ext Sql::ok(PRIMARY, "COMMIT") @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 12) @ Judge;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// T1 reads a row twice; T2 changes it in between and commits.
    pub fn non_repeatable_read(level: Level, second_read: i64, claim: &'static str) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "non-repeatable read", level, claim };
        ext Sql::ok(PRIMARY, TWO_ROWS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T1;
        ext Sql::ok(PRIMARY, "UPDATE stormchor_iso SET v = 20 WHERE id = 1") @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", second_read) @ T1;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// T1 counts rows twice; T2 inserts a matching row in between and commits.
    pub fn phantom_read(level: Level, second_count: i64, claim: &'static str) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "phantom read", level, claim };
        ext Sql::ok(PRIMARY, TWO_ROWS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::read(PRIMARY, "SELECT count(*) FROM stormchor_iso WHERE v > 0", 2) @ T1;
        ext Sql::ok(PRIMARY, "INSERT INTO stormchor_iso VALUES (3, 30)") @ T2;
        ext Sql::read(PRIMARY, "SELECT count(*) FROM stormchor_iso WHERE v > 0", second_count) @ T1;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// Both read 10 and write back 11 (an increment each): one increment is lost, or
    /// the second writer is told to retry.
    pub fn lost_update(level: Level, second_write: Sql, end: i64, claim: &'static str) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "lost update", level, claim };
        ext Sql::ok(PRIMARY, TWO_ROWS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T1;
        ext Sql::ok(PRIMARY, level.begin()) @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T2;
        ext Sql::ok(PRIMARY, "UPDATE stormchor_iso SET v = 11 WHERE id = 1") @ T1;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext second_write @ T2;
        ext Sql::ok(PRIMARY, "ROLLBACK") @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", end) @ Judge;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// T1 reads account 1, T2 moves 10 from account 1 to 2 and commits, T1 reads
    /// account 2: a sum of 110 is read skew.
    pub fn read_skew(level: Level, second_read: i64, claim: &'static str) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "read skew", level, claim };
        ext Sql::ok(PRIMARY, ACCOUNTS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 1", 50) @ T1;
        ext Sql::ok(PRIMARY, "BEGIN; UPDATE stormchor_iso SET v = v - 10 WHERE id = 1; UPDATE stormchor_iso SET v = v + 10 WHERE id = 2; COMMIT") @ T2;
        ext Sql::read(PRIMARY, "SELECT v FROM stormchor_iso WHERE id = 2", second_read) @ T1;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext Sql::read(PRIMARY, "SELECT sum(v) FROM stormchor_iso", 100) @ Judge;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }

    /// Two doctors on call; each, seeing two on call, goes off call: nobody is left,
    /// or the second commit fails.
    pub fn write_skew(level: Level, second_commit: Sql, on_call: i64, claim: &'static str) -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Case { name: "write skew", level, claim };
        ext Sql::ok(PRIMARY, DOCTORS) @ Judge;
        ext Sql::ok(PRIMARY, level.begin()) @ T1;
        ext Sql::read(PRIMARY, "SELECT count(*) FROM stormchor_doctors WHERE on_call", 2) @ T1;
        ext Sql::ok(PRIMARY, level.begin()) @ T2;
        ext Sql::read(PRIMARY, "SELECT count(*) FROM stormchor_doctors WHERE on_call", 2) @ T2;
        ext Sql::ok(PRIMARY, "UPDATE stormchor_doctors SET on_call = false WHERE name = 'alice'") @ T1;
        ext Sql::ok(PRIMARY, "UPDATE stormchor_doctors SET on_call = false WHERE name = 'bob'") @ T2;
        ext Sql::ok(PRIMARY, "COMMIT") @ T1;
        ext second_commit @ T2;
        ext Sql::ok(PRIMARY, "ROLLBACK") @ T2;
        ext Sql::read(PRIMARY, "SELECT count(*) FROM stormchor_doctors WHERE on_call", on_call) @ Judge;
        T1 -> Judge: MISSED.carry();
        T2 -> Judge: MISSED.carry();
        ext Verdict @ Judge;
    }
}

/// The serialization failure SQLSTATE.
const SERIALIZATION_FAILURE: &str = "40001";

/// Every case, in order; with `weaker`, each runs one level below the level it is
/// written for (the expectations stay: the cases that rely on the level must fail).
pub fn cases(weaker: bool) -> Vec<Program<IsoRole, Carry>> {
    let at = |level: Level| if weaker { level.weaker() } else { level };
    use Level::*;
    vec![
        dirty_read(at(ReadUncommitted)),
        dirty_write(at(ReadCommitted)),
        non_repeatable_read(at(ReadCommitted), 20, "possible"),
        non_repeatable_read(at(RepeatableRead), 10, "prevented"),
        phantom_read(at(ReadCommitted), 3, "possible"),
        phantom_read(at(RepeatableRead), 2, "prevented (beyond the standard)"),
        lost_update(
            at(ReadCommitted),
            Sql::ok(
                PRIMARY,
                "UPDATE stormchor_iso SET v = 11 WHERE id = 1; COMMIT",
            ),
            11,
            "possible: one increment is lost",
        ),
        lost_update(
            at(RepeatableRead),
            Sql::fails(
                PRIMARY,
                "UPDATE stormchor_iso SET v = 11 WHERE id = 1",
                SERIALIZATION_FAILURE,
            ),
            11,
            "prevented: the second writer must retry",
        ),
        read_skew(at(ReadCommitted), 60, "possible"),
        read_skew(at(RepeatableRead), 50, "prevented"),
        write_skew(
            at(RepeatableRead),
            Sql::ok(PRIMARY, "COMMIT"),
            0,
            "possible",
        ),
        write_skew(
            at(Serializable),
            Sql::fails(PRIMARY, "COMMIT", SERIALIZATION_FAILURE),
            1,
            "prevented: one commit fails",
        ),
    ]
}

choreography! {
    /// The judge starts the server (or uses the target) and tells the transactions.
    pub fn isolation_setup() -> Program<IsoRole, Carry> {
        roles Judge, T1, T2;
        ext Phase("setup") @ Judge;
        ext StartServer::target_in_own_schema_or_throwaway() => PRIMARY @ Judge;
        Judge -> T1: PRIMARY.carry();
        Judge -> T2: PRIMARY.carry();
    }
}

/// Every case as one program, one after the other.
pub fn program(options: &ScenarioOptions) -> Program<IsoRole, Carry> {
    let weaker = options.fault == Some(Fault::WeakerIsolation);
    cases(weaker)
        .into_iter()
        .fold(isolation_setup(), |all, case| all.then(case))
}

/// The scenario.
pub fn scenario() -> KitScenario<IsoRole> {
    KitScenario::new(
        "isolation",
        "transaction roles interleaved step by step: dirty reads/writes, lost updates, non-repeatable and phantom reads, read and write skew at each isolation level",
        program,
    )
    .with_faults(&[Fault::WeakerIsolation])
    .with_defaults(Defaults {
        controls_processes: false,
        touches_user_tables: false,
        schema_file: false,
        workers: 0,
        rounds: 0,
        duration: Duration::from_secs(0),
    })
}
