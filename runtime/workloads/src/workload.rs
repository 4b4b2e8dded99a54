//! The workload plugin interface: what a workload says of itself, how it sets up, and
//! the session it runs operations on.

use std::sync::Arc;

use futures::future::BoxFuture;
use rand::rngs::SmallRng;
use stormchor_postgres::SqlError;
use thiserror::Error;
use tokio_postgres::Client;

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
