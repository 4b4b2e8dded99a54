//! The Python handlers of a run, registered beside the kit's effects.
//!
//! `Kit()` starts with every kit effect (Rust's `Kit::new()`); `kit.register(name,
//! handler)` adds the handler of Python effect `name`. At run time the Rust registry
//! holds the kit's handlers and one more, for every Python effect: it looks the
//! handler up by the effect's name.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use stormchor_kit::KitState;

use crate::cancel::Abandoned;
use crate::decision::PyDecide;
use crate::effect::{PyEffect, run_python};
use crate::errors::{RegistryError, text};
use crate::role::{Role, type_name};
use crate::rt::intern;

/// Python handlers by effect name.
pub(crate) type Handlers = HashMap<&'static str, Arc<Py<PyAny>>>;

/// `Kit()`: the kit's effects, and the handlers of Python effects added with
/// `register(name, handler)`.
#[pyclass(name = "Kit", module = "stormchor", subclass)]
#[derive(Default)]
pub(crate) struct PyKit {
    pub(crate) handlers: Handlers,
}

#[pymethods]
impl PyKit {
    #[new]
    fn new() -> Self {
        PyKit::default()
    }

    /// Registers `handler(ctx)` as the handler of Python effect `name`; a name
    /// registered already is a RegistryError.
    fn register(&mut self, name: &str, handler: Bound<'_, PyAny>) -> PyResult<()> {
        if !handler.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "the handler of {name} must be callable, not {}",
                type_name(&handler)
            )));
        }
        let name = intern(name);
        if self.handlers.contains_key(name) {
            return Err(text::<RegistryError>(
                stormchor_runtime::RegistryError::Duplicate { effect: name },
            ));
        }
        self.handlers.insert(name, Arc::new(handler.unbind()));
        Ok(())
    }

    /// The names of the Python effects with a handler, sorted.
    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.handlers.keys().copied().collect();
        names.sort_unstable();
        names
    }

    fn __contains__(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }
}

/// The Rust registry of a run: every kit effect, and the Python effects' handler.
pub(crate) fn registry(
    handlers: Handlers,
    abandoned: &Abandoned,
) -> PyResult<stormchor_kit::Kit<Role>> {
    let handlers = Arc::new(handlers);
    let dropped = abandoned.clone();
    let decided = abandoned.clone();
    let mut kit = stormchor_kit::Kit::<Role>::new().map_err(text::<RegistryError>)?;
    kit.registry_mut()
        .register_unit::<PyEffect, _>(move |state: &KitState<Role>, effect: &PyEffect| {
            let handlers = handlers.clone();
            let abandoned = dropped.clone();
            Box::pin(async move { run_python(&handlers, state.data(), effect, &abandoned).await })
        })
        .map_err(text::<RegistryError>)?;
    kit.registry_mut()
        .register_unit::<PyDecide, _>(move |state: &KitState<Role>, effect: &PyDecide| {
            let abandoned = decided.clone();
            Box::pin(async move { effect.run(state.data(), &abandoned).await })
        })
        .map_err(text::<RegistryError>)?;
    stormchor_kit::register::<crate::stress::StressWith, Role>(kit.registry_mut())
        .map_err(text::<RegistryError>)?;
    Ok(kit)
}
