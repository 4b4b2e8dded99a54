//! Queries on a server named by a slot: read a value (as `psql -At` prints it), wait
//! until a query says yes, see a statement refused with a SQLSTATE, check a value a
//! role holds against the one expected, and see which of several servers libpq's
//! `target_session_attrs` picks.
//!
//! These are the steps of PostgreSQL's own recovery tests (`safe_psql`,
//! `poll_query_until`, `psql` returning an error): a node role queries the server it
//! owns and sends the value on; a checker role compares it with what it expects.

use std::time::{Duration, Instant};

use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{PgBinaries, PgError};
use stormchor_runtime::EffectFailure;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::node::Node;
use crate::value::Slot;

/// How long one query may take.
const QUERY_BOUND: Duration = Duration::from_secs(60);

/// Replaces `$1`, `$2`, ... in `sql` with the quoted values of `args` (SQL string
/// literals, so a value cannot end its literal); a `$n` without a value is an error
/// naming it. A `$` not followed by a digit (`$$` of a function body) stays; a `$n`
/// inside a string literal of `sql` is replaced too.
///
/// # Example
/// ```
/// use stormchor_kit::effects::query::bind;
///
/// assert_eq!(
///     bind("SELECT $1::pg_lsn <= $2", &["0/3000060".into(), "it's".into()]).expect("bound"),
///     "SELECT '0/3000060'::pg_lsn <= 'it''s'"
/// );
/// assert!(bind("SELECT $2", &["one".into()]).is_err());
/// ```
pub fn bind(sql: &str, args: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' || !chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            out.push(c);
            continue;
        }
        let mut number = String::new();
        while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
            number.push(*d);
            chars.next();
        }
        let index: usize = number
            .parse()
            .map_err(|_| format!("`${number}` is not a parameter number"))?;
        let value = index
            .checked_sub(1)
            .and_then(|i| args.get(i))
            .ok_or_else(|| {
                format!(
                    "`${index}` in `{sql}` has no value: the query is given {} value(s)",
                    args.len()
                )
            })?;
        out.push('\'');
        out.push_str(&value.replace('\'', "''"));
        out.push('\'');
    }
    Ok(out)
}

/// Runs `sql` (one or more statements, the simple-query protocol) on `client`, at
/// most [`QUERY_BOUND`]; the rows it returned as `psql -At` prints them: columns
/// joined by `|`, rows by newlines, NULL as nothing.
async fn run_text(client: &Client, sql: &str) -> Result<String, EffectFailure> {
    let messages = tokio::time::timeout(QUERY_BOUND, client.simple_query(sql))
        .await
        .map_err(|_| failed(format!("`{sql}` took over {QUERY_BOUND:?}")))?
        .map_err(|e| failed(format!("`{sql}` failed: {}", describe(&e))))?;
    let rows: Vec<String> = messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect();
    Ok(rows.join("\n"))
}

/// A server error's SQLSTATE and message, or the client error.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// The SQL of a query with its values bound, read at `node`.
fn bound_sql(node: &Node, sql: &str, args: &[Slot<String>]) -> Result<String, EffectFailure> {
    let values = args
        .iter()
        .map(|slot| node.value(*slot))
        .collect::<Result<Vec<_>, _>>()?;
    bind(sql, &values).map_err(EffectFailure::permanent)
}

/// Runs `sql` on the server in `on` and gives what it returned as `psql -At` prints
/// it (columns joined by `|`, rows by newlines, NULL as nothing): the value of a
/// `SELECT count(*)`, a WAL position, a sequence's row. `$1`, `$2`, ... in `sql` are
/// the values of the slots in `args`, as SQL string literals (cast them:
/// `$1::pg_lsn`). A failing statement fails the effect with its SQLSTATE.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Query;
/// use stormchor_kit::slots::REPLICA;
/// use stormchor_kit::{DbEffect, Slot};
///
/// const ROWS: Slot<String> = Slot::new("rows on the replica");
/// const LSN: Slot<String> = Slot::new("lsn");
/// let count = Query::new(REPLICA, "SELECT count(*) FROM tab_int").into_slot(ROWS);
/// let caught_up = Query::new(REPLICA, "SELECT $1::pg_lsn <= pg_last_wal_replay_lsn()").with(LSN);
/// assert_eq!(caught_up.args, vec![LSN]);
/// # let _ = count;
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Query {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// The statements.
    pub sql: &'static str,
    /// The values of `$1`, `$2`, ...
    pub args: Vec<Slot<String>>,
}

impl Query {
    /// `sql` on the server in `on`, without values.
    pub fn new(on: Slot<ServerInfo>, sql: &'static str) -> Self {
        Query {
            on,
            sql,
            args: Vec::new(),
        }
    }

    /// The same, with the value of `arg` as the next `$n`.
    pub fn with(mut self, arg: Slot<String>) -> Self {
        self.args.push(arg);
        self
    }
}

impl DbEffect for Query {
    type Output = String;

    async fn run(&self, node: &Node) -> Result<String, EffectFailure> {
        let server = node.value(self.on)?;
        let sql = bound_sql(node, self.sql, &self.args)?;
        let client = connect(&server.connection).await?;
        run_text(&client, &sql).await
    }
}

/// Waits (at most `bound`) until `query` returns `t` on its server, asking every
/// 50 ms, as PostgreSQL's `poll_query_until` does; a server that refuses connections
/// for a while (restarting) is "not yet". The output is how long it took, in
/// milliseconds; a timeout fails the effect with the last answer.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::{PollUntil, Query};
/// use stormchor_kit::slots::REPLICA;
///
/// let receiving = PollUntil {
///     query: Query::new(REPLICA, "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver)"),
///     bound: Duration::from_secs(60),
/// };
/// assert_eq!(receiving.bound, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct PollUntil {
    /// The query that must say `t`.
    pub query: Query,
    /// How long to wait at most.
    pub bound: Duration,
}

impl DbEffect for PollUntil {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        let server = node.value(self.query.on)?;
        let sql = bound_sql(node, self.query.sql, &self.query.args)?;
        let began = Instant::now();
        let deadline = began + self.bound;
        let mut client: Option<Client> = None;
        let mut last = String::from("no answer yet");
        loop {
            if client.as_ref().is_none_or(Client::is_closed) {
                client = connect(&server.connection).await.ok();
            }
            if let Some(c) = &client {
                match run_text(c, &sql).await {
                    Ok(answer) if answer == "t" => {
                        return Ok(began.elapsed().as_millis() as u64);
                    }
                    Ok(answer) => last = format!("`{answer}`"),
                    Err(e) => {
                        last = e.to_string();
                        client = None;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "`{sql}` on {}'s server did not return `t` within {:?} (last answer: {last})",
                    server.owner, self.bound
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs `sql` on the server in `on`, which must refuse it with SQLSTATE `sqlstate`
/// (`25006`: a read-only transaction, as a standby refuses writes), recorded as a
/// check named `name`; a statement that succeeds or fails otherwise fails the check
/// and the effect. The output is the server's message.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Refuses;
/// use stormchor_kit::slots::REPLICA;
///
/// let read_only = Refuses {
///     name: "standby refuses writes",
///     on: REPLICA,
///     sql: "INSERT INTO tab_int VALUES (1)",
///     sqlstate: "25006",
/// };
/// assert_eq!(read_only.sqlstate, "25006");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Refuses {
    /// The check's name.
    pub name: &'static str,
    /// The server.
    pub on: Slot<ServerInfo>,
    /// The statement it must refuse.
    pub sql: &'static str,
    /// The SQLSTATE it must refuse it with.
    pub sqlstate: &'static str,
}

impl DbEffect for Refuses {
    type Output = String;

    async fn run(&self, node: &Node) -> Result<String, EffectFailure> {
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        let outcome = tokio::time::timeout(QUERY_BOUND, client.simple_query(self.sql))
            .await
            .map_err(|_| failed(format!("`{}` took over {QUERY_BOUND:?}", self.sql)))?;
        let (passed, found) = match &outcome {
            Ok(_) => (false, "it succeeded".to_owned()),
            Err(e) => {
                let code = e.as_db_error().map(|db| db.code().code().to_owned());
                (
                    code.as_deref() == Some(self.sqlstate),
                    format!("it failed: {}", describe(e)),
                )
            }
        };
        node.journal().check(
            self.name,
            passed,
            format!(
                "`{}` on {}'s server must fail with SQLSTATE {}: {found}",
                self.sql, server.owner, self.sqlstate
            ),
            if passed {
                Vec::new()
            } else {
                vec![found.clone()]
            },
        );
        if passed {
            Ok(found)
        } else {
            Err(failed(format!("{}: {found}", self.name)))
        }
    }
}

/// What a [`CheckValue`] expects.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{CheckValue, Wanted};
/// use stormchor_kit::Slot;
///
/// const ROWS: Slot<String> = Slot::new("rows on the standby");
/// const EXPECTED: Slot<String> = Slot::new("rows on the primary");
/// let fixed = Wanted::Text("1000");
/// let same_as_the_primary = Wanted::In(EXPECTED);
/// assert_ne!(fixed, same_as_the_primary);
/// # let _ = ROWS;
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Wanted {
    /// This text.
    Text(&'static str),
    /// The value of this slot.
    In(Slot<String>),
}

/// Checks that the value this role holds in `found` (a value it queried, or one a
/// message brought) equals `expected`, as a check named `name` of the report; a
/// different value fails the effect. The output is the value found.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{CheckValue, Wanted};
/// use stormchor_kit::Slot;
///
/// const ROWS: Slot<String> = Slot::new("rows on standby 1");
/// let check = CheckValue { name: "streamed content on standby 1", found: ROWS, expected: Wanted::Text("1002") };
/// assert_eq!(check.expected, Wanted::Text("1002"));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct CheckValue {
    /// The check's name.
    pub name: &'static str,
    /// The value found.
    pub found: Slot<String>,
    /// The value expected.
    pub expected: Wanted,
}

impl DbEffect for CheckValue {
    type Output = String;

    async fn run(&self, node: &Node) -> Result<String, EffectFailure> {
        let found = node.value(self.found)?;
        let expected = match &self.expected {
            Wanted::Text(text) => (*text).to_owned(),
            Wanted::In(slot) => node.value(*slot)?,
        };
        let passed = found == expected;
        node.journal().check(
            self.name,
            passed,
            format!(
                "`{}` is `{found}`, `{expected}` expected",
                self.found.name()
            ),
            if passed {
                Vec::new()
            } else {
                vec![format!("found `{found}`, expected `{expected}`")]
            },
        );
        if passed {
            Ok(found)
        } else {
            Err(failed(format!(
                "{}: `{}` is `{found}`, `{expected}` expected",
                self.name,
                self.found.name()
            )))
        }
    }
}

/// The value of `key` in a libpq `key=value` connection string.
fn parameter<'a>(connection: &'a str, key: &str) -> Option<&'a str> {
    connection
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Connects with `psql` (libpq) to the servers in `servers`, listed in that order,
/// with `target_session_attrs = mode` (`any`, `read-write`, `read-only`, `primary`,
/// `standby`, `prefer-standby`), and checks, as a check named `name`, that it lands on
/// the server in `expected`, or, with `None`, that no listed server qualifies and the
/// connection fails. The output is the port it reached, if any.
///
/// # Example
/// ```
/// use stormchor_kit::effects::ConnectsTo;
/// use stormchor_kit::slots::{PRIMARY, REPLICA};
///
/// let read_write = ConnectsTo {
///     name: "read-write reaches the primary",
///     servers: vec![REPLICA, PRIMARY],
///     mode: "read-write",
///     expected: Some(PRIMARY),
/// };
/// assert_eq!(read_write.servers.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct ConnectsTo {
    /// The check's name.
    pub name: &'static str,
    /// The servers, in the order libpq tries them.
    pub servers: Vec<Slot<ServerInfo>>,
    /// The `target_session_attrs`.
    pub mode: &'static str,
    /// The server it must reach, or `None` when it must fail.
    pub expected: Option<Slot<ServerInfo>>,
}

impl DbEffect for ConnectsTo {
    type Output = Option<String>;

    async fn run(&self, node: &Node) -> Result<Option<String>, EffectFailure> {
        let servers = self
            .servers
            .iter()
            .map(|slot| node.value(*slot))
            .collect::<Result<Vec<_>, _>>()?;
        let address = |server: &ServerInfo, key: &str| {
            parameter(&server.connection, key)
                .map(str::to_owned)
                .ok_or_else(|| {
                    EffectFailure::permanent(format!(
                        "{}'s connection string `{}` names no {key}",
                        server.owner, server.connection
                    ))
                })
        };
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for server in &servers {
            hosts.push(address(server, "host")?);
            ports.push(address(server, "port")?);
        }
        let first = servers
            .first()
            .ok_or_else(|| EffectFailure::permanent(format!("{}: no server listed", self.name)))?;
        let user = parameter(&first.connection, "user").unwrap_or("postgres");
        let connection = format!(
            "host={} port={} user={user} dbname=postgres connect_timeout=10 target_session_attrs={}",
            hosts.join(","),
            ports.join(","),
            self.mode
        );
        let expected_port = match self.expected {
            Some(slot) => Some(address(&node.value(slot)?, "port")?),
            None => None,
        };
        let binaries = PgBinaries::locate().map_err(failed)?;
        let args = [
            "--no-psqlrc",
            "--no-align",
            "--tuples-only",
            "--dbname",
            &connection,
            "--command",
            "SHOW port",
        ]
        .map(str::to_owned);
        let reached = match tokio::time::timeout(QUERY_BOUND, binaries.run_client("psql", &args))
            .await
            .map_err(|_| failed(format!("psql `{connection}` took over {QUERY_BOUND:?}")))?
        {
            Ok(port) => Some(port.trim().to_owned()),
            // psql ran and could not connect: no listed server qualifies.
            Err(PgError::Command { .. }) => None,
            Err(other) => return Err(failed(other)),
        };
        let passed = reached == expected_port;
        let describe = |port: &Option<String>| match port {
            Some(port) => format!("port {port}"),
            None => "no server".to_owned(),
        };
        let summary = format!(
            "`{connection}` reached {}, {} expected",
            describe(&reached),
            describe(&expected_port)
        );
        node.journal().check(
            self.name,
            passed,
            summary.clone(),
            if passed {
                Vec::new()
            } else {
                vec![summary.clone()]
            },
        );
        if passed {
            Ok(reached)
        } else {
            Err(failed(format!("{}: {summary}", self.name)))
        }
    }
}
