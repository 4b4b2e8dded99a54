//! Rust errors as Python exceptions: one family under `StormchorError`, each
//! exception's message the Rust error's `Display` text, word for word.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use stormchor_choreography::{CheckError as RustCheck, ProjectionError as RustProjection};

create_exception!(
    stormchor,
    StormchorError,
    PyException,
    "The base of every stormchor error."
);
create_exception!(
    stormchor,
    ProjectionError,
    StormchorError,
    "A global program does not project; `path` says where."
);
create_exception!(
    stormchor,
    CheckError,
    StormchorError,
    "Local programs do not run together (deadlock, orphan message, wrong label)."
);
create_exception!(
    stormchor,
    RegistryError,
    StormchorError,
    "A handler registration problem (a name registered twice, a missing handler)."
);
create_exception!(
    stormchor,
    ActionError,
    StormchorError,
    "An action registry problem or a failed action."
);
create_exception!(
    stormchor,
    SqlError,
    ActionError,
    "A statement failed; `sqlstate` holds its SQLSTATE (None: the connection broke)."
);
create_exception!(
    stormchor,
    ScenarioError,
    StormchorError,
    "A program could not run (its options, its setup)."
);
create_exception!(
    stormchor,
    ClusterError,
    StormchorError,
    "A PostgreSQL cluster could not be started, reached or stopped."
);
create_exception!(
    stormchor,
    ConfigError,
    StormchorError,
    "A bad config file or STORMCHOR_* variable."
);
create_exception!(
    stormchor,
    SlotError,
    StormchorError,
    "A slot's value is missing, or is not of the slot's kind."
);

pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("StormchorError", py.get_type::<StormchorError>())?;
    m.add("ProjectionError", py.get_type::<ProjectionError>())?;
    m.add("CheckError", py.get_type::<CheckError>())?;
    m.add("RegistryError", py.get_type::<RegistryError>())?;
    m.add("ActionError", py.get_type::<ActionError>())?;
    m.add("SqlError", py.get_type::<SqlError>())?;
    m.add("ScenarioError", py.get_type::<ScenarioError>())?;
    m.add("ClusterError", py.get_type::<ClusterError>())?;
    m.add("SlotError", py.get_type::<SlotError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}

/// A projection error, with its path (`str`) as the exception's `path`.
pub(crate) fn projection(error: &RustProjection) -> PyErr {
    Python::with_gil(|py| {
        let err = ProjectionError::new_err(error.to_string());
        if let Err(e) = err.value(py).setattr("path", error.path().to_string()) {
            return e;
        }
        err
    })
}

/// A check error.
pub(crate) fn check(error: &RustCheck) -> PyErr {
    CheckError::new_err(error.to_string())
}

/// Any error as the exception `E` with its text.
pub(crate) fn text<E: pyo3::PyTypeInfo>(error: impl std::fmt::Display) -> PyErr {
    PyErr::new::<E, _>(error.to_string())
}
