//! A worker's connection: every statement timed, logged and classified.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, SimpleQueryMessage};

use super::cluster::PgError;

/// Why a statement failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlError {
    /// The SQLSTATE, when the server sent one (`None`: the connection broke).
    pub sqlstate: Option<String>,
    /// The server's message.
    pub message: String,
}

impl SqlError {
    /// Whether the connection itself is gone (the server went away).
    pub fn is_connection_lost(&self) -> bool {
        match &self.sqlstate {
            None => true,
            // admin_shutdown, crash_shutdown, cannot_connect_now, connection failures.
            Some(code) => {
                code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03"
            }
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "SQLSTATE {code}: {}", self.message),
            None => write!(f, "connection lost: {}", self.message),
        }
    }
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(error: tokio_postgres::Error) -> Self {
        SqlError::from(&error)
    }
}

impl From<&tokio_postgres::Error> for SqlError {
    fn from(error: &tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => SqlError {
                sqlstate: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
            },
            None => SqlError {
                sqlstate: None,
                message: error.to_string(),
            },
        }
    }
}

/// Where a session's statements are logged: a file written by a thread of its own, so
/// the async code never waits on the disk.
#[derive(Clone, Debug)]
pub struct SqlLog {
    lines: Option<mpsc::Sender<String>>,
}

impl SqlLog {
    /// A log that keeps nothing.
    pub fn discard() -> Self {
        SqlLog { lines: None }
    }

    /// A log appended to `path`.
    pub fn to_file(path: &Path) -> Result<Self, PgError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| PgError::Io {
                what: format!("cannot open the SQL log {}", path.display()),
                source,
            })?;
        let (sender, receiver) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut out = std::io::BufWriter::new(file);
            for line in receiver {
                if writeln!(out, "{line}").is_err() {
                    return;
                }
            }
            let _ = out.flush();
        });
        Ok(SqlLog {
            lines: Some(sender),
        })
    }

    fn write(&self, line: impl FnOnce() -> String) {
        if let Some(lines) = &self.lines {
            let _ = lines.send(line());
        }
    }
}

/// A connection whose statements are timed and logged with their outcome.
pub struct SqlSession {
    client: Client,
    log: SqlLog,
}

impl fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSession")
            .field("closed", &self.client.is_closed())
            .finish()
    }
}

impl SqlSession {
    /// Wraps a connection.
    pub fn new(client: Client, log: SqlLog) -> Self {
        SqlSession { client, log }
    }

    /// Connects to `connection_string` with [`connect`](super::connect), within its
    /// `connect_timeout` (or [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT)).
    pub async fn connect(connection_string: &str, log: SqlLog) -> Result<Self, SqlError> {
        match super::connect(connection_string).await {
            Ok(client) => Ok(SqlSession::new(client, log)),
            Err(PgError::Connect {
                problem, source, ..
            }) => Err(SqlError {
                message: problem,
                ..SqlError::from(&source)
            }),
            Err(PgError::ConnectTimeout { waited, .. }) => Err(SqlError {
                sqlstate: None,
                message: format!("no answer within {waited:?} while connecting"),
            }),
            Err(other) => Err(SqlError {
                sqlstate: None,
                message: other.to_string(),
            }),
        }
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one or more statements; returns the rows of the last result as text, and
    /// the number of rows the last command affected.
    pub async fn run(&self, sql: &str) -> Result<(Vec<Vec<Option<String>>>, u64), SqlError> {
        let started = Instant::now();
        let result = self.client.simple_query(sql).await.map_err(SqlError::from);
        let took = started.elapsed();
        let outcome = match &result {
            Ok(messages) => {
                let mut rows = Vec::new();
                let mut affected = 0;
                for message in messages {
                    match message {
                        SimpleQueryMessage::Row(row) => rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_owned))
                                .collect(),
                        ),
                        SimpleQueryMessage::CommandComplete(count) => affected = *count,
                        _ => {}
                    }
                }
                Ok((rows, affected))
            }
            Err(error) => Err(error.clone()),
        };
        self.log.write(|| {
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            let status = match &outcome {
                Ok((rows, affected)) => format!("ok rows={} affected={affected}", rows.len()),
                Err(error) => format!("error {error}"),
            };
            format!(
                "{:.6} {:>9.3}ms {status} | {}",
                at.as_secs_f64(),
                took.as_secs_f64() * 1e3,
                sql.replace('\n', " ")
            )
        });
        outcome
    }
}
