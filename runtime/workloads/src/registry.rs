//! Workloads by name, and the operation weights of a run.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::{Pgbench, SqlWorkload, Stress, Workload, WorkloadError, WorkloadFactory, WorkloadInfo};

/// Workloads by name.
///
/// # Example
/// ```
/// use stormchor_workloads::WorkloadRegistry;
///
/// let registry = WorkloadRegistry::with_builtins();
/// let tpcb = registry.create("tpcb").expect("built in");
/// assert_eq!(tpcb.info().operations[0].name, "tpcb");
/// assert!(registry.create("tpcc").is_err());
/// ```
#[derive(Clone, Default)]
pub struct WorkloadRegistry {
    factories: BTreeMap<String, WorkloadFactory>,
}

impl fmt::Debug for WorkloadRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl WorkloadRegistry {
    /// The built-in workloads.
    pub fn with_builtins() -> Self {
        let mut registry = WorkloadRegistry::default();
        registry.register(
            "tpcb",
            Arc::new(|| Box::new(Pgbench::tpcb()) as Box<dyn Workload>),
        );
        registry.register(
            "read-only",
            Arc::new(|| Box::new(Pgbench::read_only()) as Box<dyn Workload>),
        );
        registry.register(
            "stress",
            Arc::new(|| Box::new(Stress::default()) as Box<dyn Workload>),
        );
        registry.register(
            "sql",
            Arc::new(|| Box::new(SqlWorkload::default()) as Box<dyn Workload>),
        );
        registry.register(
            "ecommerce",
            Arc::new(|| {
                match SqlWorkload::parse(include_str!("ecommerce.toml"), "ecommerce.toml") {
                    Ok(workload) => Box::new(workload) as Box<dyn Workload>,
                    // The bundled description is checked by a test; this cannot happen.
                    Err(_) => Box::new(SqlWorkload::default()) as Box<dyn Workload>,
                }
            }),
        );
        registry
    }

    /// Adds (or replaces) a workload.
    pub fn register(&mut self, name: &str, factory: WorkloadFactory) {
        self.factories.insert(name.to_owned(), factory);
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// A fresh workload called `name`.
    pub fn create(&self, name: &str) -> Result<Box<dyn Workload>, WorkloadError> {
        match self.factories.get(name) {
            Some(factory) => Ok(factory()),
            None => Err(WorkloadError::Unknown {
                name: name.to_owned(),
                known: self.names().join(", "),
            }),
        }
    }
}

/// The weights of `info`'s operations, with the overrides of a `weights` table.
pub fn weights(
    info: &WorkloadInfo,
    overrides: Option<&toml::Table>,
) -> Result<Vec<u32>, WorkloadError> {
    let mut weights: Vec<u32> = info.operations.iter().map(|o| o.weight).collect();
    let config = |problem: String| WorkloadError::Config {
        workload: info.name.clone(),
        problem,
    };
    for (key, value) in overrides.into_iter().flatten() {
        let index = info
            .operations
            .iter()
            .position(|o| &o.name == key)
            .ok_or_else(|| {
                let known: Vec<&str> = info.operations.iter().map(|o| o.name.as_str()).collect();
                config(format!(
                    "weights: unknown operation `{key}` (operations: {})",
                    known.join(", ")
                ))
            })?;
        let weight = value
            .as_integer()
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| {
                config(format!(
                    "weights.{key}: expected a whole number of 0 or more, found {value}"
                ))
            })?;
        weights[index] = weight;
    }
    if weights.iter().all(|w| *w == 0) {
        return Err(config(
            "every operation has weight 0: nothing to run".to_owned(),
        ));
    }
    Ok(weights)
}
