//! stormchor's workloads: plugins that set up a schema and data and run weighted
//! operations on it, and the one load engine that runs them with per-operation
//! metrics; the PostgreSQL layer's weighted actions (the stress mix) are one of them.
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
//! A run lasts a duration, or a number of operations per client
//! ([`LoadConfig::operations_per_client`]), as a closed loop or at a rate; it stops
//! early when its `stop` flag is set, shows live figures ([`Live`]), calls an
//! [`Observer`] after every operation, and reconnects through a server that goes away
//! (bounded by [`LoadConfig::reconnect_attempts`]).
//!
//! # Modules
//! - `workload`: the plugin interface ([`Workload`], [`WorkloadSession`],
//!   [`WorkloadInfo`], [`WorkloadError`]);
//! - `registry`: workloads by name ([`WorkloadRegistry`]) and a run's operation
//!   [`weights`];
//! - `pgbench`: the built-in `tpcb` and `read-only` workloads ([`Pgbench`]);
//! - `sql`: workloads described in TOML or YAML files, and the bundled `ecommerce`
//!   ([`SqlWorkload`], [`Generator`]);
//! - `stress`: the `stress` workload, the stress mix: the actions of an
//!   [`ActionRegistry`](stormchor_postgres::ActionRegistry) as operations, on a shared
//!   catalog, with a SQL log ([`Stress`]);
//! - `runner`: the load engine and its figures ([`run_load`], [`run_ramp`],
//!   [`LoadConfig`], [`LoadReport`], [`OperationMetrics`], [`Live`], [`Observer`],
//!   [`OperationDone`], [`stream_seed`]);
//! - `drive`: a client that polls its own connection while it runs an operation;
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
mod workload;

pub(crate) use config::{integer_key, known_keys};
pub(crate) use copy::copy_lines;
pub use pgbench::Pgbench;
pub use registry::{WorkloadRegistry, weights};
pub use runner::{
    Live, LoadConfig, LoadReport, Observer, OperationDone, OperationMetrics, run_load, run_ramp,
    stream_seed,
};
pub use sql::{Generator, MAX_TEXT_LENGTH, SqlWorkload};
pub use stress::Stress;
pub use workload::{
    Operation, Workload, WorkloadError, WorkloadFactory, WorkloadInfo, WorkloadSession,
};
