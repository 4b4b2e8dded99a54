//! Effects from Python: the kit's effects built with Python arguments, and
//! Python-defined effects whose handler is a Python callable.
//!
//! A Python effect's handler runs on tokio's blocking pool with the GIL taken
//! there, never on a runtime worker: a slow handler slows its own role only. It is
//! given a [`Context`]: the role, the effect's parameters, the values of the slots it
//! reads (read before the call), and a journal to record checks and figures in
//! (applied after it). What it returns becomes the value of its `into` slot. An
//! exception fails the effect; its traceback is the failure's text, in the report.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use stormchor_choreography::{At, Extension, ExtensionEffect, Handle};
use stormchor_kit::Node;
use stormchor_runtime::EffectFailure;

use crate::cancel::{Abandoned, Running, Waiting};
use crate::kit::Handlers;
use crate::role::{Role, roles_arg, type_name};
use crate::rt::intern;
use crate::slot::{PySlot, SlotSpec};

/// Builds the program's extension, carried out by the roles given (`None`: the
/// effect's own, that is every role): the whole effect, or (with a handle) its start.
type Build = Arc<dyn Fn(Option<Vec<Role>>, Option<Handle>) -> Extension + Send + Sync>;

fn build<E: ExtensionEffect + Clone>(effect: E) -> Build {
    fn wrap(effect: impl ExtensionEffect, handle: Option<Handle>) -> Extension {
        match handle {
            None => Extension::new(effect),
            Some(handle) => Extension::start(effect, handle),
        }
    }
    Arc::new(move |at, handle| match at {
        None => wrap(effect.clone(), handle),
        Some(roles) => wrap(At::new(effect.clone(), roles), handle),
    })
}

/// An effect to put in a program with `Program.ext(effect, at=...)`.
#[pyclass(name = "Effect", module = "stormchor", frozen)]
#[derive(Clone)]
pub(crate) struct PyEffectObj {
    pub(crate) name: String,
    pub(crate) build: Build,
}

impl PyEffectObj {
    /// An effect to put in programs.
    pub(crate) fn of<E: ExtensionEffect + Clone>(name: String, effect: E) -> PyEffectObj {
        PyEffectObj {
            name,
            build: build(effect),
        }
    }
}

#[pymethods]
impl PyEffectObj {
    /// The effect's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("{:?}", (self.build)(None, None))
    }
}

/// A Python-defined effect in a program: its name (the handler's), its parameters
/// as JSON, the slots it reads and the slot its result goes into.
#[derive(Clone)]
pub(crate) struct PyEffect {
    pub(crate) name: &'static str,
    pub(crate) params: String,
    pub(crate) reads: Vec<SlotSpec>,
    pub(crate) each: Vec<SlotSpec>,
    pub(crate) into: Option<SlotSpec>,
    pub(crate) ordered: bool,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for PyEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if self.params != "{}" {
            write!(f, " {}", self.params)?;
        }
        if !self.reads.is_empty() {
            let names: Vec<&str> = self.reads.iter().map(|s| s.name).collect();
            write!(f, " reads {}", names.join(", "))?;
        }
        if !self.each.is_empty() {
            let names: Vec<&str> = self.each.iter().map(|s| s.name).collect();
            write!(f, " reads each {}", names.join(", "))?;
        }
        if let Some(into) = &self.into {
            write!(f, " => {}", into.name)?;
        }
        if let Some(limit) = self.timeout {
            write!(f, " within {limit:?}")?;
        }
        Ok(())
    }
}

impl ExtensionEffect for PyEffect {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        self.name
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        Vec::new()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn ExtensionEffect> {
        Box::new(self.clone())
    }
    fn ordered(&self) -> bool {
        self.ordered
    }
}

/// What a handler recorded in its journal.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    Check {
        name: String,
        passed: bool,
        summary: String,
        evidence: Vec<String>,
    },
    Figure(String, serde_json::Value),
    Count(String, u64),
    Phase(String),
}

/// What a Python handler gets: `ctx.role`, `ctx.index`, `ctx.params`, `ctx[slot]`
/// (a slot the effect reads), `ctx.check(...)`, `ctx.figure(...)`, `ctx.count(...)`,
/// and `ctx.query(server, sql)` to run SQL on a server.
#[pyclass(module = "stormchor", frozen)]
pub(crate) struct Context {
    role: String,
    index: Option<u16>,
    params: Py<PyAny>,
    inputs: HashMap<&'static str, Py<PyAny>>,
    each: HashMap<&'static str, Py<PyAny>>,
    round: Option<u64>,
    journal: Mutex<Vec<Entry>>,
    handle: tokio::runtime::Handle,
}

fn json_dumps(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    py.import("json")?
        .call_method1("dumps", (value,))?
        .extract::<String>()
}

fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

#[pymethods]
impl Context {
    /// The role carrying the effect out (`Worker[1]`).
    #[getter]
    fn role(&self) -> &str {
        &self.role
    }

    /// The role's index in its family, or None.
    #[getter]
    fn index(&self) -> Option<u16> {
        self.index
    }

    /// In a loop's decision (`loop_until(..., until=f)`): the rounds run so far;
    /// else None.
    #[getter]
    fn round(&self) -> Option<u64> {
        self.round
    }

    /// The effect's parameters (a dict).
    #[getter]
    fn params(&self, py: Python<'_>) -> Py<PyAny> {
        self.params.clone_ref(py)
    }

    /// The value of a slot the effect reads (`reads=[...]`).
    fn __getitem__(&self, py: Python<'_>, slot: PyRef<'_, PySlot>) -> PyResult<Py<PyAny>> {
        self.inputs
            .get(slot.0.name)
            .map(|v| v.clone_ref(py))
            .ok_or_else(|| {
                let known: Vec<&str> = self.inputs.keys().copied().collect();
                PyKeyError::new_err(format!(
                    "the effect does not read slot `{}` (it reads: {}); add it to reads=[...]",
                    slot.0.name,
                    if known.is_empty() {
                        "nothing".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })
    }

    /// The latest value of a slot in `each=` from every role that sent one: a dict
    /// `{role: value}`, in role order.
    fn each(&self, py: Python<'_>, slot: PyRef<'_, PySlot>) -> PyResult<Py<PyAny>> {
        self.each
            .get(slot.0.name)
            .map(|v| v.clone_ref(py))
            .ok_or_else(|| {
                PyKeyError::new_err(format!(
                    "the effect does not read slot `{}` from each sender; add it to each=[...]",
                    slot.0.name
                ))
            })
    }

    /// Records a check in the report: `name` held (`passed`) or not.
    #[pyo3(signature = (name, passed, summary = String::new(), evidence = Vec::new()))]
    fn check(&self, name: String, passed: bool, summary: String, evidence: Vec<String>) {
        self.record(Entry::Check {
            name,
            passed,
            summary,
            evidence,
        });
    }

    /// Records a figure (any JSON value) in the report.
    fn figure(&self, py: Python<'_>, name: String, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let json = json_dumps(py, value)?;
        let value =
            serde_json::from_str(&json).map_err(|e| PyValueError::new_err(e.to_string()))?;
        self.record(Entry::Figure(name, value));
        Ok(())
    }

    /// Adds `n` to a counting figure.
    #[pyo3(signature = (name, n = 1))]
    fn count(&self, name: String, n: u64) {
        self.record(Entry::Count(name, n));
    }

    /// The role enters a phase (as the kit's Phase effect).
    fn phase(&self, name: String) {
        self.record(Entry::Phase(name));
    }

    /// Runs `sql` on a server (a `server` slot's value, or a connection string) and
    /// returns its rows, each a list of text values (None for NULL); at most 60 s.
    fn query(
        &self,
        py: Python<'_>,
        server: &Bound<'_, PyAny>,
        sql: String,
    ) -> PyResult<Vec<Vec<Option<String>>>> {
        let connection: String = match server.extract::<String>() {
            Ok(text) => text,
            Err(_) => server
                .get_item("connection")
                .and_then(|c| c.extract())
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "query() takes a server (a `server` slot's value) or a connection string, not {}",
                        type_name(server)
                    ))
                })?,
        };
        let handle = self.handle.clone();
        py.allow_threads(move || {
            handle.block_on(async move {
                let limit = Duration::from_secs(60);
                let rows = tokio::time::timeout(limit, async {
                    let client = stormchor_postgres::connect(&connection)
                        .await
                        .map_err(crate::errors::text::<crate::errors::ClusterError>)?;
                    let session = stormchor_postgres::SqlSession::new(
                        client,
                        stormchor_postgres::SqlLog::discard(),
                    );
                    session
                        .run(&sql)
                        .await
                        .map(|(rows, _)| rows)
                        .map_err(|e| crate::connection::sql_error(&e))
                })
                .await;
                rows.unwrap_or_else(|_| {
                    Err(crate::errors::text::<crate::errors::SqlError>(format!(
                        "`{sql}` took over {limit:?}"
                    )))
                })
            })
        })
    }

    fn __repr__(&self) -> String {
        format!("Context(role={:?})", self.role)
    }
}

impl Context {
    fn record(&self, entry: Entry) {
        self.journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
    }
}

/// A Python exception's traceback, as Python prints it.
pub(crate) fn traceback(py: Python<'_>, error: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        tb.call_method1(
            "format_exception",
            (error.get_type(py), error.value(py), error.traceback(py)),
        )?
        .extract::<Vec<String>>()
    });
    match formatted {
        Ok(lines) => lines.concat().trim_end().to_owned(),
        Err(_) => error.to_string(),
    }
}

/// What a Python call is given besides its callable: the name failures use, the
/// parameters (JSON), the role, the slot values it reads, and the round of a loop
/// decision.
pub(crate) struct Call {
    pub(crate) what: String,
    pub(crate) params: String,
    pub(crate) role: String,
    pub(crate) index: Option<u16>,
    pub(crate) inputs: Vec<(&'static str, String)>,
    pub(crate) each: Vec<(&'static str, Vec<(String, String)>)>,
    pub(crate) round: Option<u64>,
    pub(crate) handle: tokio::runtime::Handle,
    /// How long to wait for the callable (None: as long as the role may run).
    pub(crate) limit: Option<Duration>,
    /// Where the run keeps the calls its roles were dropped in.
    pub(crate) abandoned: Option<Abandoned>,
}

impl Call {
    /// A call for `what` at `node`, reading `reads` and `each` now.
    pub(crate) fn at(
        node: &Node,
        what: String,
        params: String,
        reads: &[SlotSpec],
        each: &[SlotSpec],
    ) -> Result<Call, EffectFailure> {
        let mut inputs = Vec::new();
        for slot in reads {
            let json = slot
                .read_json(node.values())
                .map_err(EffectFailure::permanent)?;
            inputs.push((slot.name, json));
        }
        let mut senders = Vec::new();
        for slot in each {
            let list = slot
                .read_each_json(node.values())
                .map_err(EffectFailure::permanent)?;
            senders.push((slot.name, list));
        }
        Ok(Call {
            what,
            params,
            role: node.role().to_owned(),
            index: node.member(),
            inputs,
            each: senders,
            round: None,
            handle: tokio::runtime::Handle::current(),
            limit: None,
            abandoned: None,
        })
    }

    /// Calls `callable(ctx)` on a blocking thread with the GIL; `returned` makes the
    /// result out of what it returned (with the GIL). Gives the result and the
    /// journal, or the failure with the traceback.
    pub(crate) async fn run<T: Send + 'static>(
        self,
        callable: Arc<Py<PyAny>>,
        returned: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> Result<T, EffectFailure>
        + Send
        + 'static,
    ) -> Result<(T, Vec<Entry>), EffectFailure> {
        let running = Arc::new(Running::default());
        let mut waiting = Waiting {
            running: running.clone(),
            abandoned: self.abandoned.clone(),
            role: self.role.clone(),
            what: self.what.clone(),
            began: Instant::now(),
            done: false,
        };
        let (what, role, limit) = (self.what.clone(), self.role.clone(), self.limit);
        let task = tokio::task::spawn_blocking(move || self.call(&callable, &running, returned));
        let joined = match limit {
            None => task.await,
            Some(limit) => match tokio::time::timeout(limit, task).await {
                Ok(joined) => joined,
                Err(_) => {
                    waiting.timed_out();
                    return Err(EffectFailure::permanent(format!(
                        "{what} at {role} did not return within {limit:?} (its timeout=): stopped \
                         waiting and interrupted it (Python code stops at its next instruction; \
                         a call blocked in C, as time.sleep, runs on until it returns)"
                    )));
                }
            },
        };
        waiting.done = true;
        joined.map_err(|e| EffectFailure::permanent(format!("{what} did not finish: {e}")))?
    }

    fn call<T>(
        self,
        callable: &Py<PyAny>,
        running: &Running,
        returned: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> Result<T, EffectFailure>,
    ) -> Result<(T, Vec<Entry>), EffectFailure> {
        Python::with_gil(|py| {
            let what = &self.what;
            let fail = |error: PyErr| {
                EffectFailure::permanent(format!("{what} raised:\n{}", traceback(py, &error)))
            };
            let params = json_loads(py, &self.params).map_err(fail)?.unbind();
            let mut values = HashMap::new();
            for (name, json) in self.inputs {
                values.insert(name, json_loads(py, &json).map_err(fail)?.unbind());
            }
            let mut senders = HashMap::new();
            for (name, list) in self.each {
                let dict = PyDict::new(py);
                for (from, json) in list {
                    dict.set_item(from, json_loads(py, &json).map_err(fail)?)
                        .map_err(fail)?;
                }
                senders.insert(name, dict.into_any().unbind());
            }
            let context = Py::new(
                py,
                Context {
                    role: self.role,
                    index: self.index,
                    params,
                    inputs: values,
                    each: senders,
                    round: self.round,
                    journal: Mutex::new(Vec::new()),
                    handle: self.handle,
                },
            )
            .map_err(fail)?;
            running.enter(py);
            let result = callable.call1(py, (context.clone_ref(py),));
            running.leave(py);
            let result = result.map_err(fail)?;
            let journal = std::mem::take(
                &mut *context
                    .get()
                    .journal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            Ok((returned(py, result.bind(py))?, journal))
        })
    }
}

/// Applies what a Python call recorded to the role's journal.
pub(crate) fn apply(node: &Node, journal: Vec<Entry>) {
    for entry in journal {
        match entry {
            Entry::Check {
                name,
                passed,
                summary,
                evidence,
            } => node.journal().check(name, passed, summary, evidence),
            Entry::Figure(name, value) => node.journal().figure(&name, value),
            Entry::Count(name, n) => node.journal().count(&name, n),
            Entry::Phase(name) => node.journal().enter(&name),
        }
    }
}

/// Carries out a Python effect at `node` with its handler from `handlers`.
pub(crate) async fn run_python(
    handlers: &Handlers,
    node: &Node,
    effect: &PyEffect,
    abandoned: &Abandoned,
) -> Result<(), EffectFailure> {
    let handler = handlers.get(effect.name).cloned().ok_or_else(|| {
        EffectFailure::permanent(format!(
            "no Python handler is registered for {}",
            effect.name
        ))
    })?;
    let mut call = Call::at(
        node,
        format!("the Python handler of {}", effect.name),
        effect.params.clone(),
        &effect.reads,
        &effect.each,
    )?;
    call.limit = effect.timeout;
    call.abandoned = Some(abandoned.clone());
    let name = effect.name;
    let keeps = effect.into.is_some();
    let (output, journal) = call
        .run(handler, move |py, returned| {
            if returned.is_none() {
                return Ok(None);
            }
            if !keeps {
                return Err(EffectFailure::permanent(format!(
                    "the Python handler of {name} returned a value ({}) but the effect has no into= slot to keep it in",
                    type_name(returned)
                )));
            }
            json_dumps(py, returned).map(Some).map_err(|error| {
                EffectFailure::permanent(format!(
                    "the Python handler of {name} raised:\n{}",
                    traceback(py, &error)
                ))
            })
        })
        .await?;
    apply(node, journal);
    match (&effect.into, output) {
        (Some(slot), Some(json)) => slot
            .write_json(node.values(), &json)
            .map_err(EffectFailure::permanent),
        (Some(slot), None) => Err(EffectFailure::permanent(format!(
            "the Python handler of {} returned None, but the effect puts its result into slot `{}`",
            effect.name, slot.name
        ))),
        (None, _) => Ok(()),
    }
}

pub(crate) fn slot_list(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<SlotSpec>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    let mut slots = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let slot = item.extract::<PySlot>().map_err(|_| {
            PyTypeError::new_err(format!("{what} takes slots, not {}", type_name(&item)))
        })?;
        slots.push(slot.0);
    }
    Ok(slots)
}

/// `effect(name, params=None, *, reads=(), each=(), into=None, ordered=True,
/// timeout=None)`: a Python effect, carried out by the handler registered under
/// `name` in a `Kit`; `timeout`: seconds to wait for the handler before failing the
/// effect (and interrupting the handler).
/// `reads`: slots whose latest value the handler reads (`ctx[slot]`); `each`: slots
/// whose latest value from every sender it reads (`ctx.each(slot)`).
#[pyfunction]
#[pyo3(signature = (name, params = None, *, reads = None, each = None, into = None, ordered = true, timeout = None))]
#[allow(clippy::too_many_arguments)]
fn effect(
    py: Python<'_>,
    name: &str,
    params: Option<&Bound<'_, PyAny>>,
    reads: Option<&Bound<'_, PyAny>>,
    each: Option<&Bound<'_, PyAny>>,
    into: Option<PySlot>,
    ordered: bool,
    timeout: Option<f64>,
) -> PyResult<PyEffectObj> {
    let timeout = timeout
        .map(|t| {
            Duration::try_from_secs_f64(t)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err(format!("timeout= is a number of seconds > 0, not {t}"))
                })
        })
        .transpose()?;
    if name.is_empty() {
        return Err(PyValueError::new_err("an effect's name cannot be empty"));
    }
    let params = match params {
        None => "{}".to_owned(),
        Some(p) => {
            if !p.is_instance_of::<PyDict>() {
                return Err(PyTypeError::new_err(format!(
                    "params= takes a dict, not {}",
                    type_name(p)
                )));
            }
            let kwargs = PyDict::new(py);
            kwargs.set_item("sort_keys", true)?;
            py.import("json")?
                .call_method("dumps", (p,), Some(&kwargs))?
                .extract()?
        }
    };
    let effect = PyEffect {
        name: intern(name),
        params,
        reads: slot_list(reads, "reads=")?,
        each: slot_list(each, "each=")?,
        into: into.map(|s| s.0),
        ordered,
        timeout,
    };
    Ok(PyEffectObj {
        name: name.to_owned(),
        build: build(effect),
    })
}

/// The effect's extension for `at` (None: its own roles).
pub(crate) fn extension(
    effect: &PyEffectObj,
    at: Option<&Bound<'_, PyAny>>,
) -> PyResult<Extension> {
    let roles = at.map(|at| roles_arg(at, "at=")).transpose()?;
    Ok((effect.build)(roles, None))
}

/// The start of the effect under `handle`, carried out by `at` (None: its own
/// roles).
pub(crate) fn started(
    effect: &PyEffectObj,
    handle: &str,
    at: Option<&Bound<'_, PyAny>>,
) -> PyResult<Extension> {
    if handle.is_empty() {
        return Err(PyValueError::new_err("a handle's name cannot be empty"));
    }
    let roles = at.map(|at| roles_arg(at, "at=")).transpose()?;
    Ok((effect.build)(roles, Some(Handle::from(handle))))
}

pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(effect, m)?)?;
    crate::kit_effects::add(m)?;
    Ok(())
}
