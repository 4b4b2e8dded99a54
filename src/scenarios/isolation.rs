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
//! A statement that must wait for another transaction's lock is started with
//! [`starts_waiting`] (which checks that it does wait) and finished later with
//! [`finish`], so the choreography can go on with the other role meanwhile.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use stormchor_choreography::{Program, to_mermaid};
use stormchor_macros::{ExtensionEffect, choreography};
use stormchor_runtime::postgres::{ClusterOptions, PgCluster, PgTarget, connect};
use stormchor_runtime::{
    EffectFailure, ExtensionRegistry, RegistryError, RoleLogic, RoleSetup, RoleState, RunConfig,
    run_all,
};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::journal::{CheckRecord, Journal, Journaled, register_phase};
use super::{Fault, ScenarioError, ScenarioOptions, ScenarioReport};

/// The roles of the isolation cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IsoRole {
    /// Sets each case up and checks its end state.
    Judge,
    /// The first transaction.
    T1,
    /// The second transaction.
    T2,
}

/// The only message: "your turn".
#[derive(Clone, Debug, PartialEq)]
pub enum IsoMsg {
    /// Your turn.
    Step,
}

/// An isolation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// READ UNCOMMITTED.
    ReadUncommitted,
    /// READ COMMITTED.
    ReadCommitted,
    /// REPEATABLE READ.
    RepeatableRead,
    /// SERIALIZABLE.
    Serializable,
}

impl Level {
    /// The level's SQL name.
    pub fn sql(self) -> &'static str {
        match self {
            Level::ReadUncommitted => "READ UNCOMMITTED",
            Level::ReadCommitted => "READ COMMITTED",
            Level::RepeatableRead => "REPEATABLE READ",
            Level::Serializable => "SERIALIZABLE",
        }
    }

    /// The next weaker level (read uncommitted stays).
    pub fn weaker(self) -> Level {
        match self {
            Level::ReadUncommitted | Level::ReadCommitted => Level::ReadUncommitted,
            Level::RepeatableRead => Level::ReadCommitted,
            Level::Serializable => Level::RepeatableRead,
        }
    }
}

/// What a statement must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Succeed.
    Ok,
    /// Succeed and return this integer in its first row and column.
    Value(i64),
    /// Fail with this SQLSTATE.
    Error(&'static str),
}

/// Extension effect: the role runs `sql` on its own connection and checks `expect`.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Exec {
    /// The statement(s).
    pub sql: String,
    /// What must happen.
    pub expect: Expect,
    /// Start it and check that it waits (for a lock), instead of running it to its end.
    pub waits: bool,
}

/// A statement that must succeed.
pub fn sql(sql: impl Into<String>) -> Exec {
    Exec {
        sql: sql.into(),
        expect: Expect::Ok,
        waits: false,
    }
}

/// A query whose first value must be `value`.
pub fn read(sql: impl Into<String>, value: i64) -> Exec {
    Exec {
        sql: sql.into(),
        expect: Expect::Value(value),
        waits: false,
    }
}

/// A statement that must fail with `sqlstate`.
pub fn fails(sql: impl Into<String>, sqlstate: &'static str) -> Exec {
    Exec {
        sql: sql.into(),
        expect: Expect::Error(sqlstate),
        waits: false,
    }
}

/// A statement that must wait for another transaction; [`finish`] it later.
pub fn starts_waiting(sql: impl Into<String>) -> Exec {
    Exec {
        sql: sql.into(),
        expect: Expect::Ok,
        waits: true,
    }
}

/// Extension effect: waits for the statement the role started with
/// [`starts_waiting`] and checks `expect`.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Finish {
    /// What must have happened.
    pub expect: Expect,
}

/// Waits for the started statement, which must have succeeded.
pub fn finish() -> Finish {
    Finish { expect: Expect::Ok }
}

/// Extension effect: a case begins (the judge names it and what it claims).
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Case {
    /// The case.
    pub name: &'static str,
    /// The level it runs at.
    pub level: Level,
    /// What PostgreSQL's documentation says.
    pub claim: &'static str,
}

/// Extension effect: the case ends; the judge records whether every expectation held.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Verdict;

/// `BEGIN` at `level`.
pub fn begin(level: Level) -> String {
    format!("BEGIN ISOLATION LEVEL {}", level.sql())
}

const TWO_ROWS: &str = "DROP TABLE IF EXISTS stormchor_iso; CREATE TABLE stormchor_iso (id int PRIMARY KEY, v int NOT NULL); \
     INSERT INTO stormchor_iso VALUES (1, 10), (2, 20)";
const ACCOUNTS: &str = "DROP TABLE IF EXISTS stormchor_iso; CREATE TABLE stormchor_iso (id int PRIMARY KEY, v int NOT NULL); \
     INSERT INTO stormchor_iso VALUES (1, 50), (2, 50)";
const DOCTORS: &str = "DROP TABLE IF EXISTS stormchor_doctors; CREATE TABLE stormchor_doctors (name text PRIMARY KEY, on_call bool NOT NULL); \
     INSERT INTO stormchor_doctors VALUES ('alice', true), ('bob', true)";

choreography! {
    /// T2 reads a row T1 changed but has not committed.
    pub fn dirty_read(level: Level) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "dirty read", level, claim: "prevented at every level" } @ Judge;
        ext sql(TWO_ROWS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext sql("UPDATE stormchor_iso SET v = 11 WHERE id = 1") @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql(begin(level)) @ T2;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T2;
        ext sql("COMMIT") @ T2;
        T2 -> T1: IsoMsg::Step;
        ext sql("COMMIT") @ T1;
        T1 -> Judge: IsoMsg::Step;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 11) @ Judge;
        ext Verdict @ Judge;
    }

    /// T2 writes a row T1 changed but has not committed: it must wait for T1.
    pub fn dirty_write(level: Level) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "dirty write", level, claim: "prevented: the second writer waits" } @ Judge;
        ext sql(TWO_ROWS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext sql("UPDATE stormchor_iso SET v = 11 WHERE id = 1") @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql(begin(level)) @ T2;
        ext starts_waiting("UPDATE stormchor_iso SET v = 12 WHERE id = 1") @ T2;
        T2 -> T1: IsoMsg::Step;
        ext sql("COMMIT") @ T1;
        T1 -> T2: IsoMsg::Step;
        ext finish() @ T2;
        ext sql("COMMIT") @ T2;
        T2 -> Judge: IsoMsg::Step;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 12) @ Judge;
        ext Verdict @ Judge;
    }

    /// T1 reads a row twice; T2 changes it in between and commits.
    pub fn non_repeatable_read(level: Level, second_read: i64, claim: &'static str) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "non-repeatable read", level, claim } @ Judge;
        ext sql(TWO_ROWS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql("UPDATE stormchor_iso SET v = 20 WHERE id = 1") @ T2;
        T2 -> T1: IsoMsg::Step;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", second_read) @ T1;
        ext sql("COMMIT") @ T1;
        T1 -> Judge: IsoMsg::Step;
        ext Verdict @ Judge;
    }

    /// T1 counts rows twice; T2 inserts a matching row in between and commits.
    pub fn phantom_read(level: Level, second_count: i64, claim: &'static str) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "phantom read", level, claim } @ Judge;
        ext sql(TWO_ROWS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext read("SELECT count(*) FROM stormchor_iso WHERE v > 0", 2) @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql("INSERT INTO stormchor_iso VALUES (3, 30)") @ T2;
        T2 -> T1: IsoMsg::Step;
        ext read("SELECT count(*) FROM stormchor_iso WHERE v > 0", second_count) @ T1;
        ext sql("COMMIT") @ T1;
        T1 -> Judge: IsoMsg::Step;
        ext Verdict @ Judge;
    }

    /// Both read 10 and write back 11 (an increment each): one increment is lost, or
    /// the second writer is told to retry.
    pub fn lost_update(level: Level, second_write: Exec, end: i64, claim: &'static str) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "lost update", level, claim } @ Judge;
        ext sql(TWO_ROWS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql(begin(level)) @ T2;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 10) @ T2;
        T2 -> T1: IsoMsg::Step;
        ext sql("UPDATE stormchor_iso SET v = 11 WHERE id = 1") @ T1;
        ext sql("COMMIT") @ T1;
        T1 -> T2: IsoMsg::Step;
        ext second_write @ T2;
        ext sql("ROLLBACK") @ T2;
        T2 -> Judge: IsoMsg::Step;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", end) @ Judge;
        ext Verdict @ Judge;
    }

    /// T1 reads account 1, T2 moves 10 from account 1 to 2 and commits, T1 reads
    /// account 2: a sum of 110 is read skew.
    pub fn read_skew(level: Level, second_read: i64, claim: &'static str) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "read skew", level, claim } @ Judge;
        ext sql(ACCOUNTS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext read("SELECT v FROM stormchor_iso WHERE id = 1", 50) @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql("BEGIN; UPDATE stormchor_iso SET v = v - 10 WHERE id = 1; UPDATE stormchor_iso SET v = v + 10 WHERE id = 2; COMMIT") @ T2;
        T2 -> T1: IsoMsg::Step;
        ext read("SELECT v FROM stormchor_iso WHERE id = 2", second_read) @ T1;
        ext sql("COMMIT") @ T1;
        T1 -> Judge: IsoMsg::Step;
        ext read("SELECT sum(v) FROM stormchor_iso", 100) @ Judge;
        ext Verdict @ Judge;
    }

    /// Two doctors on call; each, seeing two on call, goes off call: nobody is left,
    /// or the second commit fails.
    pub fn write_skew(level: Level, second_commit: Exec, on_call: i64, claim: &'static str) -> Program<IsoRole, IsoMsg> {
        roles Judge, T1, T2;
        ext Case { name: "write skew", level, claim } @ Judge;
        ext sql(DOCTORS) @ Judge;
        Judge -> T1: IsoMsg::Step;
        ext sql(begin(level)) @ T1;
        ext read("SELECT count(*) FROM stormchor_doctors WHERE on_call", 2) @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql(begin(level)) @ T2;
        ext read("SELECT count(*) FROM stormchor_doctors WHERE on_call", 2) @ T2;
        T2 -> T1: IsoMsg::Step;
        ext sql("UPDATE stormchor_doctors SET on_call = false WHERE name = 'alice'") @ T1;
        T1 -> T2: IsoMsg::Step;
        ext sql("UPDATE stormchor_doctors SET on_call = false WHERE name = 'bob'") @ T2;
        T2 -> T1: IsoMsg::Step;
        ext sql("COMMIT") @ T1;
        T1 -> T2: IsoMsg::Step;
        ext second_commit @ T2;
        ext sql("ROLLBACK") @ T2;
        T2 -> Judge: IsoMsg::Step;
        ext read("SELECT count(*) FROM stormchor_doctors WHERE on_call", on_call) @ Judge;
        ext Verdict @ Judge;
    }
}

/// The serialization failure SQLSTATE.
const SERIALIZATION_FAILURE: &str = "40001";

/// Every case, in order; with `weaker`, each runs one level below the level it is
/// written for (the expectations stay: the cases that rely on the level must fail).
pub fn cases(weaker: bool) -> Vec<Program<IsoRole, IsoMsg>> {
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
            sql("UPDATE stormchor_iso SET v = 11 WHERE id = 1; COMMIT"),
            11,
            "possible: one increment is lost",
        ),
        lost_update(
            at(RepeatableRead),
            fails(
                "UPDATE stormchor_iso SET v = 11 WHERE id = 1",
                SERIALIZATION_FAILURE,
            ),
            11,
            "prevented: the second writer must retry",
        ),
        read_skew(at(ReadCommitted), 60, "possible"),
        read_skew(at(RepeatableRead), 50, "prevented"),
        write_skew(at(RepeatableRead), sql("COMMIT"), 0, "possible"),
        write_skew(
            at(Serializable),
            fails("COMMIT", SERIALIZATION_FAILURE),
            1,
            "prevented: one commit fails",
        ),
    ]
}

/// Every case as one program, one after the other.
pub fn program(options: &ScenarioOptions) -> Program<IsoRole, IsoMsg> {
    let weaker = options.fault == Some(Fault::WeakerIsolation);
    cases(weaker)
        .into_iter()
        .fold(Program::new(), |all, case| all.then(case))
}

/// The diagram of every case, one after the other.
pub fn diagram(options: &ScenarioOptions) -> String {
    to_mermaid(&program(options))
}

/// What the roles of an isolation run share.
struct Bench {
    connection: String,
    journal: Journal,
    case: Mutex<Option<Case>>,
    failures: Mutex<Vec<String>>,
}

/// A statement running on its own, waiting for a lock.
type Running = JoinHandle<Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>>;

/// One transaction role's data: its connection and the statement it left waiting.
struct Session {
    bench: Arc<Bench>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    waiting: tokio::sync::Mutex<Option<Running>>,
}

impl Journaled for Session {
    fn journal(&self) -> &Journal {
        &self.bench.journal
    }
}

impl RoleLogic<IsoRole, IsoMsg> for Session {}

type State = RoleState<IsoRole, IsoMsg, Session>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a statement may take before it counts as stuck.
const STATEMENT_BOUND: Duration = Duration::from_secs(10);
/// How long a statement that must wait is watched before it counts as waiting.
const WAIT_PROOF: Duration = Duration::from_millis(300);

impl Session {
    async fn client(&self) -> Result<Arc<Client>, EffectFailure> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(
            connect(&self.bench.connection)
                .await
                .map_err(|e| EffectFailure::permanent(e.to_string()))?,
        );
        *slot = Some(client.clone());
        Ok(client)
    }

    fn fail(&self, role: IsoRole, sql: &str, problem: String) {
        lock(&self.bench.failures).push(format!("{role:?}: `{sql}`: {problem}"));
    }
}

/// Compares what a statement did with what it had to do; the problem, if any.
fn judge(
    outcome: &Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>,
    expect: &Expect,
) -> Option<String> {
    let first_value = |messages: &Vec<SimpleQueryMessage>| {
        messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
    };
    let code = |error: &tokio_postgres::Error| {
        error
            .code()
            .map_or("no SQLSTATE".to_owned(), |c| c.code().to_owned())
    };
    match (outcome, expect) {
        (Ok(_), Expect::Ok) => None,
        (Ok(messages), Expect::Value(want)) => match first_value(messages) {
            Some(got) if got.parse::<i64>().ok() == Some(*want) => None,
            got => Some(format!(
                "expected {want}, read {}",
                got.unwrap_or_else(|| "no row".to_owned())
            )),
        },
        (Ok(_), Expect::Error(want)) => Some(format!("expected SQLSTATE {want}, but it succeeded")),
        (Err(error), Expect::Error(want)) if code(error) == *want => None,
        (Err(error), _) => Some(format!("failed with SQLSTATE {}: {error}", code(error))),
    }
}

fn registry() -> Result<ExtensionRegistry<State>, RegistryError> {
    let mut registry = ExtensionRegistry::new();
    register_phase(&mut registry)?;
    registry.register_unit::<Case, _>(|state: &State, case| {
        Box::pin(async move {
            let bench = &state.data().bench;
            bench.journal.enter(state.role(), case.name);
            *lock(&bench.case) = Some(case.clone());
            lock(&bench.failures).clear();
            Ok(())
        })
    })?;
    registry.register_unit::<Exec, _>(|state: &State, exec| {
        Box::pin(async move {
            let session = state.data();
            let client = session.client().await?;
            if exec.waits {
                let statement = exec.sql.clone();
                let running = client.clone();
                let handle = tokio::spawn(async move { running.simple_query(&statement).await });
                tokio::time::sleep(WAIT_PROOF).await;
                if handle.is_finished() {
                    session.fail(
                        state.role(),
                        &exec.sql,
                        "expected to wait for the other transaction, but finished at once"
                            .to_owned(),
                    );
                }
                *session.waiting.lock().await = Some(handle);
                return Ok(());
            }
            let outcome =
                match tokio::time::timeout(STATEMENT_BOUND, client.simple_query(&exec.sql)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        session.fail(
                            state.role(),
                            &exec.sql,
                            format!("still running after {STATEMENT_BOUND:?}"),
                        );
                        // The connection is stuck: the next statement gets a new one.
                        *session.client.lock().await = None;
                        return Ok(());
                    }
                };
            if let Some(problem) = judge(&outcome, &exec.expect) {
                session.fail(state.role(), &exec.sql, problem);
            }
            Ok(())
        })
    })?;
    registry.register_unit::<Finish, _>(|state: &State, finish| {
        Box::pin(async move {
            let session = state.data();
            let Some(handle) = session.waiting.lock().await.take() else {
                return Err(EffectFailure::permanent(
                    "no statement was started to finish",
                ));
            };
            let abort = handle.abort_handle();
            match tokio::time::timeout(STATEMENT_BOUND, handle).await {
                Ok(Ok(outcome)) => {
                    if let Some(problem) = judge(&outcome, &finish.expect) {
                        session.fail(state.role(), "the waiting statement", problem);
                    }
                }
                Ok(Err(join)) => {
                    session.fail(state.role(), "the waiting statement", join.to_string())
                }
                Err(_) => {
                    abort.abort();
                    session.fail(
                        state.role(),
                        "the waiting statement",
                        format!("still waiting after {STATEMENT_BOUND:?}"),
                    );
                    *session.client.lock().await = None;
                }
            }
            Ok(())
        })
    })?;
    registry.register_unit::<Verdict, _>(|state: &State, _| {
        Box::pin(async move {
            let bench = &state.data().bench;
            let case = lock(&bench.case).take();
            let failures = std::mem::take(&mut *lock(&bench.failures));
            let Some(case) = case else {
                return Err(EffectFailure::permanent("a verdict without a case"));
            };
            bench.journal.check(CheckRecord {
                name: format!("{} at {}", case.name, case.level.sql().to_lowercase()),
                role: format!("{:?}", state.role()),
                passed: failures.is_empty(),
                summary: format!("PostgreSQL documents it as {}", case.claim),
                evidence: failures,
            });
            Ok(())
        })
    })?;
    Ok(registry)
}

/// Runs every case against a throwaway cluster (or the target).
pub async fn run(options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    let fail = |message: String| ScenarioError::Setup {
        scenario: "isolation".to_owned(),
        message,
    };
    let program = program(&options);
    super::check_sound("isolation", &program)?;
    let target = match &options.target {
        Some(target) => PgTarget::External(target.clone()),
        None => PgTarget::Throwaway(
            PgCluster::start(ClusterOptions::default())
                .await
                .map_err(|e| fail(e.to_string()))?,
        ),
    };
    let bench = Arc::new(Bench {
        connection: target.connection_string(),
        journal: Journal::new(),
        case: Mutex::new(None),
        failures: Mutex::new(Vec::new()),
    });
    let registry = Arc::new(registry().map_err(|e| fail(e.to_string()))?);
    let run = run_all(
        &program,
        |_| {
            RoleSetup::with_registry(
                Session {
                    bench: bench.clone(),
                    client: tokio::sync::Mutex::new(None),
                    waiting: tokio::sync::Mutex::new(None),
                },
                registry.clone(),
            )
        },
        RunConfig::default().with_deadline(Duration::from_secs(600)),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    let mut report = bench.journal.report(
        "isolation",
        options.seed,
        &run,
        to_mermaid(&program),
        |_| Vec::new(),
    );
    let passed = report.checks.iter().filter(|c| c.passed).count();
    report
        .figures
        .insert("cases".to_owned(), serde_json::json!(report.checks.len()));
    report
        .figures
        .insert("cases_as_documented".to_owned(), serde_json::json!(passed));
    drop(run);
    // Stopping a throwaway cluster waits for its processes: off the async threads.
    let _ = tokio::task::spawn_blocking(move || drop(target)).await;
    Ok(report)
}
