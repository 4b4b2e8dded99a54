//! The flagship scenarios: whole database tests written as one choreography each.
//!
//! | name | what it proves |
//! |---|---|
//! | `backup-restore` | a base backup taken under load restores to exactly the primary's data |
//! | `crash-recovery` | after SIGKILLs at seeded moments, every acknowledged transaction is whole, none is half there, `pg_amcheck` is clean |
//! | `pitr` | restoring to each recorded WAL position gives the data recorded there |
//! | `failover` | after the primary dies, the promoted synchronous replica has every acknowledged transaction |
//! | `existing-database` | the stress mix on a schema the test did not create keeps the catalog exact |
//! | `isolation` | PostgreSQL's documented anomalies appear and are prevented at each isolation level |
//!
//! Every scenario reports its named phases per role with timestamps, the checks its
//! verifiers ran with their evidence, and figures; a failing check fails the run.
//! `--seed` replays the same choices (kill moments, action draws per worker).
//!
//! # Example
//! ```no_run
//! use stormchor::scenarios::{ScenarioOptions, run};
//!
//! # async fn demo() -> Result<(), stormchor::scenarios::ScenarioError> {
//! let report = run("crash-recovery", ScenarioOptions::short()).await?;
//! report.print();
//! assert!(report.success);
//! # Ok(()) }
//! ```

mod backup_restore;
mod crash_recovery;
mod database;
mod existing_database;
mod failover;
pub mod isolation;
mod journal;
mod pitr;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use stormchor_choreography::ProjectionError;
use thiserror::Error;

pub use database::{DbMsg, DbRole};
pub use journal::{CheckRecord, Journal, Phase, PhaseRecord, RoleRecord, ScenarioReport};

/// The scenarios, with a line each.
pub const SCENARIOS: [(&str, &str); 6] = [
    (
        "backup-restore",
        "a base backup taken under load restores (WAL replayed to a quiesced point) to exactly the primary's checksums; workers go on on the restored cluster",
    ),
    (
        "crash-recovery",
        "workers commit ledger transactions while the server is SIGKILLed at seeded moments; nothing acknowledged is lost, nothing is half there, pg_amcheck is clean",
    ),
    (
        "pitr",
        "WAL archiving on; the coordinator records points with checksums; the backup node restores to each point and the checksums must match",
    ),
    (
        "failover",
        "a synchronous streaming replica; the primary is killed under load; the replica is promoted; workers move to it; every acknowledged write is there",
    ),
    (
        "existing-database",
        "a schema the test did not create (a SQL file, or your server) is discovered, stressed with the action mix, and validated",
    ),
    (
        "isolation",
        "transaction roles interleaved step by step: dirty reads/writes, lost updates, non-repeatable and phantom reads, read and write skew at each isolation level",
    ),
];

/// A fault a scenario injects on purpose, to show that its verifier catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Deletes one acknowledged ledger row behind the workers' back (crash-recovery,
    /// failover).
    DeleteAcknowledgedRow,
    /// Empties the file of the largest table holding rows on the restored cluster
    /// (backup-restore, pitr).
    CorruptRestoredTable,
    /// Restores the backup without replaying the archived WAL to the recorded point
    /// (backup-restore, pitr).
    SkipWalReplay,
    /// Drops a table behind the catalog's back (existing-database).
    DropTableBehindCatalog,
    /// Runs every isolation case one level weaker than it is written for (isolation).
    WeakerIsolation,
    /// Overwrites the line pointers of a page of the ledger's primary-key index while
    /// the server is down (crash-recovery): `pg_amcheck` must report it.
    CorruptLedgerIndex,
}

impl Fault {
    /// Every fault, with its name.
    pub const ALL: [(&'static str, Fault); 6] = [
        ("delete-acknowledged-row", Fault::DeleteAcknowledgedRow),
        ("corrupt-ledger-index", Fault::CorruptLedgerIndex),
        ("corrupt-restored-table", Fault::CorruptRestoredTable),
        ("skip-wal-replay", Fault::SkipWalReplay),
        ("drop-table-behind-catalog", Fault::DropTableBehindCatalog),
        ("weaker-isolation", Fault::WeakerIsolation),
    ];

    /// The fault's name.
    pub fn name(self) -> &'static str {
        Fault::ALL
            .iter()
            .find(|(_, fault)| *fault == self)
            .map_or("?", |(name, _)| name)
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Fault::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, fault)| *fault)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown fault `{name}`; the faults are {}",
                    names.join(", ")
                )
            })
    }
}

/// How a scenario runs.
#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    /// Workers.
    pub workers: u16,
    /// How long each load phase runs.
    pub duration: Duration,
    /// Rounds (crash-recovery: crashes; pitr: recorded points).
    pub rounds: u32,
    /// The seed of every random choice.
    pub seed: u64,
    /// A server to use instead of a throwaway cluster (scenarios that control the
    /// server's processes refuse it).
    pub target: Option<String>,
    /// The schema of `existing-database` (a SQL file); a built-in one when absent.
    pub schema_file: Option<PathBuf>,
    /// A fault to inject.
    pub fault: Option<Fault>,
    /// Set it to end load phases early (Ctrl-C).
    pub stop: Arc<AtomicBool>,
}

impl ScenarioOptions {
    /// The short configuration CI runs: 2 workers, 2 s load phases, 3 rounds, seed 1.
    pub fn short() -> Self {
        ScenarioOptions {
            workers: 2,
            duration: Duration::from_secs(2),
            rounds: 3,
            seed: 1,
            target: None,
            schema_file: None,
            fault: None,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Why a scenario could not run (a scenario that ran and failed a check returns a
/// report with `success == false` instead).
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// No scenario has that name.
    #[error("unknown scenario `{name}`; the scenarios are {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The scenario's choreography does not project (a bug in the scenario).
    #[error("the {scenario} choreography is unsound: {source}")]
    Projection {
        /// The scenario.
        scenario: String,
        /// Why (boxed: the error stays small on the happy path).
        #[source]
        source: Box<ProjectionError>,
    },
    /// Setting the scenario up failed (a cluster that does not start, a target that
    /// cannot be reached, a scenario that needs process control on an external server).
    #[error("cannot set the {scenario} scenario up: {message}")]
    Setup {
        /// The scenario.
        scenario: String,
        /// What went wrong.
        message: String,
    },
}

/// Runs the scenario `name`.
pub async fn run(name: &str, options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    match name {
        "backup-restore" => backup_restore::run(options).await,
        "crash-recovery" => crash_recovery::run(options).await,
        "pitr" => pitr::run(options).await,
        "failover" => failover::run(options).await,
        "existing-database" => existing_database::run(options).await,
        "isolation" => isolation::run(options).await,
        _ => Err(unknown(name)),
    }
}

/// The mermaid sequence diagram of the scenario `name` with these options.
pub fn diagram(name: &str, options: &ScenarioOptions) -> Result<String, ScenarioError> {
    use stormchor_choreography::to_mermaid;
    Ok(match name {
        "backup-restore" => to_mermaid(&backup_restore::program(options)),
        "crash-recovery" => to_mermaid(&crash_recovery::program(options)),
        "pitr" => to_mermaid(&pitr::program(options)),
        "failover" => to_mermaid(&failover::program(options)),
        "existing-database" => to_mermaid(&existing_database::program(options)),
        "isolation" => isolation::diagram(options),
        _ => return Err(unknown(name)),
    })
}

/// How many control frames effect order adds to scenario `name`'s projections
/// (`stormchor describe NAME` shows it).
pub fn control_frames(name: &str, options: &ScenarioOptions) -> Result<usize, ScenarioError> {
    fn count<R: stormchor_choreography::RoleId, M: stormchor_choreography::Message>(
        name: &str,
        program: &stormchor_choreography::Program<R, M>,
    ) -> Result<usize, ScenarioError> {
        stormchor_choreography::order_frames(program)
            .map(|frames| frames.total())
            .map_err(|source| ScenarioError::Projection {
                scenario: name.to_owned(),
                source: Box::new(source),
            })
    }
    match name {
        "backup-restore" => count(name, &backup_restore::program(options)),
        "crash-recovery" => count(name, &crash_recovery::program(options)),
        "pitr" => count(name, &pitr::program(options)),
        "failover" => count(name, &failover::program(options)),
        "existing-database" => count(name, &existing_database::program(options)),
        "isolation" => count(name, &isolation::program(options)),
        _ => Err(unknown(name)),
    }
}

/// Checks that scenario `name`'s choreography projects, before anything starts.
fn check_sound<R: stormchor_choreography::RoleId, M: stormchor_choreography::Message>(
    name: &str,
    program: &stormchor_choreography::Program<R, M>,
) -> Result<(), ScenarioError> {
    stormchor_choreography::project_all(program)
        .map(|_| ())
        .map_err(|source| ScenarioError::Projection {
            scenario: name.to_owned(),
            source: Box::new(source),
        })
}

/// Whether `name` is a scenario.
pub fn is_scenario(name: &str) -> bool {
    SCENARIOS.iter().any(|(known, _)| *known == name)
}

fn unknown(name: &str) -> ScenarioError {
    ScenarioError::Unknown {
        name: name.to_owned(),
        known: SCENARIOS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", "),
    }
}
