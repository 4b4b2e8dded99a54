//! Slots from Python: a named value of one kind, produced by an effect at one role
//! and carried by messages to others.
//!
//! A slot's kind is the Rust type its value has, so that kit effects and Python
//! effects read each other's values: `server` (where a server is: the kit's
//! `ServerInfo`), `str`, `int`, `checksums`, `point` and the other kit outputs (see
//! `Kind::ALL`), and `json` (any value Python's `json` module writes, for Python
//! effects among themselves). Python sees every
//! value as what `json.loads` makes of it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde::{Deserialize, Serialize};
use stormchor_kit::effects::verify::LedgerSummary;
use stormchor_kit::effects::{BackupOutcome, Point, RecoveryGoal, ServerInfo, WorkloadSummary};
use stormchor_kit::{Carry, Slot, Values};
use stormchor_postgres::{Checksums, Ledger};

use crate::rt::intern;

/// A JSON text: the value of a `json` slot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PyJson(pub(crate) String);

/// Calls `$body` with `$T` the Rust type of kind `$kind` (every kind but `json`).
macro_rules! with_type {
    ($kind:expr, $T:ident => $body:expr, json => $json:expr) => {
        match $kind {
            Kind::Json => $json,
            Kind::Str => {
                type $T = String;
                $body
            }
            Kind::Int => {
                type $T = u64;
                $body
            }
            Kind::Count => {
                type $T = usize;
                $body
            }
            Kind::Bool => {
                type $T = bool;
                $body
            }
            Kind::Pid => {
                type $T = i32;
                $body
            }
            Kind::OptionalStr => {
                type $T = Option<String>;
                $body
            }
            Kind::StrList => {
                type $T = Vec<String>;
                $body
            }
            Kind::Server => {
                type $T = ServerInfo;
                $body
            }
            Kind::Checksums => {
                type $T = Checksums;
                $body
            }
            Kind::Point => {
                type $T = Point;
                $body
            }
            Kind::Goal => {
                type $T = RecoveryGoal;
                $body
            }
            Kind::Ledger => {
                type $T = Ledger;
                $body
            }
            Kind::LedgerSummary => {
                type $T = LedgerSummary;
                $body
            }
            Kind::BackupOutcome => {
                type $T = BackupOutcome;
                $body
            }
            Kind::WorkloadSummary => {
                type $T = WorkloadSummary;
                $body
            }
        }
    };
}

/// The Rust type of a slot's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Json,
    Str,
    Int,
    Count,
    Bool,
    Pid,
    OptionalStr,
    StrList,
    Server,
    Checksums,
    Point,
    Goal,
    Ledger,
    LedgerSummary,
    BackupOutcome,
    WorkloadSummary,
}

impl Kind {
    const ALL: [(&'static str, Kind); 16] = [
        ("json", Kind::Json),
        ("str", Kind::Str),
        ("int", Kind::Int),
        ("count", Kind::Count),
        ("bool", Kind::Bool),
        ("pid", Kind::Pid),
        ("optional_str", Kind::OptionalStr),
        ("str_list", Kind::StrList),
        ("server", Kind::Server),
        ("checksums", Kind::Checksums),
        ("point", Kind::Point),
        ("goal", Kind::Goal),
        ("ledger", Kind::Ledger),
        ("ledger_summary", Kind::LedgerSummary),
        ("backup_outcome", Kind::BackupOutcome),
        ("workload_summary", Kind::WorkloadSummary),
    ];

    pub(crate) fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    fn parse(name: &str) -> PyResult<Kind> {
        Kind::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|(n, _)| *n).collect();
                PyValueError::new_err(format!(
                    "unknown slot kind `{name}`; the kinds are {}",
                    names.join(", ")
                ))
            })
    }
}

/// A slot: a name and a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SlotSpec {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

fn to_json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(
    json: &str,
    slot: &SlotSpec,
    kind: &str,
) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| {
        format!(
            "the value for slot `{}` is not a {kind} value ({e}): {json}",
            slot.name
        )
    })
}

impl SlotSpec {
    /// The slot's latest value at a role, as JSON.
    pub(crate) fn read_json(&self, values: &Values) -> Result<String, String> {
        let name = self.name;
        let text = |e: stormchor_kit::ValueError| e.to_string();
        with_type!(self.kind,
            T => to_json(&values.get(Slot::<T>::new(name)).map_err(text)?),
            json => values.get(Slot::<PyJson>::new(name)).map(|v| v.0).map_err(text)
        )
    }

    /// The latest value of the slot from each role that sent one, as JSON, in
    /// role-name order.
    pub(crate) fn read_each_json(&self, values: &Values) -> Result<Vec<(String, String)>, String> {
        let name = self.name;
        with_type!(self.kind,
            T => values
                .from_each(Slot::<T>::new(name))
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|(from, v)| Ok((from, to_json(&v)?)))
                .collect(),
            json => Ok(values
                .from_each(Slot::<PyJson>::new(name))
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|(from, v)| (from, v.0))
                .collect())
        )
    }

    /// Keeps `json` as the role's own value of the slot, as the slot's type.
    pub(crate) fn write_json(&self, values: &Values, json: &str) -> Result<(), String> {
        let name = self.name;
        let kind = self.kind.name();
        let result = with_type!(self.kind,
            T => values.put(Slot::<T>::new(name), &from_json::<T>(json, self, kind)?),
            json => values.put(Slot::<PyJson>::new(name), &PyJson(json.to_owned()))
        );
        result.map_err(|e| e.to_string())
    }

    /// The slot as a typed kit slot, when it is of kind `kind`.
    pub(crate) fn typed<T>(&self, kind: Kind, what: &str) -> PyResult<Slot<T>> {
        if self.kind != kind {
            return Err(crate::errors::SlotError::new_err(format!(
                "{what} takes a slot of kind {}, but slot `{}` is of kind {}",
                kind.name(),
                self.name,
                self.kind.name()
            )));
        }
        Ok(Slot::new(self.name))
    }
}

/// `Slot(name, kind="json")`: a named value roles produce and pass on. Sending a slot
/// (`program.send(a, b, SLOT)`) carries the sender's latest value to the receiver.
#[pyclass(name = "Slot", module = "stormchor", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PySlot(pub(crate) SlotSpec);

#[pymethods]
impl PySlot {
    #[new]
    #[pyo3(signature = (name, kind = "json"))]
    fn new(name: &str, kind: &str) -> PyResult<Self> {
        if name.is_empty() {
            return Err(PyValueError::new_err("a slot's name cannot be empty"));
        }
        Ok(PySlot(SlotSpec {
            name: intern(name),
            kind: Kind::parse(kind)?,
        }))
    }

    /// The slot's name.
    #[getter]
    fn name(&self) -> &'static str {
        self.0.name
    }

    /// The slot's kind.
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.name()
    }

    fn __repr__(&self) -> String {
        format!("Slot({:?}, kind={:?})", self.0.name, self.0.kind.name())
    }
}

impl PySlot {
    pub(crate) fn carry(&self) -> Carry {
        Slot::<()>::new(self.0.name).carry()
    }
}

/// The kit's own slots, as `stormchor.slots.PRIMARY` and so on.
pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let slots = PyModule::new(py, "slots")?;
    for (name, kind) in [
        ("PRIMARY", ("primary", Kind::Server)),
        ("REPLICA", ("replica", Kind::Server)),
        ("CASCADE", ("cascade", Kind::Server)),
        ("RESTORED", ("restored", Kind::Server)),
        ("LEDGER", ("ledger", Kind::Ledger)),
        ("GOAL", ("goal", Kind::Goal)),
        ("POINT", ("point", Kind::Point)),
        ("CHECKSUMS", ("checksums", Kind::Checksums)),
        ("ACTIONS", ("actions", Kind::Int)),
        ("MISSED", ("missed expectations", Kind::StrList)),
    ] {
        slots.add(
            name,
            PySlot(SlotSpec {
                name: intern(kind.0),
                kind: kind.1,
            }),
        )?;
    }
    m.add_submodule(&slots)?;
    Ok(())
}
