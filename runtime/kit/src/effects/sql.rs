//! SQL steps: a transaction role runs a statement on its own session and checks
//! what it must do (succeed, read a value, fail with a SQLSTATE, wait for another
//! role's lock); a statement that must wait is started, seen waiting, and finished
//! later. A [`Case`] groups steps; its [`Verdict`] is a check of the report, with
//! every step that did not do what it had to as evidence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::{EffectFailure, StartSignal};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::node::Node;
use crate::value::Slot;

/// The steps of the current case that did not do what they had to, one line each: a
/// transaction role's value, sent to the role that judges the case.
pub const MISSED: Slot<Vec<String>> = Slot::new("missed expectations");

/// An isolation level.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Level;
///
/// assert_ne!(Level::RepeatableRead, Level::Serializable);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

    /// `BEGIN` at this level.
    pub fn begin(self) -> String {
        format!("BEGIN ISOLATION LEVEL {}", self.sql())
    }
}

/// What a statement must do.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Expect;
///
/// // A serialization failure must be SQLSTATE 40001.
/// let must_fail = Expect::Error("40001");
/// assert_ne!(must_fail, Expect::Ok);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Succeed.
    Ok,
    /// Succeed and return this integer in its first row and column.
    Value(i64),
    /// Fail with this SQLSTATE.
    Error(&'static str),
    /// Succeed and return this many rows.
    Rows(usize),
}

/// A statement running on its own, waiting for a lock.
type Running = JoinHandle<Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>>;

/// A role's SQL session: its connection, its backend, the statement it left waiting,
/// and the steps of the current case that missed.
#[derive(Debug, Default)]
pub struct Sessions {
    client: tokio::sync::Mutex<Option<(Arc<Client>, i32)>>,
    waiting: tokio::sync::Mutex<Option<Running>>,
    /// The statement started with `ext start` that still runs on the session.
    started: std::sync::Mutex<Option<String>>,
    missed: std::sync::Mutex<Vec<String>>,
}

/// How long a statement may take before it counts as stuck.
const STATEMENT_BOUND: Duration = Duration::from_secs(10);

impl Sessions {
    /// Closes the session's connection and abandons a statement left waiting.
    pub(crate) async fn close(&self) {
        if let Some(waiting) = self.waiting.lock().await.take() {
            waiting.abort();
        }
        self.client.lock().await.take();
    }

    async fn client(&self, connection: &str) -> Result<(Arc<Client>, i32), EffectFailure> {
        let mut slot = self.client.lock().await;
        if let Some((client, pid)) = slot.as_ref().filter(|(c, _)| !c.is_closed()) {
            return Ok((client.clone(), *pid));
        }
        let client = Arc::new(connect(connection).await?);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(failed)?
            .get(0);
        *slot = Some((client.clone(), pid));
        Ok((client, pid))
    }

    /// Refuses a statement while another one of this session has not ended: a
    /// session runs one statement at a time, so it would wait behind the first (for
    /// the lock the first waits for) instead of running.
    async fn free(&self, node: &Node, sql: &str) -> Result<(), EffectFailure> {
        let busy = crate::node::lock(&self.started).clone();
        let busy = match busy {
            Some(started) => Some(format!(
                "the statement `{started}` it started (`ext start`)"
            )),
            None if self.waiting.lock().await.is_some() => {
                Some("the statement it left waiting (`Finish` it first)".to_owned())
            }
            None => None,
        };
        match busy {
            Some(busy) => Err(EffectFailure::permanent(format!(
                "{} cannot run `{sql}`: its session still runs {busy}; a session runs one \
                 statement at a time, so finish that one first (`ext finish`), or run this \
                 statement at another role",
                node.role()
            ))),
            None => Ok(()),
        }
    }

    fn miss(&self, node: &Node, sql: &str, problem: String) {
        let mut missed = crate::node::lock(&self.missed);
        missed.push(format!("{}: `{sql}`: {problem}", node.role()));
        // The role's value of MISSED follows every change.
        let _ = node.values().put(MISSED, &missed);
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
        (Ok(messages), Expect::Rows(want)) => {
            let rows = messages
                .iter()
                .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                .count();
            (rows != *want).then(|| format!("expected {want} rows, got {rows}"))
        }
        (Ok(_), Expect::Error(want)) => Some(format!("expected SQLSTATE {want}, but it succeeded")),
        (Err(error), Expect::Error(want)) if code(error) == *want => None,
        (Err(error), _) => Some(format!("failed with SQLSTATE {}: {error}", code(error))),
    }
}

/// Runs `sql` on this role's session (connected to the server in `on` at its first
/// step) and checks `expect`. With `waits`, the statement must wait for a lock another
/// session holds (the server says its backend is blocked, within a bound): started
/// with `ext start Sql::waits(..) @ T2 as h;`, it counts as started once seen waiting,
/// so the program's next steps (another role's `COMMIT`) come after that, and
/// `ext finish h;` waits for its outcome and checks `expect`. (Run whole with `ext`,
/// it returns once seen waiting and [`Finish`] waits for its outcome: the older form.)
/// A missed expectation is recorded for the case's [`Verdict`], not an effect failure.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Expect, Sql};
/// use stormchor_kit::slots::PRIMARY;
///
/// let step = Sql::read(PRIMARY, "SELECT v FROM t WHERE id = 1", 10);
/// assert_eq!(step.expect, Expect::Value(10));
/// assert!(!step.waits);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Sql {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// The statement(s).
    pub sql: String,
    /// What must happen.
    pub expect: Expect,
    /// Start it and check that it waits, instead of running it to its end.
    pub waits: bool,
    /// With `waits`: the backend (its [`SessionPid`], sent by its role) whose lock it
    /// must wait for.
    pub blocked_by: Option<Slot<i32>>,
}

impl Sql {
    /// A statement that must succeed.
    pub fn ok(on: Slot<ServerInfo>, sql: impl Into<String>) -> Sql {
        Sql {
            on,
            sql: sql.into(),
            expect: Expect::Ok,
            waits: false,
            blocked_by: None,
        }
    }

    /// A query whose first value must be `value`.
    pub fn read(on: Slot<ServerInfo>, sql: impl Into<String>, value: i64) -> Sql {
        Sql {
            expect: Expect::Value(value),
            ..Sql::ok(on, sql)
        }
    }

    /// A statement that must fail with `sqlstate`.
    pub fn fails(on: Slot<ServerInfo>, sql: impl Into<String>, sqlstate: &'static str) -> Sql {
        Sql {
            expect: Expect::Error(sqlstate),
            ..Sql::ok(on, sql)
        }
    }

    /// A statement that must wait for another session's lock; [`Finish`] it later.
    pub fn waits(on: Slot<ServerInfo>, sql: impl Into<String>) -> Sql {
        Sql {
            waits: true,
            ..Sql::ok(on, sql)
        }
    }

    /// A statement that must wait for a lock held by the session whose backend is in
    /// `holder` (another role's [`SessionPid`], sent to this one); [`Finish`] it later.
    pub fn waits_for(on: Slot<ServerInfo>, sql: impl Into<String>, holder: Slot<i32>) -> Sql {
        Sql {
            blocked_by: Some(holder),
            ..Sql::waits(on, sql)
        }
    }
}

impl DbEffect for Sql {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        // Started with `ext start`, this effect says when it has started (once seen
        // waiting): take the signal before the first wait (connecting, at a role's
        // first statement), or the start would count from that wait, before the
        // statement is even sent.
        let signal = if self.waits {
            StartSignal::take()
        } else {
            None
        };
        let server = node.value(self.on)?;
        let sessions = &node.sessions;
        sessions.free(node, &self.sql).await?;
        let (client, pid) = sessions.client(&server.connection).await?;
        if self.waits {
            let statement = self.sql.clone();
            let running = client.clone();
            let holder = match self.blocked_by {
                Some(slot) => Some(node.value(slot)?),
                None => None,
            };
            // Started with `ext start`: it runs on to its outcome, judged against
            // `expect`.
            // Until it ends (or its role drops it), the session is this statement's.
            let _busy = signal.is_some().then(|| Busy::new(sessions, &self.sql));
            let handle = tokio::spawn(async move { running.simple_query(&statement).await });
            let abort = AbortOnDrop(handle.abort_handle());
            if let Some(problem) = seen_waiting(&server.connection, pid, holder, &handle).await? {
                sessions.miss(node, &self.sql, problem);
            }
            let Some(signal) = signal else {
                // Run whole (`ext`): the statement waits for `Finish`.
                std::mem::forget(abort);
                *sessions.waiting.lock().await = Some(handle);
                return Ok(());
            };
            signal.started();
            match tokio::time::timeout(STATEMENT_BOUND, handle).await {
                Ok(Ok(outcome)) => {
                    if let Some(problem) = judge(&outcome, &self.expect) {
                        sessions.miss(node, &self.sql, problem);
                    }
                }
                Ok(Err(join)) => sessions.miss(node, &self.sql, join.to_string()),
                Err(_) => {
                    sessions.miss(
                        node,
                        &self.sql,
                        format!("still waiting after {STATEMENT_BOUND:?}"),
                    );
                    *sessions.client.lock().await = None;
                }
            }
            drop(abort);
            return Ok(());
        }
        match tokio::time::timeout(STATEMENT_BOUND, client.simple_query(&self.sql)).await {
            Ok(outcome) => {
                if let Some(problem) = judge(&outcome, &self.expect) {
                    sessions.miss(node, &self.sql, problem);
                }
            }
            Err(_) => {
                sessions.miss(
                    node,
                    &self.sql,
                    format!("still running after {STATEMENT_BOUND:?}"),
                );
                // The connection is stuck: the next statement gets a new one.
                *sessions.client.lock().await = None;
            }
        }
        Ok(())
    }
}

/// Marks a session's started statement as running until dropped.
struct Busy<'s>(&'s Sessions);

impl<'s> Busy<'s> {
    fn new(sessions: &'s Sessions, sql: &str) -> Self {
        *crate::node::lock(&sessions.started) = Some(sql.to_owned());
        Busy(sessions)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        crate::node::lock(&self.0.started).take();
    }
}

/// Aborts a statement's task when dropped: a started statement whose role stops
/// takes its task with it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches backend `pid` from a second connection until the server reports it
/// blocked by another backend (`pg_blocking_pids`; by `holder` when given), for at
/// most the statement bound; the problem, if it finished instead or never waited (or
/// waited for another backend).
async fn seen_waiting(
    connection: &str,
    pid: i32,
    holder: Option<i32>,
    handle: &Running,
) -> Result<Option<String>, EffectFailure> {
    let watcher = connect(connection).await?;
    let deadline = Instant::now() + STATEMENT_BOUND;
    loop {
        if handle.is_finished() {
            return Ok(Some(
                "expected to wait for another session's lock, but finished at once".to_owned(),
            ));
        }
        let blockers: Vec<i32> = watcher
            .query_one("SELECT pg_blocking_pids($1)", &[&pid])
            .await
            .map_err(failed)?
            .get(0);
        match holder {
            Some(holder) if blockers.contains(&holder) => return Ok(None),
            None if !blockers.is_empty() => return Ok(None),
            _ => {}
        }
        if Instant::now() >= deadline {
            return Ok(Some(match holder {
                Some(holder) => format!(
                    "expected to wait for backend {holder}'s lock; blocked by {blockers:?} after {STATEMENT_BOUND:?}"
                ),
                None => format!(
                    "expected to wait for another session's lock; not blocked after {STATEMENT_BOUND:?}"
                ),
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The backend process id of this role's SQL session (connected to the server in
/// `on`), to send to a role whose statement must wait for this one's locks
/// ([`Sql::waits_for`]).
///
/// # Example
/// ```
/// use stormchor_kit::effects::{SessionPid, Sql};
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::{DbEffect, Slot};
///
/// // T1 sends its backend's pid; T2's update must wait for exactly that backend.
/// const T1_PID: Slot<i32> = Slot::new("t1 pid");
/// let pid = SessionPid { on: PRIMARY }.into_slot(T1_PID);
/// let blocked = Sql::waits_for(PRIMARY, "UPDATE t SET v = 2 WHERE id = 1", T1_PID);
/// assert_eq!(blocked.blocked_by, Some(T1_PID));
/// # let _ = pid;
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct SessionPid {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for SessionPid {
    type Output = i32;

    async fn run(&self, node: &Node) -> Result<i32, EffectFailure> {
        let server = node.value(self.on)?;
        Ok(node.sessions.client(&server.connection).await?.1)
    }
}

/// Waits for the statement this role started with [`Sql::waits`] and checks `expect`.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Expect, Finish};
///
/// // The statement left waiting ends with a serialization failure once the lock holder commits.
/// let finish = Finish { expect: Expect::Error("40001") };
/// assert_eq!(finish.expect, Expect::Error("40001"));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Finish {
    /// What must have happened.
    pub expect: Expect,
}

impl DbEffect for Finish {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let sessions = &node.sessions;
        let Some(handle) = sessions.waiting.lock().await.take() else {
            return Err(EffectFailure::permanent(format!(
                "{} started no statement to finish",
                node.role()
            )));
        };
        let abort = handle.abort_handle();
        match tokio::time::timeout(STATEMENT_BOUND, handle).await {
            Ok(Ok(outcome)) => {
                if let Some(problem) = judge(&outcome, &self.expect) {
                    sessions.miss(node, "the waiting statement", problem);
                }
            }
            Ok(Err(join)) => sessions.miss(node, "the waiting statement", join.to_string()),
            Err(_) => {
                abort.abort();
                sessions.miss(
                    node,
                    "the waiting statement",
                    format!("still waiting after {STATEMENT_BOUND:?}"),
                );
                *sessions.client.lock().await = None;
            }
        }
        Ok(())
    }
}

/// A case begins at every role taking part: each forgets what missed in the last one.
/// The judging role records the case's name and claim. Bookkeeping of each role's
/// own: it orders nothing.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Case, Level};
///
/// let case = Case { name: "lost update", level: Level::RepeatableRead, claim: "the second update fails" };
/// assert_eq!(case.level, Level::RepeatableRead);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
#[effect(unordered)]
pub struct Case {
    /// The case.
    pub name: &'static str,
    /// The level it runs at.
    pub level: Level,
    /// What the documentation says.
    pub claim: &'static str,
}

impl DbEffect for Case {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        node.journal().enter(self.name);
        let mut missed = crate::node::lock(&node.sessions.missed);
        missed.clear();
        node.values().put(MISSED, &*missed).map_err(failed)?;
        node.values()
            .put(
                CASE,
                &(self.name.to_owned(), self.level, self.claim.to_owned()),
            )
            .map_err(failed)
    }
}

const CASE: Slot<(String, Level, String)> = Slot::new("case");

/// The case ends: this role records whether every step of every role in `from` (their
/// [`MISSED`] values, sent to it) and of its own did what it had to.
///
/// # Example
/// ```
/// use stormchor_kit::effects::sql::MISSED;
/// use stormchor_kit::effects::Verdict;
///
/// // Each session role sends what missed in MISSED; the judge's Verdict records the case.
/// assert_eq!(MISSED.name(), "missed expectations");
/// assert_eq!(format!("{Verdict:?}"), "Verdict");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Verdict;

impl DbEffect for Verdict {
    type Output = bool;

    async fn run(&self, node: &Node) -> Result<bool, EffectFailure> {
        let (name, level, claim) = node.value(CASE)?;
        let mut evidence = crate::node::lock(&node.sessions.missed).clone();
        for (_, missed) in node.values().from_each(MISSED).map_err(failed)? {
            evidence.extend(missed);
        }
        let passed = evidence.is_empty();
        node.journal().count("cases", 1);
        node.journal()
            .count("cases_as_documented", u64::from(passed));
        node.journal().check(
            format!("{name} at {}", level.sql().to_lowercase()),
            passed,
            format!("documented as {claim}"),
            evidence,
        );
        Ok(passed)
    }
}
