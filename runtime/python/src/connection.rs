//! The connection a Python callable is given (a Python action, a Python workload's
//! operation or setup), and the loop that serves it.
//!
//! The callable runs on tokio's blocking pool with the GIL. Its `conn.execute(sql)`
//! hands the statement over a channel to the async task that owns the real
//! connection and waits for the rows, with the GIL released; the task runs it and
//! answers. The runtime's threads never wait for Python, and the connection's
//! driver keeps running on its own runtime.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use pyo3::prelude::*;
use stormchor_postgres::SqlError as RustSqlError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};

use crate::errors::{ActionError, SqlError, text};

/// The rows of a result, as text (None for NULL).
pub(crate) type Rows = Vec<Vec<Option<String>>>;

/// A statement and where its outcome goes.
pub(crate) type Request = (String, oneshot::Sender<Result<Rows, RustSqlError>>);

/// A failed statement as the Python exception `SqlError`, with its `sqlstate`
/// (None: the connection broke) and `message`.
pub(crate) fn sql_error(error: &RustSqlError) -> PyErr {
    Python::with_gil(|py| {
        let err = SqlError::new_err(error.to_string());
        let value = err.value(py);
        let set = value
            .setattr("sqlstate", error.sqlstate.clone())
            .and_then(|()| value.setattr("message", error.message.clone()));
        match set {
            Ok(()) => err,
            Err(e) => e,
        }
    })
}

/// A Python `SqlError` back as the Rust error, or None for any other exception.
pub(crate) fn as_sql_error(py: Python<'_>, error: &PyErr) -> Option<RustSqlError> {
    if !error.is_instance_of::<SqlError>(py) {
        return None;
    }
    let value = error.value(py);
    let sqlstate = value
        .getattr("sqlstate")
        .and_then(|s| s.extract::<Option<String>>())
        .unwrap_or(None);
    let message = value
        .getattr("message")
        .and_then(|m| m.extract::<String>())
        .unwrap_or_else(|_| error.to_string());
    Some(RustSqlError { sqlstate, message })
}

/// The connection a Python callable is given: `conn.execute(sql)` returns the rows
/// of the last result, each a list of text values (None for NULL).
#[pyclass(module = "stormchor", frozen)]
pub(crate) struct Connection {
    requests: Mutex<Option<mpsc::Sender<Request>>>,
}

impl Connection {
    /// A connection whose statements go to `requests`.
    pub(crate) fn new(requests: mpsc::Sender<Request>) -> Self {
        Connection {
            requests: Mutex::new(Some(requests)),
        }
    }

    /// Ends it: later statements raise instead of waiting.
    pub(crate) fn close(&self) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

#[pymethods]
impl Connection {
    /// Runs one or more statements; a failing one raises SqlError.
    fn execute(&self, py: Python<'_>, sql: String) -> PyResult<Rows> {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                text::<ActionError>("this connection belongs to a call that has ended")
            })?;
        let outcome = py.allow_threads(move || {
            let (reply, answer) = oneshot::channel();
            requests.blocking_send((sql, reply)).ok()?;
            answer.blocking_recv().ok()
        });
        match outcome {
            Some(Ok(rows)) => Ok(rows),
            Some(Err(error)) => Err(sql_error(&error)),
            None => Err(text::<ActionError>(
                "the connection's task stopped before the statement ran",
            )),
        }
    }

    fn __repr__(&self) -> String {
        "Connection()".to_owned()
    }
}

/// Serves the statements of `call` with `run` until `call` ends; its result.
pub(crate) async fn serve<T, F, Fut>(
    mut call: JoinHandle<T>,
    mut incoming: mpsc::Receiver<Request>,
    mut run: F,
) -> Result<T, JoinError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Rows, RustSqlError>>,
{
    loop {
        tokio::select! {
            Some((statement, reply)) = incoming.recv() => {
                let _ = reply.send(run(statement).await);
            }
            joined = &mut call => return joined,
        }
    }
}

/// Runs `sql` on `client` (simple-query protocol): the rows of the last result.
pub(crate) async fn run_text(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Rows, RustSqlError> {
    let messages = client.simple_query(sql).await.map_err(RustSqlError::from)?;
    let mut rows = Vec::new();
    for message in messages {
        match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            // A new result begins: only the last one's rows are returned.
            tokio_postgres::SimpleQueryMessage::RowDescription(_) => rows.clear(),
            _ => {}
        }
    }
    Ok(rows)
}
