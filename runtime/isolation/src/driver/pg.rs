//! [`Session`] and [`Control`] over tokio-postgres: each connection's messages
//! (notices, notifications) are forwarded by its own task into a buffer, in the order
//! the server sent them; a launched step runs as a task collecting every result of its
//! submission.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, CancelToken, Client, NoTls, SimpleQueryMessage, Statement};

use super::{BlockRun, Control, DriverError, RawNotification, ServerError, Session};
use crate::output::{ResultSet, StepError, StepResult, notice_text};

/// libpq's message when the server closed the connection.
const CONNECTION_LOST: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n";

/// The settings `pg_regress` gives its test databases (time zone, date style, C
/// messages), so that values print as the expected files show them.
const REGRESS_OPTIONS: &str = "-c TimeZone=PST8PDT -c DateStyle=Postgres,MDY -c lc_messages=C \
     -c lc_monetary=C -c lc_numeric=C -c lc_time=C -c bytea_output=hex \
     -c timezone_abbreviations=Default -c IntervalStyle=postgres";

enum Inbound {
    Notice(String),
    Notification(RawNotification),
}

/// What a submission returned: each statement's rows (`None` for a command without
/// rows), then the error that ended it, if any.
#[derive(Default)]
struct Collected {
    statements: Vec<Option<ResultSet>>,
    error: Option<StepError>,
    /// libpq's own result after a FATAL error (the connection is gone).
    after: Option<StepError>,
    failure: Option<String>,
}

/// One session's connection.
pub struct PgSession {
    name: String,
    client: Arc<Client>,
    cancel: CancelToken,
    pid: i32,
    inbox: mpsc::UnboundedReceiver<Inbound>,
    notices: Vec<String>,
    notifications: Vec<RawNotification>,
    errors: Arc<std::sync::Mutex<Vec<ServerError>>>,
    active: Option<JoinHandle<Collected>>,
    forwarder: JoinHandle<()>,
}

impl std::fmt::Debug for PgSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSession")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        if let Some(active) = self.active.take() {
            active.abort();
        }
        self.forwarder.abort();
    }
}

impl PgSession {
    /// Opens session `session`'s connection for test `test` (application name
    /// `isolation/TEST/SESSION`, pg_regress's settings).
    /// With `quiet`, the connection runs with `client_min_messages = warning`, as
    /// testers before PostgreSQL 14 set it.
    pub async fn connect(
        conninfo: &str,
        test: &str,
        session: &str,
        quiet: bool,
    ) -> Result<Self, DriverError> {
        let mut config =
            tokio_postgres::Config::from_str(conninfo).map_err(DriverError::ConnectionString)?;
        config.application_name(format!("isolation/{test}/{session}"));
        let mut options = match config.get_options() {
            Some(given) => format!("{given} {REGRESS_OPTIONS}"),
            None => REGRESS_OPTIONS.to_string(),
        };
        if quiet {
            options.push_str(" -c client_min_messages=warning");
        }
        config.options(&options);
        let connect = tokio::time::timeout(Duration::from_secs(60), config.connect(NoTls)).await;
        let (client, mut connection) = match connect {
            Ok(Ok(pair)) => pair,
            Ok(Err(source)) => {
                return Err(DriverError::Connect {
                    who: session.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(DriverError::Timeout {
                    what: format!("connecting {session}"),
                });
            }
        };
        let (tx, inbox) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                let inbound = match message {
                    Ok(AsyncMessage::Notice(notice)) => Inbound::Notice(notice_text(
                        notice.severity(),
                        notice.message(),
                        notice.detail(),
                        notice.hint(),
                    )),
                    Ok(AsyncMessage::Notification(n)) => Inbound::Notification(RawNotification {
                        channel: n.channel().to_string(),
                        payload: n.payload().to_string(),
                        pid: n.process_id(),
                    }),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if tx.send(inbound).is_err() {
                    break;
                }
            }
        });
        let client = Arc::new(client);
        let pid = match client
            .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
            .await
        {
            Ok(row) => row.get::<_, i32>(0),
            Err(source) => {
                forwarder.abort();
                return Err(DriverError::Query {
                    what: format!("reading the backend pid of {session}"),
                    source,
                });
            }
        };
        Ok(PgSession {
            name: session.to_string(),
            cancel: client.cancel_token(),
            client,
            pid,
            inbox,
            notices: Vec::new(),
            notifications: Vec::new(),
            errors: Arc::default(),
            active: None,
            forwarder,
        })
    }

    fn drain(&mut self) {
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                Inbound::Notice(text) => self.notices.push(text),
                Inbound::Notification(n) => self.notifications.push(n),
            }
        }
    }

    fn submit(&self, sql: &str) -> JoinHandle<Collected> {
        let client = Arc::clone(&self.client);
        let errors = Arc::clone(&self.errors);
        let sql = sql.to_string();
        tokio::spawn(async move { collect(&client, &sql, &errors).await })
    }
}

/// Runs one simple-query submission to its end.
async fn collect(
    client: &Client,
    sql: &str,
    errors: &std::sync::Mutex<Vec<ServerError>>,
) -> Collected {
    let mut collected = Collected::default();
    let fail = |e: tokio_postgres::Error, collected: &mut Collected| {
        let (error, failure) = describe(&e);
        if let Some(db) = e.as_db_error() {
            if let Ok(mut errors) = errors.lock() {
                errors.push(ServerError {
                    at: Instant::now(),
                    code: db.code().code().to_string(),
                    text: format!("{}:  {}", db.severity(), db.message()),
                });
            }
        }
        // After a FATAL error the server closes the connection, and libpq returns a
        // second result of its own: the FATAL message followed by its lost-connection
        // message (isolationtester prints both).
        if let Some(db) = e.as_db_error() {
            if matches!(db.severity(), "FATAL" | "PANIC") {
                collected.after = Some(StepError {
                    severity: None,
                    message: format!("{}:  {}\n{CONNECTION_LOST}", db.severity(), db.message()),
                });
            }
        }
        collected.error = Some(error);
        collected.failure = Some(failure);
    };
    let stream = match client.simple_query_raw(sql).await {
        Ok(stream) => stream,
        Err(e) => {
            fail(e, &mut collected);
            return collected;
        }
    };
    futures::pin_mut!(stream);
    let mut current: Option<ResultSet> = None;
    while let Some(message) = stream.next().await {
        match message {
            Ok(SimpleQueryMessage::RowDescription(columns)) => {
                current = Some(ResultSet {
                    columns: columns.iter().map(|c| c.name().to_string()).collect(),
                    rows: Vec::new(),
                });
            }
            Ok(SimpleQueryMessage::Row(row)) => {
                if let Some(set) = current.as_mut() {
                    set.rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(String::from))
                            .collect(),
                    );
                }
            }
            Ok(SimpleQueryMessage::CommandComplete(_)) => {
                collected.statements.push(current.take());
            }
            Ok(_) => {}
            Err(e) => {
                fail(e, &mut collected);
                break;
            }
        }
    }
    collected
}

/// A step's error as isolationtester prints it (primary message only), and libpq's
/// full message (with DETAIL, HINT and CONTEXT lines) for `setup failed:`.
fn describe(e: &tokio_postgres::Error) -> (StepError, String) {
    match e.as_db_error() {
        Some(db) => {
            let mut full = format!("{}:  {}\n", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                full.push_str(&format!("DETAIL:  {detail}\n"));
            }
            if let Some(hint) = db.hint() {
                full.push_str(&format!("HINT:  {hint}\n"));
            }
            if let Some(context) = db.where_() {
                full.push_str(&format!("CONTEXT:  {context}\n"));
            }
            (
                StepError {
                    severity: Some(db.severity().to_string()),
                    message: db.message().to_string(),
                },
                full,
            )
        }
        None if e.is_closed() => (
            StepError {
                severity: None,
                message: CONNECTION_LOST.to_string(),
            },
            CONNECTION_LOST.to_string(),
        ),
        None => {
            let text = format!("{e}\n");
            (
                StepError {
                    severity: None,
                    message: text.clone(),
                },
                text,
            )
        }
    }
}

impl Session for PgSession {
    fn name(&self) -> &str {
        &self.name
    }

    fn pid(&self) -> i32 {
        self.pid
    }

    async fn run(&mut self, sql: &str) -> BlockRun {
        let collected = match self.submit(sql).await {
            Ok(collected) => collected,
            Err(_) => Collected {
                failure: Some("the block's task ended abnormally\n".into()),
                ..Collected::default()
            },
        };
        self.drain();
        // PQexec returns the last result only: the error, else the last statement's.
        let results = match (&collected.error, collected.statements.last()) {
            (Some(error), _) => vec![StepResult::Error(error.clone())],
            (None, Some(Some(rows))) => vec![StepResult::Rows(rows.clone())],
            _ => Vec::new(),
        };
        BlockRun {
            results,
            failure: collected.failure,
        }
    }

    fn launch(&mut self, sql: &str) {
        if let Some(old) = self.active.take() {
            old.abort();
        }
        self.active = Some(self.submit(sql));
    }

    async fn wait(&mut self, within: Duration) -> Option<Vec<StepResult>> {
        let active = self.active.as_mut()?;
        let joined = if within.is_zero() {
            if !active.is_finished() {
                self.drain();
                return None;
            }
            active.await
        } else {
            match tokio::time::timeout(within, &mut *active).await {
                Ok(joined) => joined,
                Err(_) => {
                    self.drain();
                    return None;
                }
            }
        };
        self.active = None;
        self.drain();
        let collected = joined.unwrap_or_else(|_| Collected {
            error: Some(StepError {
                severity: None,
                message: "the step's task ended abnormally\n".into(),
            }),
            ..Collected::default()
        });
        let mut results: Vec<StepResult> = collected
            .statements
            .into_iter()
            .flatten()
            .map(StepResult::Rows)
            .collect();
        results.extend(
            collected
                .error
                .into_iter()
                .chain(collected.after)
                .map(StepResult::Error),
        );
        Some(results)
    }

    async fn cancel(&mut self) {
        let _ =
            tokio::time::timeout(Duration::from_secs(10), self.cancel.cancel_query(NoTls)).await;
    }

    fn take_notices(&mut self) -> Vec<String> {
        self.drain();
        std::mem::take(&mut self.notices)
    }

    fn take_notifications(&mut self) -> Vec<RawNotification> {
        self.drain();
        std::mem::take(&mut self.notifications)
    }

    fn take_errors(&mut self) -> Vec<ServerError> {
        match self.errors.lock() {
            Ok(mut errors) => std::mem::take(&mut *errors),
            Err(_) => Vec::new(),
        }
    }
}

/// The control connection, with upstream's blocked check prepared on it.
#[derive(Debug)]
pub struct PgControl {
    session: PgSession,
    blocked: Option<Statement>,
}

impl PgControl {
    /// Opens the control connection for test `test`.
    pub async fn connect(conninfo: &str, test: &str, quiet: bool) -> Result<Self, DriverError> {
        Ok(PgControl {
            session: PgSession::connect(conninfo, test, "control connection", quiet).await?,
            blocked: None,
        })
    }

    /// Prepares `pg_isolation_test_session_is_blocked($1, '{PIDS}')` for these
    /// session backends.
    pub async fn prepare_blocked_check(&mut self, pids: &[i32]) -> Result<(), DriverError> {
        let list: Vec<String> = pids.iter().map(i32::to_string).collect();
        let sql = format!(
            "SELECT pg_catalog.pg_isolation_test_session_is_blocked($1, '{{{}}}')",
            list.join(",")
        );
        let statement = self
            .session
            .client
            .prepare_typed(&sql, &[tokio_postgres::types::Type::INT4])
            .await
            .map_err(|source| DriverError::Query {
                what: "preparing the blocked check".into(),
                source,
            })?;
        self.blocked = Some(statement);
        Ok(())
    }
}

impl Session for PgControl {
    fn name(&self) -> &str {
        self.session.name()
    }
    fn pid(&self) -> i32 {
        self.session.pid()
    }
    async fn run(&mut self, sql: &str) -> BlockRun {
        self.session.run(sql).await
    }
    fn launch(&mut self, sql: &str) {
        self.session.launch(sql);
    }
    async fn wait(&mut self, within: Duration) -> Option<Vec<StepResult>> {
        self.session.wait(within).await
    }
    async fn cancel(&mut self) {
        self.session.cancel().await;
    }
    fn take_notices(&mut self) -> Vec<String> {
        self.session.take_notices()
    }
    fn take_notifications(&mut self) -> Vec<RawNotification> {
        self.session.take_notifications()
    }
    fn take_errors(&mut self) -> Vec<ServerError> {
        self.session.take_errors()
    }
}

impl Control for PgControl {
    async fn is_blocked(&mut self, pid: i32, pids: &[i32]) -> Result<bool, DriverError> {
        if self.blocked.is_none() {
            self.prepare_blocked_check(pids).await?;
        }
        let Some(statement) = self.blocked.as_ref() else {
            return Ok(false);
        };
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&pid];
        let query = self.session.client.query_one(statement, &params);
        match tokio::time::timeout(Duration::from_secs(60), query).await {
            Ok(Ok(row)) => Ok(row.get::<_, bool>(0)),
            Ok(Err(source)) => Err(DriverError::Query {
                what: "checking whether a step is blocked".into(),
                source,
            }),
            Err(_) => Err(DriverError::Timeout {
                what: "checking whether a step is blocked".into(),
            }),
        }
    }
}
