//! Global programs from Python: build, project, check, draw, run.
//!
//! `Program()` is immutable: every builder method returns a new program, so
//! sub-programs (a branch, a loop body, a part) are built the same way and passed
//! in. Messages are a signal's name (`"go"`) or a `Slot`, whose value the message
//! carries. A run is the kit's in-process runner: every role in its own task with
//! its own `Node`, the kit's effects and the Python effects' handlers registered
//! together, every server started by the program stopped and removed at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use stormchor_choreography::{
    Global, Program, SeededPolicy, check, project, project_all, to_mermaid,
};
use stormchor_kit::{Carry, ScenarioOptions, ScenarioReport, run_deadline, run_program_within};

use crate::cancel::Abandoned;
use crate::decision::{PyDecide, What, by_arg};
use crate::effect::{PyEffect, PyEffectObj, extension, started};
use crate::errors::{RegistryError, ScenarioError, text};
use crate::kit::{PyKit, registry};
use crate::role::{PyRole, Role, family_arg, role_arg, roles_arg, type_name};
use crate::rt::intern;
use crate::slot::PySlot;

type Prog = Program<Role, Carry>;

/// A message argument: a signal's name or a slot.
fn message(obj: &Bound<'_, PyAny>) -> PyResult<Carry> {
    if let Ok(slot) = obj.extract::<PySlot>() {
        return Ok(slot.carry());
    }
    if let Ok(name) = obj.extract::<String>() {
        if name.is_empty() {
            return Err(PyValueError::new_err("a message's name cannot be empty"));
        }
        return Ok(Carry::signal(intern(&name)));
    }
    Err(PyTypeError::new_err(format!(
        "a message is a signal's name (str) or a Slot, not {}",
        type_name(obj)
    )))
}

fn program_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Prog> {
    obj.extract::<PyRef<'_, PyProgram>>()
        .map(|p| p.inner.clone())
        .map_err(|_| {
            PyTypeError::new_err(format!("{what} must be a Program, not {}", type_name(obj)))
        })
}

/// `Program()`: a global program for every role of a test.
#[pyclass(name = "Program", module = "stormchor", frozen)]
#[derive(Clone, Default)]
pub(crate) struct PyProgram {
    pub(crate) inner: Prog,
}

fn wrap(inner: Prog) -> PyProgram {
    PyProgram { inner }
}

#[pymethods]
impl PyProgram {
    #[new]
    fn new() -> Self {
        PyProgram::default()
    }

    /// Declares a role.
    fn role(&self, role: &Bound<'_, PyAny>) -> PyResult<PyProgram> {
        Ok(wrap(self.inner.clone().role(role_arg(role, "role")?)))
    }

    /// Declares several roles (a list, or a Family's members).
    fn roles(&self, roles: &Bound<'_, PyAny>) -> PyResult<PyProgram> {
        Ok(wrap(
            self.inner.clone().with_roles(roles_arg(roles, "roles")?),
        ))
    }

    /// Declares every member of a family.
    fn family(&self, family: &Bound<'_, PyAny>) -> PyResult<PyProgram> {
        Ok(wrap(
            self.inner.clone().family(&family_arg(family, "family")?),
        ))
    }

    /// `sender` sends `msg` to `receiver`.
    fn send(
        &self,
        sender: &Bound<'_, PyAny>,
        receiver: &Bound<'_, PyAny>,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<PyProgram> {
        Ok(wrap(self.inner.clone().send(
            role_arg(sender, "the sender")?,
            role_arg(receiver, "the receiver")?,
            message(msg)?,
        )))
    }

    /// `sender` sends `msg` to every member of `receivers`, in order.
    fn broadcast(
        &self,
        sender: &Bound<'_, PyAny>,
        receivers: &Bound<'_, PyAny>,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<PyProgram> {
        Ok(wrap(self.inner.clone().broadcast(
            role_arg(sender, "the sender")?,
            family_arg(receivers, "the receivers")?,
            message(msg)?,
        )))
    }

    /// Every member of `senders` sends `msg` to `receiver`.
    fn gather(
        &self,
        senders: &Bound<'_, PyAny>,
        receiver: &Bound<'_, PyAny>,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<PyProgram> {
        Ok(wrap(self.inner.clone().gather(
            family_arg(senders, "the senders")?,
            role_arg(receiver, "the receiver")?,
            message(msg)?,
        )))
    }

    /// `at` picks one of the labelled branches: a dict `{label: Program}` or a list
    /// of `(label, Program)` pairs. At run time `decide` picks it at `at`: a callable
    /// `decide(ctx)` returning the label (called at the choice, with the slots of
    /// `reads`), or a slot whose latest value at `at` is the label. Without it, the
    /// first branch is taken (`check` explores them all).
    #[pyo3(signature = (at, branches, *, decide = None, reads = None))]
    fn choice(
        &self,
        at: &Bound<'_, PyAny>,
        branches: &Bound<'_, PyAny>,
        decide: Option<&Bound<'_, PyAny>>,
        reads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyProgram> {
        let items = match branches.downcast::<PyDict>() {
            Ok(dict) => dict.items().into_any(),
            Err(_) => branches.clone(),
        };
        let mut list = Vec::new();
        for item in items.try_iter()? {
            let item = item?;
            let pair = item.downcast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err("choice branches are (label, Program) pairs or a dict")
            })?;
            if pair.len() != 2 {
                return Err(PyTypeError::new_err(
                    "choice branches are (label, Program) pairs or a dict",
                ));
            }
            let label: String = pair.get_item(0)?.extract()?;
            list.push((label, program_arg(&pair.get_item(1)?, "a branch")?));
        }
        let at = role_arg(at, "the chooser")?;
        let mut program = self.inner.clone();
        if let Some(decide) = decide {
            let effect = PyDecide {
                role: at,
                what: What::Choice(list.iter().map(|(l, _)| l.clone()).collect()),
                by: by_arg(decide, "decide=")?,
                reads: crate::effect::slot_list(reads, "reads=")?,
            };
            program = program.ext(effect);
        } else if reads.is_some() {
            return Err(PyTypeError::new_err(
                "reads= is for the decide= callable; give decide= too",
            ));
        }
        Ok(wrap(program.choice(at, list)))
    }

    /// Runs `body` exactly `rounds` times.
    fn loop_n(&self, rounds: u64, body: &Bound<'_, PyAny>) -> PyResult<PyProgram> {
        Ok(wrap(
            self.inner
                .clone()
                .loop_n(rounds, program_arg(body, "the loop body")?),
        ))
    }

    /// Runs `body` until `decider` decides to stop: before every round, `until` at
    /// `decider`, a callable `until(ctx)` (`ctx.round`: the rounds run so far; the
    /// slots of `reads`) whose true result stops the loop, or a slot whose latest
    /// value, when true, stops it; at most `max_rounds` rounds. Without `until`, the
    /// loop runs no round at run time (`check` explores rounds with its seed).
    #[pyo3(signature = (decider, body, *, until = None, reads = None, max_rounds = None))]
    fn loop_until(
        &self,
        decider: &Bound<'_, PyAny>,
        body: &Bound<'_, PyAny>,
        until: Option<&Bound<'_, PyAny>>,
        reads: Option<&Bound<'_, PyAny>>,
        max_rounds: Option<u64>,
    ) -> PyResult<PyProgram> {
        let decider = role_arg(decider, "the decider")?;
        let body = program_arg(body, "the loop body")?;
        let Some(until) = until else {
            if reads.is_some() || max_rounds.is_some() {
                return Err(PyTypeError::new_err(
                    "reads= and max_rounds= are for the until= decider; give until= too",
                ));
            }
            return Ok(wrap(self.inner.clone().loop_until(decider, body)));
        };
        static LOOPS: AtomicU64 = AtomicU64::new(0);
        let counter = intern(&format!(
            "stormchor.rounds.{}",
            LOOPS.fetch_add(1, Ordering::Relaxed)
        ));
        let by = by_arg(until, "until=")?;
        let reads_list = crate::effect::slot_list(reads, "reads=")?;
        let decide = |first| PyDecide {
            role: decider,
            what: What::Loop {
                first,
                counter,
                max_rounds,
            },
            by: by.clone(),
            reads: reads_list.clone(),
        };
        let body = body.ext(decide(false));
        Ok(wrap(
            self.inner
                .clone()
                .ext(decide(true))
                .loop_until(decider, body),
        ))
    }

    /// Runs the parts concurrently; no two may use one directed channel, and no
    /// two may hold run-time decisions (decide=, until=) of one role.
    fn par(&self, parts: &Bound<'_, PyAny>) -> PyResult<PyProgram> {
        let mut list = Vec::new();
        for part in parts.try_iter()? {
            list.push(program_arg(&part?, "a part")?);
        }
        let mut deciders: Vec<(Role, usize)> = Vec::new();
        for (k, part) in list.iter().enumerate() {
            let mut here = Vec::new();
            part.walk(|_, effect| {
                if let Global::Ext(ext) = effect {
                    if let Some(decide) = ext.downcast_ref::<PyDecide>() {
                        here.push(decide.role);
                    }
                }
            });
            for role in here {
                if let Some((_, other)) = deciders.iter().find(|(r, p)| *r == role && *p != k) {
                    return Err(PyValueError::new_err(format!(
                        "parts {other} and {k} of the par both hold run-time decisions of {role:?} \
                         (decide= or until=): a role decides one thing at a time"
                    )));
                }
                deciders.push((role, k));
            }
        }
        Ok(wrap(self.inner.clone().par(list)))
    }

    /// `role` must finish its share of `body` within `seconds`.
    fn timeout(
        &self,
        role: &Bound<'_, PyAny>,
        seconds: f64,
        body: &Bound<'_, PyAny>,
    ) -> PyResult<PyProgram> {
        let limit = Duration::try_from_secs_f64(seconds).map_err(|_| {
            PyValueError::new_err(format!(
                "a timeout is a number of seconds >= 0, not {seconds}"
            ))
        })?;
        Ok(wrap(self.inner.clone().timeout(
            role_arg(role, "the timed role")?,
            limit,
            program_arg(body, "the timeout body")?,
        )))
    }

    /// An extension effect, carried out by the roles `at` (a role, a list, a
    /// Family), or by every role when `at` is None.
    #[pyo3(signature = (effect, at = None))]
    fn ext(&self, effect: &Bound<'_, PyAny>, at: Option<&Bound<'_, PyAny>>) -> PyResult<PyProgram> {
        let effect = effect.extract::<PyRef<'_, PyEffectObj>>().map_err(|_| {
            PyTypeError::new_err(format!(
                "ext() takes an Effect (stormchor.effect(...) or stormchor.kit.*), not {}",
                type_name(effect)
            ))
        })?;
        Ok(wrap(self.inner.clone().ext_shared(extension(&effect, at)?)))
    }

    /// Starts an effect under `handle` at the roles `at` (None: the effect's own)
    /// and goes on: the roles run the next steps while it runs, until
    /// `ext_finish(handle)` waits for its outcome (and keeps its value in its
    /// `into=` slot). Projection refuses a start never finished in its block, a
    /// finish of nothing, a handle started twice (ProjectionError, with the path).
    #[pyo3(signature = (effect, handle, at = None))]
    fn ext_start(
        &self,
        effect: &Bound<'_, PyAny>,
        handle: &str,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyProgram> {
        let effect = effect.extract::<PyRef<'_, PyEffectObj>>().map_err(|_| {
            PyTypeError::new_err(format!(
                "ext_start() takes an Effect (stormchor.effect(...) or stormchor.kit.*), not {}",
                type_name(effect)
            ))
        })?;
        Ok(wrap(
            self.inner.clone().ext_shared(started(&effect, handle, at)?),
        ))
    }

    /// Waits, at the roles that started it, for the outcome of the effect started
    /// under `handle` with `ext_start`.
    fn ext_finish(&self, handle: &str) -> PyResult<PyProgram> {
        if handle.is_empty() {
            return Err(PyValueError::new_err("a handle's name cannot be empty"));
        }
        Ok(wrap(self.inner.clone().ext_finish(handle)))
    }

    /// This program followed by `other`.
    fn then(&self, other: &Bound<'_, PyAny>) -> PyResult<PyProgram> {
        Ok(wrap(
            self.inner
                .clone()
                .then(program_arg(other, "then()'s argument")?),
        ))
    }

    /// Every role, in order.
    #[getter]
    fn all_roles(&self) -> Vec<PyRole> {
        self.inner.roles().into_iter().map(PyRole).collect()
    }

    /// How many effects of each kind the program holds.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.counts();
        let dict = PyDict::new(py);
        for (name, n) in [
            ("sends", c.sends),
            ("broadcasts", c.broadcasts),
            ("gathers", c.gathers),
            ("choices", c.choices),
            ("loops", c.loops),
            ("pars", c.pars),
            ("timeouts", c.timeouts),
            ("extensions", c.extensions),
            ("messages", c.messages),
        ] {
            dict.set_item(name, n)?;
        }
        Ok(dict)
    }

    /// The local program of every role (`{"Worker[0]": text}`), or of `role` alone
    /// (its text); a ProjectionError says where the program is wrong.
    #[pyo3(signature = (role = None))]
    fn project(&self, py: Python<'_>, role: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        if let Some(role) = role {
            let local = project(&self.inner, role_arg(role, "role")?)
                .map_err(|e| crate::errors::projection(&e))?;
            return Ok(local.to_string().into_pyobject(py)?.into_any().unbind());
        }
        let locals = project_all(&self.inner).map_err(|e| crate::errors::projection(&e))?;
        let dict = PyDict::new(py);
        for (role, local) in &locals {
            dict.set_item(format!("{role:?}"), local.to_string())?;
        }
        Ok(dict.into_any().unbind())
    }

    /// Runs every role's local program together, decisions drawn from `seed`
    /// (decided loops at most `max_rounds` rounds); a CheckError says what went
    /// wrong. Returns what it did.
    #[pyo3(signature = (seed = 0, max_rounds = 3))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
        max_rounds: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let locals = project_all(&self.inner).map_err(|e| crate::errors::projection(&e))?;
        let mut policy = SeededPolicy::new(seed).with_max_rounds(max_rounds);
        let report = check(&locals, &mut policy).map_err(|e| crate::errors::check(&e))?;
        let dict = PyDict::new(py);
        dict.set_item("messages", report.messages)?;
        dict.set_item("control", report.control)?;
        dict.set_item("steps", report.steps)?;
        let extensions: Vec<(String, &str)> = report
            .extensions
            .iter()
            .map(|(role, name)| (format!("{role:?}"), *name))
            .collect();
        dict.set_item("extensions", extensions)?;
        Ok(dict)
    }

    /// The program as a mermaid sequence diagram.
    fn mermaid(&self) -> String {
        to_mermaid(&self.inner)
    }

    /// Runs the program in this process: every role in its own task with its own
    /// node, the kit's effects and `kit`'s Python handlers. Servers the program
    /// starts (kit.StartServer) are throwaway clusters, or the `target` server
    /// (a libpq connection string) where the effect allows one.
    #[pyo3(signature = (kit = None, *, name = "python", workers = 2, seconds = 2.0, rounds = 3, seed = 1, target = None, inject = None, timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        kit: Option<PyRef<'_, PyKit>>,
        name: &str,
        workers: u16,
        seconds: f64,
        rounds: u32,
        seed: u64,
        target: Option<String>,
        inject: Option<&str>,
        timeout: Option<f64>,
    ) -> PyResult<PyReport> {
        let deadline = timeout
            .map(|t| {
                Duration::try_from_secs_f64(t)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "timeout= is a number of seconds > 0, not {t}"
                        ))
                    })
            })
            .transpose()?;
        let fault = inject
            .map(|name| {
                name.parse::<stormchor_kit::Fault>()
                    .map_err(|e| PyValueError::new_err(format!("inject=: {e}")))
            })
            .transpose()?;
        let handlers = kit.map(|k| k.handlers.clone()).unwrap_or_default();
        // Every Python effect needs its handler: say so before anything starts.
        let mut missing = Vec::new();
        self.inner.walk(|path, effect| {
            if let Global::Ext(ext) = effect {
                if let Some(python) = ext.downcast_ref::<PyEffect>() {
                    if !handlers.contains_key(python.name) {
                        missing.push(format!("{} at {path}", python.name));
                    }
                }
            }
        });
        if !missing.is_empty() {
            return Err(text::<RegistryError>(format!(
                "no Python handler is registered for {}; register one with kit.register(name, handler)",
                missing.join(", ")
            )));
        }
        project_all(&self.inner).map_err(|e| crate::errors::projection(&e))?;
        let abandoned = Abandoned::default();
        let kit = registry(handlers, &abandoned)?;
        let mut options = ScenarioOptions::short();
        options.workers = workers;
        options.duration = Duration::try_from_secs_f64(seconds)
            .map_err(|_| PyValueError::new_err(format!("seconds must be >= 0, not {seconds}")))?;
        options.rounds = rounds;
        options.seed = seed;
        options.target = target;
        options.fault = fault;
        options.started = SystemTime::now();
        let program = self.inner.clone();
        let name = name.to_owned();
        let deadline = deadline.unwrap_or_else(|| run_deadline(&options));
        // Ctrl-C reaches Python while it runs: `wait` looks for signals, and drops the
        // run (stopping its servers) when one raises.
        let mut report = crate::rt::wait(py, async move {
            run_program_within(&name, &program, &options, kit, deadline).await
        })?
        .map_err(text::<ScenarioError>)?;
        // A role its deadline ended says only that: add the Python call it was in.
        for (role, what, running) in abandoned.take() {
            if let Some(failure) = report
                .roles
                .iter_mut()
                .find(|r| r.role == role)
                .and_then(|r| r.failure.as_mut())
            {
                failure.push_str(&format!(
                    "; {role} was in {what}, running for {:.1} s, when it was stopped",
                    running.as_secs_f64()
                ));
            }
        }
        PyReport::new(py, report)
    }

    fn __len__(&self) -> usize {
        self.inner.effects().len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .extract::<PyRef<'_, PyProgram>>()
            .is_ok_and(|o| o.inner == self.inner)
    }

    fn __repr__(&self) -> String {
        let c = self.inner.counts();
        format!(
            "Program({} roles, {} effects)",
            self.inner.roles().len(),
            c.total()
        )
    }
}

/// How a run went: `success`, `failures` (one line per failed role, a Python
/// handler's traceback included), `checks`, `text` (the printed report) and `json`.
#[pyclass(name = "Report", module = "stormchor", frozen)]
pub(crate) struct PyReport {
    /// Whether every role completed and every check passed.
    #[pyo3(get)]
    success: bool,
    /// The report as the command prints it.
    #[pyo3(get)]
    text: String,
    /// The failures, one per failed role.
    #[pyo3(get)]
    failures: Vec<String>,
    /// The report as JSON (schema `stormchor-report/1`), as a dict.
    #[pyo3(get)]
    json: Py<PyAny>,
}

impl PyReport {
    fn new(py: Python<'_>, report: ScenarioReport) -> PyResult<PyReport> {
        let text = serde_json::to_string(&report.versioned())
            .map_err(|e| PyValueError::new_err(format!("the report as JSON: {e}")))?;
        let json = py.import("json")?.call_method1("loads", (text,))?.unbind();
        Ok(PyReport {
            success: report.success,
            text: report.render(),
            failures: report
                .roles
                .iter()
                .filter_map(|r| r.failure.clone())
                .collect(),
            json,
        })
    }
}

#[pymethods]
impl PyReport {
    fn __repr__(&self) -> String {
        format!(
            "Report(success={}, failures={})",
            self.success,
            self.failures.len()
        )
    }
}
