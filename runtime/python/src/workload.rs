//! Workloads written in Python, run by the Rust load runner (`run_load`): its
//! closed loop, one thread and connection per client, per-operation counts and
//! latency histograms.
//!
//! A workload is any Python object with `operations` (a dict `{name: weight}`) and a
//! method of each operation's name, `op(conn, rng)`; optional `name`, `version`,
//! `description`, `setup(conn)`, `cleanup(conn)`, `configure(section)` and
//! `metrics()` (a dict of figures of its own). `stormchor.Workload` is a base class
//! with those defaults (StormDB's plugin interface, in Python).
//!
//! Every call runs on the client runtime's blocking pool with the GIL; its
//! statements go back to the client's task ([`crate::connection`]). So a Python
//! operation costs a thread hop and the GIL on top of its SQL, and clients share
//! one GIL: `runtime/python/benches/gil_cost.py` measures it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::Rng;
use rand::rngs::SmallRng;
use stormchor_postgres::{SqlError as RustSqlError, SqlLog, SqlSession};
use stormchor_workloads::{
    LoadConfig, LoadReport, Operation, Workload, WorkloadError as RustWorkloadError, WorkloadInfo,
    WorkloadSession, run_load,
};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::connection::{Connection, Request, as_sql_error, run_text, serve};
use crate::effect::traceback;
use crate::errors::{StormchorError, text};
use crate::role::type_name;
use crate::rt::runtime;

/// A Python workload object, and its description read once.
struct PyWorkload {
    object: Arc<Py<PyAny>>,
    info: WorkloadInfo,
    /// Whether it has `setup` and `cleanup` (read with the GIL, once).
    has_setup: bool,
    has_cleanup: bool,
}

/// A statement failure of a Python call, or its exception as an error of kind
/// `raised` (its traceback the message).
fn failure(py: Python<'_>, error: &PyErr) -> RustSqlError {
    as_sql_error(py, error).unwrap_or_else(|| RustSqlError {
        sqlstate: Some("raised".to_owned()),
        message: traceback(py, error),
    })
}

/// Calls `object.method(conn, *rest)` on this (blocking) thread with the GIL; its
/// statements go to `requests`.
fn call_method(
    object: &Py<PyAny>,
    method: &str,
    requests: mpsc::Sender<Request>,
    seed: Option<u64>,
) -> Result<(), RustSqlError> {
    Python::with_gil(|py| {
        let run = || -> PyResult<()> {
            let connection = Py::new(py, Connection::new(requests))?;
            let outcome = match seed {
                Some(seed) => {
                    let rng = py.import("random")?.getattr("Random")?.call1((seed,))?;
                    object.call_method1(py, method, (connection.clone_ref(py), rng))
                }
                None => object.call_method1(py, method, (connection.clone_ref(py),)),
            };
            connection.get().close();
            outcome.map(drop)
        };
        run().map_err(|e| failure(py, &e))
    })
}

/// Runs `method` of the workload with the statements served by `client`.
async fn call_with_client(
    object: &Arc<Py<PyAny>>,
    method: &'static str,
    client: &Client,
    seed: Option<u64>,
) -> Result<(), RustSqlError> {
    let (requests, incoming) = mpsc::channel::<Request>(1);
    let object = object.clone();
    let call = tokio::task::spawn_blocking(move || call_method(&object, method, requests, seed));
    serve(call, incoming, |statement| async move {
        run_text(client, &statement).await
    })
    .await
    .unwrap_or_else(|e| {
        Err(RustSqlError {
            sqlstate: Some("raised".to_owned()),
            message: format!("the Python call {method} did not finish: {e}"),
        })
    })
}

impl PyWorkload {
    fn hook<'a>(
        &'a self,
        method: &'static str,
        what: &'static str,
        client: &'a Client,
    ) -> BoxFuture<'a, Result<(), RustWorkloadError>> {
        Box::pin(async move {
            let present = match method {
                "setup" => self.has_setup,
                _ => self.has_cleanup,
            };
            if !present {
                return Ok(());
            }
            call_with_client(&self.object, method, client, None)
                .await
                .map_err(|error| RustWorkloadError::Sql {
                    workload: self.info.name.clone(),
                    what: what.to_owned(),
                    error,
                })
        })
    }
}

impl Workload for PyWorkload {
    fn info(&self) -> WorkloadInfo {
        self.info.clone()
    }

    fn configure(&mut self, _section: &toml::Table) -> Result<(), RustWorkloadError> {
        // Python workloads are configured from Python (run_workload's config=),
        // before the runner starts.
        Ok(())
    }

    fn setup<'a>(&'a self, client: &'a mut Client) -> BoxFuture<'a, Result<(), RustWorkloadError>> {
        self.hook("setup", "setup", client)
    }

    fn cleanup<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), RustWorkloadError>> {
        self.hook("cleanup", "cleanup", client)
    }

    fn session<'a>(
        &'a self,
        client: Client,
    ) -> BoxFuture<'a, Result<Box<dyn WorkloadSession>, RustWorkloadError>> {
        let session = PySession {
            object: self.object.clone(),
            operations: self
                .info
                .operations
                .iter()
                .map(|o| crate::rt::intern(&o.name))
                .collect(),
            sql: SqlSession::new(client, SqlLog::discard()),
        };
        Box::pin(async move { Ok(Box::new(session) as Box<dyn WorkloadSession>) })
    }
}

/// One client's session: its connection and the operations' method names.
struct PySession {
    object: Arc<Py<PyAny>>,
    operations: Vec<&'static str>,
    sql: SqlSession,
}

impl WorkloadSession for PySession {
    fn run<'a>(
        &'a mut self,
        operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), RustSqlError>> {
        Box::pin(async move {
            let method = self
                .operations
                .get(operation)
                .copied()
                .ok_or_else(|| RustSqlError {
                    sqlstate: Some("raised".to_owned()),
                    message: format!("no operation #{operation}"),
                })?;
            let seed: u64 = rng.random();
            let (requests, incoming) = mpsc::channel::<Request>(1);
            let object = self.object.clone();
            let call = tokio::task::spawn_blocking(move || {
                call_method(&object, method, requests, Some(seed))
            });
            let sql = &self.sql;
            serve(call, incoming, |statement| async move {
                sql.run(&statement).await.map(|(rows, _)| rows)
            })
            .await
            .unwrap_or_else(|e| {
                Err(RustSqlError {
                    sqlstate: Some("raised".to_owned()),
                    message: format!("the Python operation {method} did not finish: {e}"),
                })
            })
        })
    }
}

/// Reads a workload object's description; a missing or wrong part is a TypeError
/// naming it.
fn describe(object: &Bound<'_, PyAny>) -> PyResult<WorkloadInfo> {
    let kind = type_name(object);
    let text_attr = |name: &str, default: String| -> PyResult<String> {
        match object.getattr(name) {
            Ok(value) if !value.is_none() => value.extract::<String>().map_err(|_| {
                PyTypeError::new_err(format!("workload {kind}: `{name}` must be a str"))
            }),
            _ => Ok(default),
        }
    };
    let name = text_attr("name", kind.clone())?;
    let version = text_attr("version", "0".to_owned())?;
    let description = text_attr("description", String::new())?;
    let operations = object.getattr("operations").map_err(|_| {
        PyTypeError::new_err(format!(
            "workload {name} has no `operations` (a dict of operation name to weight)"
        ))
    })?;
    let operations = operations.downcast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "workload {name}: `operations` must be a dict of operation name to weight"
        ))
    })?;
    let mut list = Vec::new();
    for (op, weight) in operations.iter() {
        let op: String = op.extract()?;
        let weight: u32 = weight.extract().map_err(|_| {
            PyValueError::new_err(format!(
                "workload {name}: the weight of {op} must be a whole number of 0 or more"
            ))
        })?;
        if !object.getattr(op.as_str()).is_ok_and(|m| m.is_callable()) {
            return Err(PyTypeError::new_err(format!(
                "workload {name}: operation {op} has no method {op}(conn, rng)"
            )));
        }
        list.push(Operation { name: op, weight });
    }
    if list.is_empty() {
        return Err(PyValueError::new_err(format!(
            "workload {name} has no operation"
        )));
    }
    Ok(WorkloadInfo {
        name,
        version,
        description,
        operations: list,
    })
}

/// A load report as a dict.
fn report_dict<'py>(py: Python<'py>, report: &LoadReport) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let seconds = report.elapsed.as_secs_f64();
    dict.set_item("workload", &report.workload)?;
    dict.set_item("elapsed_s", seconds)?;
    dict.set_item("successes", report.successes())?;
    dict.set_item("failures", report.failures())?;
    dict.set_item(
        "ops_per_s",
        if seconds > 0.0 {
            report.successes() as f64 / seconds
        } else {
            0.0
        },
    )?;
    let operations = PyDict::new(py);
    for (name, metrics) in &report.operations {
        let op = PyDict::new(py);
        op.set_item("count", metrics.count)?;
        let errors: BTreeMap<String, u64> = metrics.errors.clone();
        op.set_item("errors", errors)?;
        if !metrics.latency.is_empty() {
            op.set_item("p50_us", metrics.latency.value_at_quantile(0.5))?;
            op.set_item("p99_us", metrics.latency.value_at_quantile(0.99))?;
        }
        operations.set_item(name, op)?;
    }
    dict.set_item("operations", operations)?;
    dict.set_item("per_second", report.per_second.clone())?;
    dict.set_item("per_client", report.per_client.clone())?;
    Ok(dict)
}

/// Runs `workload` (a Python object) with the Rust load runner on the server at
/// `connection`: `setup` first (unless `setup=False`), `clients` clients for
/// `seconds`, then `cleanup` (when `cleanup=True`). `weights` overrides operation
/// weights by name; `config` is passed to its `configure(section)` first.
#[pyfunction]
#[pyo3(signature = (workload, connection, *, clients = 1, seconds = 2.0, seed = 1, weights = None, config = None, setup = true, cleanup = false))]
#[allow(clippy::too_many_arguments)]
fn run_workload<'py>(
    py: Python<'py>,
    workload: Bound<'py, PyAny>,
    connection: String,
    clients: usize,
    seconds: f64,
    seed: u64,
    weights: Option<Bound<'py, PyDict>>,
    config: Option<Bound<'py, PyDict>>,
    setup: bool,
    cleanup: bool,
) -> PyResult<Bound<'py, PyDict>> {
    if let Some(config) = config {
        if workload.getattr("configure").is_ok_and(|m| m.is_callable()) {
            workload.call_method1("configure", (config,))?;
        }
    }
    let info = describe(&workload)?;
    let mut chosen: Vec<u32> = info.operations.iter().map(|o| o.weight).collect();
    for (name, weight) in weights.iter().flat_map(|w| w.iter()) {
        let name: String = name.extract()?;
        let index = info
            .operations
            .iter()
            .position(|o| o.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = info.operations.iter().map(|o| o.name.as_str()).collect();
                PyValueError::new_err(format!(
                    "weights: unknown operation `{name}` (operations: {})",
                    known.join(", ")
                ))
            })?;
        chosen[index] = weight.extract()?;
    }
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err(format!("seconds must be >= 0, not {seconds}")))?;
    let callable = |name: &str| workload.getattr(name).is_ok_and(|m| m.is_callable());
    let python = PyWorkload {
        has_setup: callable("setup"),
        has_cleanup: callable("cleanup"),
        object: Arc::new(workload.clone().unbind()),
        info,
    };
    let shared: Arc<dyn Workload> = Arc::new(python);
    let rt = runtime()?;
    let mut load = LoadConfig::new(clients, duration);
    load.seed = seed;
    let report = py.allow_threads(|| {
        rt.block_on(async {
            let admin = stormchor_postgres::connect(&connection)
                .await
                .map_err(|e| e.to_string())?;
            let mut admin = admin;
            if setup {
                shared.setup(&mut admin).await.map_err(|e| e.to_string())?;
            }
            let report = run_load(shared.clone(), &connection, &chosen, load)
                .await
                .map_err(|e| e.to_string());
            if cleanup {
                shared.cleanup(&admin).await.map_err(|e| e.to_string())?;
            }
            report
        })
    });
    let report = report.map_err(text::<StormchorError>)?;
    let dict = report_dict(py, &report)?;
    if workload.getattr("metrics").is_ok_and(|m| m.is_callable()) {
        dict.set_item("metrics", workload.call_method0("metrics")?)?;
    }
    Ok(dict)
}

/// A Rust workload to compare a Python one with: one operation, `noop` (does
/// nothing) or `select1` (`SELECT 1`), run the same way.
struct Reference {
    select: bool,
}

struct ReferenceSession {
    client: Client,
    select: bool,
}

impl WorkloadSession for ReferenceSession {
    fn run<'a>(
        &'a mut self,
        _operation: usize,
        _rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), RustSqlError>> {
        Box::pin(async move {
            if self.select {
                self.client
                    .simple_query("SELECT 1")
                    .await
                    .map_err(RustSqlError::from)?;
            }
            Ok(())
        })
    }
}

impl Workload for Reference {
    fn info(&self) -> WorkloadInfo {
        let name = if self.select { "select1" } else { "noop" };
        WorkloadInfo {
            name: format!("rust-{name}"),
            version: "1".to_owned(),
            description: "the Rust reference of the GIL measurement".to_owned(),
            operations: vec![Operation {
                name: name.to_owned(),
                weight: 1,
            }],
        }
    }
    fn configure(&mut self, _section: &toml::Table) -> Result<(), RustWorkloadError> {
        Ok(())
    }
    fn setup<'a>(
        &'a self,
        _client: &'a mut Client,
    ) -> BoxFuture<'a, Result<(), RustWorkloadError>> {
        Box::pin(async { Ok(()) })
    }
    fn cleanup<'a>(&'a self, _client: &'a Client) -> BoxFuture<'a, Result<(), RustWorkloadError>> {
        Box::pin(async { Ok(()) })
    }
    fn session<'a>(
        &'a self,
        client: Client,
    ) -> BoxFuture<'a, Result<Box<dyn WorkloadSession>, RustWorkloadError>> {
        let select = self.select;
        Box::pin(async move {
            Ok(Box::new(ReferenceSession { client, select }) as Box<dyn WorkloadSession>)
        })
    }
}

/// Runs the Rust reference workload `kind` (`noop` or `select1`).
#[pyfunction]
#[pyo3(signature = (kind, connection, *, clients = 1, seconds = 2.0))]
fn reference_load<'py>(
    py: Python<'py>,
    kind: &str,
    connection: String,
    clients: usize,
    seconds: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let select = match kind {
        "noop" => false,
        "select1" => true,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown reference workload `{other}`; they are noop, select1"
            )));
        }
    };
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err(format!("seconds must be >= 0, not {seconds}")))?;
    let rt = runtime()?;
    let workload: Arc<dyn Workload> = Arc::new(Reference { select });
    let report = py
        .allow_threads(|| {
            rt.block_on(run_load(
                workload,
                &connection,
                &[1],
                LoadConfig::new(clients, duration),
            ))
        })
        .map_err(text::<StormchorError>)?;
    report_dict(py, &report)
}

pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_workload, m)?)?;
    m.add_function(wrap_pyfunction!(reference_load, m)?)?;
    Ok(())
}
