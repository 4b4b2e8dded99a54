//! The flagship scenarios: whole database tests, each one choreography of kit
//! effects (`stormchor_kit`) plus its registration. Nothing here is private to a
//! scenario that another would need: the effects, values and runner are the kit's.
//!
//! | name | what it proves |
//! |---|---|
//! | `backup-restore` | a base backup taken under load restores to exactly the primary's data |
//! | `crash-recovery` | after SIGKILLs at seeded moments, every acknowledged transaction is whole, none is half there, `pg_amcheck` is clean |
//! | `pitr` | restoring to each recorded WAL position gives the data recorded there |
//! | `failover` | after the primary dies, the promoted synchronous replica has every acknowledged transaction |
//! | `existing-database` | the stress mix on a schema the test did not create keeps every worker's catalog exact |
//! | `isolation` | PostgreSQL's documented anomalies appear and are prevented at each isolation level |
//! | `stress-check` | workers run the action mix on their own shares; each catalog matches the database |
//!
//! Every role owns its resources: `Primary` (and `Replica`) their servers, `Backup`
//! its backups and restored clusters, each `Worker` its catalog, ledger and
//! connections. Where to connect, recorded points, checksums and ledgers travel in
//! messages (`SLOT.carry()`).
//!
//! # Example
//! ```no_run
//! use stormchor::scenarios::{ScenarioOptions, registry};
//!
//! # async fn demo() -> Result<(), stormchor::scenarios::ScenarioError> {
//! let report = registry().run("crash-recovery", ScenarioOptions::short()).await?;
//! report.print();
//! assert!(report.success);
//! # Ok(()) }
//! ```

pub mod backup_restore;
pub mod crash_recovery;
pub mod existing_database;
pub mod failover;
pub mod isolation;
pub mod pitr;
pub mod stress_check;

pub use stormchor_kit::{
    Fault, KitScenario, Scenario, ScenarioError, ScenarioOptions, ScenarioRegistry, ScenarioReport,
};

/// The roles of the database scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbRole {
    /// Decides, records, verifies.
    Coordinator,
    /// Runs the primary server.
    Primary,
    /// Takes, verifies and restores backups; owns the restored clusters.
    Backup,
    /// Runs a streaming replica, promoted on failover.
    Replica,
    /// Runs load.
    Worker(u16),
}

impl stormchor_kit::KitRole for DbRole {
    fn member(&self) -> Option<u16> {
        match self {
            DbRole::Worker(k) => Some(*k),
            _ => None,
        }
    }
}

/// The family size for `options`: at least one worker.
pub fn workers(options: &ScenarioOptions) -> u16 {
    options.workers.max(1)
}

/// Every flagship scenario, registered.
pub fn registry() -> ScenarioRegistry {
    let mut registry = ScenarioRegistry::new();
    // The built-in names are distinct (a test says so): registering cannot fail.
    let _ = registry.register(backup_restore::scenario());
    let _ = registry.register(crash_recovery::scenario());
    let _ = registry.register(pitr::scenario());
    let _ = registry.register(failover::scenario());
    let _ = registry.register(existing_database::scenario());
    let _ = registry.register(isolation::scenario());
    let _ = registry.register(stress_check::scenario());
    registry
}
