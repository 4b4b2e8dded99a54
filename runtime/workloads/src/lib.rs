//! Workloads: plugins that set up a schema and data and run weighted operations on it,
//! with a closed-loop load runner and per-operation metrics.
//!
//! A [`Workload`] describes itself, reads its own config section (unknown keys are
//! errors that name the key), sets up its schema and bulk-loads its data, and opens a
//! [`WorkloadSession`] per connection that runs one operation at a time. The
//! [`WorkloadRegistry`] finds workloads by name: the built-ins and any crate's own.
//!
//! The runner ([`run_load`]) gives every client a thread with a single-threaded runtime,
//! and the client polls its connection itself, with the operation (`drive`): no task
//! switch per statement. A workload that [pipelines](Workload::pipelines) can send an
//! operation's statements without waiting for each reply ([`LoadConfig::pipeline`]).

mod drive;
mod pgbench;
mod runner;
mod sql;
mod stress;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use rand::rngs::SmallRng;
use thiserror::Error;
use tokio_postgres::Client;

pub use pgbench::Pgbench;
pub use runner::{Live, LoadConfig, LoadReport, OperationMetrics, run_load, run_ramp};
pub use sql::{Generator, MAX_TEXT_LENGTH, SqlWorkload};
pub use stress::Stress;

use crate::postgres::SqlError;

/// What can go wrong with a workload.
#[derive(Debug, Error)]
pub enum WorkloadError {
    /// A bad config value or key.
    #[error("workload {workload}: {problem}")]
    Config {
        /// The workload.
        workload: String,
        /// What is wrong, naming the key.
        problem: String,
    },
    /// A statement of the setup or a session failed.
    #[error("workload {workload}: {what}: {error}")]
    Sql {
        /// The workload.
        workload: String,
        /// What was being done.
        what: String,
        /// The error.
        error: SqlError,
    },
    /// No workload has this name.
    #[error("no workload named {name}; known workloads: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
}

/// One kind of operation of a workload, with its default weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Its name.
    pub name: String,
    /// Its default weight.
    pub weight: u32,
}

/// How a workload describes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadInfo {
    /// Its name, as the CLI knows it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Its operations, with default weights.
    pub operations: Vec<Operation>,
}

/// A workload's state on one connection (prepared statements and the like).
pub trait WorkloadSession: Send {
    /// Runs operation `operation` (an index into the workload's operations) once.
    fn run<'a>(
        &'a mut self,
        operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>>;

    /// Runs operation `operation` once with its statements pipelined: each sent without
    /// waiting for the previous one's reply. Only called when the workload
    /// [pipelines](Workload::pipelines); by default the same as [`run`](Self::run).
    fn run_pipelined<'a>(
        &'a mut self,
        operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>> {
        self.run(operation, rng)
    }
}

/// A workload plugin.
pub trait Workload: Send + Sync {
    /// Name, version, description and operations.
    fn info(&self) -> WorkloadInfo;

    /// Reads the workload's own config section; an unknown key or a wrong type is an
    /// error naming it. The `weights` table is the framework's and never reaches it.
    fn configure(&mut self, section: &toml::Table) -> Result<(), WorkloadError>;

    /// Creates the schema and loads the data.
    fn setup<'a>(&'a self, client: &'a mut Client) -> BoxFuture<'a, Result<(), WorkloadError>>;

    /// Removes what `setup` made.
    fn cleanup<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), WorkloadError>>;

    /// Opens a session on a connection.
    fn session<'a>(
        &'a self,
        client: Client,
    ) -> BoxFuture<'a, Result<Box<dyn WorkloadSession>, WorkloadError>>;

    /// Whether its sessions can pipeline an operation's statements
    /// ([`WorkloadSession::run_pipelined`]); a load run with `pipeline` set is refused
    /// for a workload that cannot.
    fn pipelines(&self) -> bool {
        false
    }

    /// Figures of the workload's own, for the report.
    fn custom_metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Makes a fresh, unconfigured workload.
pub type WorkloadFactory = Arc<dyn Fn() -> Box<dyn Workload> + Send + Sync>;

/// Workloads by name.
///
/// # Example
/// ```
/// use stormchor_runtime::workload::WorkloadRegistry;
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

/// Bulk-loads `lines` (COPY text rows, each ending in a newline) into `table`, in
/// chunks of about 1 MiB.
pub(crate) async fn copy_lines(
    client: &Client,
    workload: &str,
    table: &str,
    lines: impl Iterator<Item = String>,
) -> Result<(), WorkloadError> {
    use futures::SinkExt;
    let fail = |what: String| {
        let workload = workload.to_owned();
        move |error: tokio_postgres::Error| WorkloadError::Sql {
            workload,
            what,
            error: SqlError::from(error),
        }
    };
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN"))
        .await
        .map_err(fail(format!("starting COPY into {table}")))?;
    let mut sink = Box::pin(sink);
    let mut chunk = String::with_capacity(1 << 20);
    for line in lines {
        chunk.push_str(&line);
        if chunk.len() >= 1 << 20 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut chunk)))
                .await
                .map_err(fail(format!("loading {table}")))?;
        }
    }
    if !chunk.is_empty() {
        sink.send(bytes::Bytes::from(chunk))
            .await
            .map_err(fail(format!("loading {table}")))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(fail(format!("finishing COPY into {table}")))?;
    Ok(())
}

/// Reads an integer key of a config section, within bounds.
pub(crate) fn integer_key(
    workload: &str,
    section: &toml::Table,
    key: &str,
    min: i64,
    default: i64,
) -> Result<i64, WorkloadError> {
    match section.get(key) {
        None => Ok(default),
        Some(value) => match value.as_integer() {
            Some(n) if n >= min => Ok(n),
            _ => Err(WorkloadError::Config {
                workload: workload.to_owned(),
                problem: format!("`{key}` must be a whole number of at least {min}, found {value}"),
            }),
        },
    }
}

/// Refuses keys outside `known`.
pub(crate) fn known_keys(
    workload: &str,
    section: &toml::Table,
    known: &[&str],
) -> Result<(), WorkloadError> {
    match section.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(WorkloadError::Config {
            workload: workload.to_owned(),
            problem: format!("unknown key `{key}` (known keys: {})", known.join(", ")),
        }),
        None => Ok(()),
    }
}
