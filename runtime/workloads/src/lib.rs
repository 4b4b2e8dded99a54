//! stormchor's workloads: plugins that set up a schema and data and run weighted
//! operations on it, the closed-loop load runner with per-operation metrics, and the
//! stress worker that runs the PostgreSQL layer's weighted actions.
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
//!
//! # Modules
//! - `workload`: the plugin interface ([`Workload`], [`WorkloadSession`],
//!   [`WorkloadInfo`], [`WorkloadError`]);
//! - `registry`: workloads by name ([`WorkloadRegistry`]) and a run's operation
//!   [`weights`];
//! - `pgbench`: the built-in `tpcb` and `read-only` workloads ([`Pgbench`]);
//! - `sql`: workloads described in TOML or YAML files, and the bundled `ecommerce`
//!   ([`SqlWorkload`], [`Generator`]);
//! - `stress`: the `stress` workload: the PostgreSQL layer's weighted actions as
//!   operations ([`Stress`]);
//! - `runner`: the closed-loop load runner and its figures ([`run_load`], [`run_ramp`],
//!   [`LoadReport`], [`OperationMetrics`], [`Live`]);
//! - `drive`: a client that polls its own connection while it runs an operation;
//! - `worker`: the stress worker: draws actions from an
//!   [`ActionRegistry`](stormchor_postgres::ActionRegistry) and runs them on its own
//!   connection ([`run_worker`], [`WorkerReport`], [`ActionStats`]);
//! - `copy`, `config`: bulk loading with `COPY`, and reading config sections.
//!
//! # Example
//! ```
//! use stormchor_workloads::{WorkloadRegistry, weights};
//!
//! let registry = WorkloadRegistry::with_builtins();
//! let mut tpcb = registry.create("tpcb").expect("built in");
//! tpcb.configure(&toml::from_str("scale = 2").expect("toml")).expect("a known key");
//! let overrides: toml::Table = toml::from_str("tpcb = 3").expect("toml");
//! assert_eq!(weights(&tpcb.info(), Some(&overrides)).expect("weights"), vec![3]);
//! assert!(registry.create("tpcc").is_err());
//! ```
#![deny(missing_docs)]

mod config;
mod copy;
mod drive;
mod pgbench;
mod registry;
mod runner;
mod sql;
mod stress;
mod worker;
mod workload;

pub(crate) use config::{integer_key, known_keys};
pub(crate) use copy::copy_lines;
pub use pgbench::Pgbench;
pub use registry::{WorkloadRegistry, weights};
pub use runner::{Live, LoadConfig, LoadReport, OperationMetrics, run_load, run_ramp};
pub use sql::{Generator, MAX_TEXT_LENGTH, SqlWorkload};
pub use stress::Stress;
pub use worker::{
    ActionDone, ActionStats, WorkLimit, WorkerConfig, WorkerReport, run_worker, run_worker_observed,
};
pub use workload::{
    Operation, Workload, WorkloadError, WorkloadFactory, WorkloadInfo, WorkloadSession,
};
