//! The connections over tokio-postgres: [`PgLine`] (one connection, whose SQL a role's
//! effects run), [`PgSession`] (the controller's view of it: [`Session`]) and
//! [`PgControl`] (the control connection: [`Control`]). Each connection's messages
//! (notices, notifications) are forwarded by its own task into an inbox, in the order
//! the server sent them; nothing else is spawned.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use futures::StreamExt;
use stormchor_postgres::lock;
use tokio::sync::Notify;
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

/// What a connection received besides results, in the order the server sent it.
#[derive(Default)]
struct Inbox {
    notices: Vec<String>,
    notifications: Vec<RawNotification>,
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

impl Collected {
    /// Every result of a step's submission, in order (the first error ends it).
    fn into_results(self) -> Vec<StepResult> {
        let mut results: Vec<StepResult> = self
            .statements
            .into_iter()
            .flatten()
            .map(StepResult::Rows)
            .collect();
        results.extend(
            self.error
                .into_iter()
                .chain(self.after)
                .map(StepResult::Error),
        );
        results
    }

    /// What `PQexec` returns for a block: the last result only (the error, else the
    /// last statement's rows).
    fn into_block_run(self) -> BlockRun {
        let results = match (&self.error, self.statements.last()) {
            (Some(error), _) => vec![StepResult::Error(error.clone())],
            (None, Some(Some(rows))) => vec![StepResult::Rows(rows.clone())],
            _ => Vec::new(),
        };
        BlockRun {
            results,
            failure: self.failure,
        }
    }
}

/// One connection, shared by the role whose effects run SQL on it (a session role, or
/// the controller for the control connection) and the controller, which watches it:
/// its messages (notices, notifications) are forwarded by its own task into an inbox in
/// the order the server sent them; a step's results, once complete, wait in a slot
/// until the controller takes them.
pub struct PgLine {
    name: String,
    client: Client,
    cancel: CancelToken,
    /// Where the server is, for cancel requests.
    config: tokio_postgres::Config,
    pid: i32,
    inbox: Arc<Mutex<Inbox>>,
    errors: Mutex<Vec<ServerError>>,
    /// The launched step's results, once they are all in.
    result: Mutex<Option<Collected>>,
    /// Rung when a result lands in the slot.
    arrived: Notify,
    forwarder: JoinHandle<()>,
}

impl std::fmt::Debug for PgLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLine")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Drop for PgLine {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

impl PgLine {
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
        let inbox: Arc<Mutex<Inbox>> = Arc::default();
        let forwarded = Arc::clone(&inbox);
        let forwarder = tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notice(notice)) => {
                        lock(&forwarded).notices.push(notice_text(
                            notice.severity(),
                            notice.message(),
                            notice.detail(),
                            notice.hint(),
                        ));
                    }
                    Ok(AsyncMessage::Notification(n)) => {
                        lock(&forwarded).notifications.push(RawNotification {
                            channel: n.channel().to_string(),
                            payload: n.payload().to_string(),
                            pid: n.process_id(),
                        });
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        });
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
        Ok(PgLine {
            name: session.to_string(),
            cancel: client.cancel_token(),
            config,
            client,
            pid,
            inbox,
            errors: Mutex::default(),
            result: Mutex::default(),
            arrived: Notify::new(),
            forwarder,
        })
    }

    /// The session's name (`control connection` for the control one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its backend's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Runs a setup or teardown block to its end (one simple-query submission) and
    /// returns what `PQexec` would.
    pub async fn run_block(&self, sql: &str) -> BlockRun {
        collect(&self.client, sql, &self.errors, true)
            .await
            .into_block_run()
    }

    /// Runs a step's SQL (one simple-query submission) to its end and leaves every
    /// result in the slot the controller reads ([`Session::wait`] on a
    /// [`PgSession`] of this line). It is sent at the first poll, so an effect that
    /// runs it has started once it first waits.
    pub async fn run_step(&self, sql: &str) {
        let collected = collect(&self.client, sql, &self.errors, false).await;
        *lock(&self.result) = Some(collected);
        self.arrived.notify_one();
    }

    /// The notices received since the last call, as libpq prints them.
    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.inbox).notices)
    }
}

/// Runs one simple-query submission to its end.
async fn collect(
    client: &Client,
    sql: &str,
    errors: &std::sync::Mutex<Vec<ServerError>>,
    in_block: bool,
) -> Collected {
    let mut collected = Collected::default();
    let fail = |e: tokio_postgres::Error, collected: &mut Collected| {
        let (error, failure) = describe(&e);
        if let Some(db) = e.as_db_error() {
            lock(errors).push(ServerError {
                at: Instant::now(),
                code: db.code().code().to_string(),
                text: format!("{}:  {}", db.severity(), db.message()),
                sql: sql.to_string(),
                in_block,
            });
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

/// The controller's view of a session's connection ([`Session`]): whether its step's
/// results are in, what else arrived, and its cancel key. The SQL itself runs in the
/// session role's effects ([`PgLine::run_step`], [`PgLine::run_block`]).
#[derive(Clone, Debug)]
pub struct PgSession {
    line: Arc<PgLine>,
}

impl PgSession {
    /// The view of `line`.
    pub fn new(line: Arc<PgLine>) -> Self {
        PgSession { line }
    }

    /// The connection.
    pub fn line(&self) -> &Arc<PgLine> {
        &self.line
    }
}

impl Session for PgSession {
    fn name(&self) -> &str {
        &self.line.name
    }

    fn pid(&self) -> i32 {
        self.line.pid
    }

    async fn wait(&mut self, within: Duration) -> Option<Vec<StepResult>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(collected) = lock(&self.line.result).take() {
                return Some(collected.into_results());
            }
            // A permit left by an earlier result wakes this at once: look again until
            // the bound.
            if tokio::time::timeout_at(deadline, self.line.arrived.notified())
                .await
                .is_err()
            {
                return lock(&self.line.result).take().map(Collected::into_results);
            }
        }
    }

    async fn cancel(&mut self) {
        let line = &self.line;
        let cancel = async {
            match CancelStream::connect(&line.config).await {
                Ok(stream) => line.cancel.cancel_query_raw(stream, NoTls).await,
                Err(_) => line.cancel.cancel_query(NoTls).await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), cancel).await;
    }

    fn take_notices(&mut self) -> Vec<String> {
        self.line.take_notices()
    }

    fn take_notifications(&mut self) -> Vec<RawNotification> {
        std::mem::take(&mut lock(&self.line.inbox).notifications)
    }

    fn take_errors(&mut self) -> Vec<ServerError> {
        std::mem::take(&mut *lock(&self.line.errors))
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
        let line = PgLine::connect(conninfo, test, "control connection", quiet).await?;
        Ok(PgControl {
            session: PgSession::new(Arc::new(line)),
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
            .line
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
    async fn run(&mut self, sql: &str) -> BlockRun {
        self.session.line.run_block(sql).await
    }

    async fn is_blocked(&mut self, pid: i32, pids: &[i32]) -> Result<bool, DriverError> {
        if self.blocked.is_none() {
            self.prepare_blocked_check(pids).await?;
        }
        let Some(statement) = self.blocked.as_ref() else {
            return Ok(false);
        };
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&pid];
        let query = self.session.line.client.query_one(statement, &params);
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

/// A cancel connection that, once its request is written and its writing half shut,
/// reads until the server closes it, as libpq's `PQcancel` does: the postmaster signals
/// the backend before it closes, so a cancel never lands on a later statement.
enum CancelStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl CancelStream {
    /// A connection to the server `config` names (its first host and port).
    async fn connect(config: &tokio_postgres::Config) -> std::io::Result<Self> {
        let port = config.get_ports().first().copied().unwrap_or(5432);
        match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Unix(dir)) => Ok(CancelStream::Unix(
                tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?,
            )),
            Some(tokio_postgres::config::Host::Tcp(host)) => Ok(CancelStream::Tcp(
                tokio::net::TcpStream::connect((host.as_str(), port)).await?,
            )),
            None => Ok(CancelStream::Tcp(
                tokio::net::TcpStream::connect(("localhost", port)).await?,
            )),
        }
    }
}

impl tokio::io::AsyncRead for CancelStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            CancelStream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            CancelStream::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for CancelStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            CancelStream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            CancelStream::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            CancelStream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            CancelStream::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    /// Shuts the writing half, then reads until the server closes the connection.
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        use tokio::io::AsyncRead;
        let shut = match self.as_mut().get_mut() {
            CancelStream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            CancelStream::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        };
        // A half already shut reports an error on some platforms: go on reading.
        if shut.is_pending() {
            return Poll::Pending;
        }
        let mut scratch = [0u8; 64];
        loop {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match self.as_mut().poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                // A reset is a close too.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormchor_postgres::{ClusterOptions, PgCluster};

    /// A cancel ends the running statement; once `cancel` returns, the server has
    /// taken it, so a cancel sent to an idle session never lands on a later statement.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancel_lands_on_the_running_statement_and_never_later() {
        let cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("a throwaway cluster");
        let conninfo = cluster.connection_string();
        let line = Arc::new(
            PgLine::connect(&conninfo, "cancel", "s1", false)
                .await
                .expect("connects"),
        );
        let watcher = PgLine::connect(&conninfo, "cancel", "watcher", false)
            .await
            .expect("connects");
        let mut session = PgSession::new(Arc::clone(&line));
        let pid = line.pid();
        let canceller = async {
            // Wait (bounded) until the sleep is running, then cancel it.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let running = watcher
                    .client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                        &[&pid],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get::<_, i64>(0);
                if running == 1 {
                    break;
                }
                assert!(Instant::now() < deadline, "the sleep never ran");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            session.cancel().await;
        };
        let ((), ()) = tokio::join!(line.run_step("SELECT pg_sleep(60)"), canceller);
        let results = session.wait(Duration::ZERO).await.expect("the step ended");
        assert_eq!(
            results,
            vec![StepResult::Error(StepError {
                severity: Some("ERROR".into()),
                message: "canceling statement due to user request".into(),
            })]
        );
        // Cancels of an idle session, each followed at once by a statement: none of
        // them is cancelled.
        for _ in 0..10 {
            session.cancel().await;
            let run = line.run_block("SELECT pg_sleep(0.05), 1 AS one").await;
            assert_eq!(run.failure, None);
        }
    }
}
