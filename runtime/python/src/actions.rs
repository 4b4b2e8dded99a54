//! The action registry from Python, as StormWeaver's users know it.
//!
//! `default_registry()` is a fresh copy of the built-in weighted actions;
//! `insert`, `remove`, `get(name).weight = n`, `insert_sql` (a custom SQL action) and
//! `insert_table_sql` (SQL with a `{table}` placeholder) change it; `copy()` is an
//! independent copy (a node's, a worker's). An action may be a Python callable
//! `action(conn, rng, table)`: a connection whose `execute(sql)` runs on the
//! worker's own session (timed and logged like every statement), a
//! `random.Random` seeded from the worker's stream, and a random table of the
//! catalog (None while it is empty). `run(...)` runs the stress mix on a server:
//! every worker on its own copy, all on one shared catalog (each worker a one-client
//! run of the load runner with the `stress` workload).
//!
//! The callable runs on tokio's blocking pool with the GIL; each `execute` hands
//! its statement to the worker's task, which runs it and hands the rows back: the
//! runtime's threads never wait for Python.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::Rng;
use stormchor_postgres::{
    Action, ActionContext, ActionError as RustActionError, ActionErrorKind, ActionRegistry,
    Catalog, TableKind,
};
use stormchor_workloads::{LoadConfig, Stress, Workload, run_load, stream_seed, weights};
use tokio::sync::mpsc;

use crate::connection::{Connection, Request, as_sql_error, serve};
use crate::effect::traceback;
use crate::errors::{ActionError, text};
use crate::role::type_name;
use crate::rt::runtime;

fn action_error(error: RustActionError) -> PyErr {
    text::<ActionError>(error)
}

/// A table handed to a Python action: its name, kind and columns.
struct TableInfo {
    name: String,
    kind: &'static str,
    columns: Vec<(String, String)>,
}

/// A Python callable as an action.
struct PyAction {
    callable: Arc<Py<PyAny>>,
}

fn call_action(
    callable: &Py<PyAny>,
    requests: mpsc::Sender<Request>,
    seed: u64,
    table: Option<TableInfo>,
) -> Result<(), RustActionError> {
    Python::with_gil(|py| {
        let raised = |error: PyErr| RustActionError {
            action: String::new(),
            kind: match as_sql_error(py, &error) {
                Some(sql) => ActionErrorKind::Sql(sql),
                None => ActionErrorKind::Raised(traceback(py, &error)),
            },
        };
        let run = || -> PyResult<()> {
            let connection = Py::new(py, Connection::new(requests))?;
            let rng = py.import("random")?.getattr("Random")?.call1((seed,))?;
            let table = match table {
                None => py.None(),
                Some(t) => {
                    let dict = PyDict::new(py);
                    dict.set_item("name", t.name)?;
                    dict.set_item("kind", t.kind)?;
                    dict.set_item("columns", t.columns)?;
                    dict.into_any().unbind()
                }
            };
            let outcome = callable.call1(py, (connection.clone_ref(py), rng, table));
            // The connection ends with the action, whoever kept a reference to it.
            connection.get().close();
            outcome.map(drop)
        };
        run().map_err(raised)
    })
}

impl Action for PyAction {
    fn run<'a>(&'a self, ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), RustActionError>> {
        Box::pin(async move {
            let ActionContext { catalog, rng, sql } = ctx;
            let seed: u64 = rng.random();
            let snapshot = catalog.snapshot();
            let table = if snapshot.is_empty() {
                None
            } else {
                snapshot
                    .values()
                    .nth(rng.random_range(0..snapshot.len()))
                    .map(|t| TableInfo {
                        name: t.name.clone(),
                        kind: match t.kind {
                            TableKind::Normal => "normal",
                            TableKind::Partitioned { .. } => "partitioned",
                            TableKind::PartitionOf(_) => "partition",
                        },
                        columns: t
                            .columns
                            .iter()
                            .map(|c| (c.name.clone(), c.ty.sql()))
                            .collect(),
                    })
            };
            let (requests, incoming) = mpsc::channel::<Request>(1);
            let callable = self.callable.clone();
            let call =
                tokio::task::spawn_blocking(move || call_action(&callable, requests, seed, table));
            let served = serve(call, incoming, |statement| async move {
                sql.run(&statement).await.map(|(rows, _)| rows)
            })
            .await;
            served.unwrap_or_else(|e| {
                Err(RustActionError {
                    action: String::new(),
                    kind: ActionErrorKind::Raised(format!("the Python action did not finish: {e}")),
                })
            })
        })
    }
}

/// `ActionRegistry()`: named actions with weights (empty; `default_registry()` has
/// the built-in ones). Drawn with probability weight / total.
#[pyclass(name = "ActionRegistry", module = "stormchor")]
#[derive(Clone, Default)]
pub(crate) struct PyActionRegistry {
    pub(crate) inner: ActionRegistry,
}

#[pymethods]
impl PyActionRegistry {
    #[new]
    fn new() -> Self {
        PyActionRegistry::default()
    }

    /// Adds `action(conn, rng, table)`, a Python callable, with `weight`.
    fn insert(&mut self, name: &str, weight: i64, action: Bound<'_, PyAny>) -> PyResult<()> {
        if !action.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "action {name} must be callable as action(conn, rng, table), not {}",
                type_name(&action)
            )));
        }
        let action = PyAction {
            callable: Arc::new(action.unbind()),
        };
        self.inner
            .insert(name, weight, Arc::new(action))
            .map_err(action_error)
    }

    /// Adds a custom SQL action: `sql` as it is.
    fn insert_sql(&mut self, name: &str, weight: i64, sql: &str) -> PyResult<()> {
        self.inner
            .insert_sql(name, weight, sql)
            .map_err(action_error)
    }

    /// Adds a custom SQL action whose `{table}` is a random table of the catalog.
    fn insert_table_sql(&mut self, name: &str, weight: i64, template: &str) -> PyResult<()> {
        self.inner
            .insert_table_sql(name, weight, template)
            .map_err(action_error)
    }

    /// Removes the action `name`.
    fn remove(&mut self, name: &str) -> PyResult<()> {
        self.inner.remove(name).map(drop).map_err(action_error)
    }

    /// The action `name`, whose `weight` can be read and set.
    fn get(slf: Bound<'_, Self>, name: &str) -> PyResult<PyActionEntry> {
        slf.borrow().inner.weight(name).map_err(action_error)?;
        Ok(PyActionEntry {
            registry: slf.unbind(),
            name: name.to_owned(),
        })
    }

    /// `(name, weight)` of every action, in insertion order.
    fn items(&self) -> Vec<(String, u64)> {
        self.inner.list()
    }

    /// The names, in insertion order.
    fn names(&self) -> Vec<String> {
        self.inner.list().into_iter().map(|(n, _)| n).collect()
    }

    /// An independent copy.
    fn copy(&self) -> PyActionRegistry {
        self.clone()
    }

    fn __copy__(&self) -> PyActionRegistry {
        self.clone()
    }

    fn __len__(&self) -> usize {
        self.inner.list().len()
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.weight(name).is_ok()
    }

    fn __repr__(&self) -> String {
        format!("ActionRegistry({:?})", self.inner)
    }

    /// Runs the stress mix on the server at `connection`: `workers` workers, each on
    /// its own copy of this registry (`per_worker(index, copy)` may change a copy
    /// first), for `seconds` or for `actions` actions each, on one shared catalog.
    /// Returns one report per worker.
    #[pyo3(signature = (connection, *, workers = 1, seconds = None, actions = None, seed = 1, per_worker = None))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        connection: String,
        workers: u16,
        seconds: Option<f64>,
        actions: Option<u64>,
        seed: u64,
        per_worker: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let limit = match (seconds, actions) {
            (Some(s), None) => LoadConfig::new(
                1,
                Duration::try_from_secs_f64(s)
                    .map_err(|_| PyValueError::new_err(format!("seconds must be >= 0, not {s}")))?,
            ),
            (None, Some(n)) => LoadConfig::operations_per_client(1, n),
            _ => {
                return Err(PyValueError::new_err(
                    "run() needs exactly one of seconds= and actions=",
                ));
            }
        };
        let mut copies = Vec::new();
        for k in 0..workers {
            let copy = Py::new(py, self.clone())?;
            if let Some(change) = &per_worker {
                change.call1((k, copy.clone_ref(py)))?;
            }
            let registry = copy.borrow(py).inner.clone();
            if registry.list().iter().all(|(_, weight)| *weight == 0) {
                return Err(text::<ActionError>(format!(
                    "worker{k} has no runnable action (every weight is 0)"
                )));
            }
            copies.push(registry);
        }
        let rt = runtime()?;
        let catalog = Arc::new(Catalog::new());
        // Every worker is a one-client run of the load runner on its own copy, all on
        // the one catalog; each draws the stream of its name.
        let reports = py.allow_threads(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for (k, registry) in copies.into_iter().enumerate() {
                    let name = format!("worker{k}");
                    let mut config = limit.clone();
                    config.seed = stream_seed(seed, &name);
                    config.reconnect_attempts = Some(50);
                    let mix = Stress::new(registry, catalog.clone());
                    let connection = connection.clone();
                    tasks.spawn(async move {
                        let weights = weights(&mix.info(), None)?;
                        let report = run_load(Arc::new(mix), &connection, &weights, config).await;
                        report.map(|report| (name, report))
                    });
                }
                let mut reports = Vec::new();
                while let Some(joined) = tasks.join_next().await {
                    reports.push(
                        joined
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string())),
                    );
                }
                reports
            })
        });
        let mut out = Vec::new();
        for report in reports {
            let (name, report) = report.map_err(text::<ActionError>)?;
            let dict = PyDict::new(py);
            dict.set_item("name", name)?;
            dict.set_item("runs", report.runs())?;
            dict.set_item("reconnects", report.reconnects)?;
            dict.set_item("elapsed_s", report.elapsed.as_secs_f64())?;
            let per_action = PyDict::new(py);
            for (name, metrics) in report.operations.iter().filter(|(_, m)| m.runs() > 0) {
                let entry = PyDict::new(py);
                entry.set_item("ok", metrics.count)?;
                let errors: BTreeMap<String, u64> = metrics.errors.clone();
                entry.set_item("errors", errors)?;
                per_action.set_item(name, entry)?;
            }
            dict.set_item("actions", per_action)?;
            out.push(dict);
        }
        out.sort_by_key(|d| {
            d.get_item("name")
                .ok()
                .flatten()
                .and_then(|n| n.extract::<String>().ok())
                .unwrap_or_default()
        });
        Ok(out)
    }
}

/// One action of a registry: `entry.weight` reads and sets its weight there.
#[pyclass(name = "ActionEntry", module = "stormchor")]
pub(crate) struct PyActionEntry {
    registry: Py<PyActionRegistry>,
    name: String,
}

#[pymethods]
impl PyActionEntry {
    /// The action's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The action's weight in its registry.
    #[getter]
    fn weight(&self, py: Python<'_>) -> PyResult<u64> {
        self.registry
            .borrow(py)
            .inner
            .weight(&self.name)
            .map_err(action_error)
    }

    #[setter]
    fn set_weight(&self, py: Python<'_>, weight: i64) -> PyResult<()> {
        self.registry
            .borrow_mut(py)
            .inner
            .set_weight(&self.name, weight)
            .map_err(action_error)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.weight(py) {
            Ok(w) => format!("ActionEntry({:?}, weight={w})", self.name),
            Err(_) => format!("ActionEntry({:?}, removed)", self.name),
        }
    }
}

/// `default_registry()`: a fresh copy of the built-in actions with their weights.
#[pyfunction]
fn default_registry() -> PyActionRegistry {
    PyActionRegistry {
        inner: ActionRegistry::default_actions(),
    }
}

pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(default_registry, m)?)?;
    Ok(())
}
