//! A scenario no built-in is, written outside the facade with the public API only:
//! **crash during a base backup**.
//!
//! Workers write ledger transactions on the primary; the backup node starts a base
//! backup, throttled so that it streams for long, and tells the primary's node once
//! the server reports it streaming; the primary's node SIGKILLs its server (the backup
//! is still streaming: it was seen streaming, and at the throttled rate it has most of
//! the data still to send) and restarts it. The interrupted backup must be rejected
//! by `pg_verifybackup`. A second backup, taken after the restart, must verify and
//! restore to a point the coordinator records after more load, with every table's
//! checksum equal to the primary's there; every acknowledged ledger transaction must
//! have survived the kill.
//!
//! The crate shows the three things an author writes:
//! - the **choreography** ([`crash_during_backup`]), in the `choreography!` DSL, of kit
//!   effects ([`stormchor::kit::effects`]) and values carried in messages
//!   (`SLOT.carry()`);
//! - an **own effect** ([`InterruptedBackupRejected`]), a [`DbEffect`] registered with
//!   [`Kit::with`];
//! - the **registration** ([`register`]) in a [`ScenarioRegistry`].
//!
//! # Example
//! ```
//! use stormchor::kit::{ScenarioOptions, ScenarioRegistry};
//!
//! let mut registry = ScenarioRegistry::new();
//! stormchor_example_scenario::register(&mut registry).expect("a new name");
//! let scenario = registry.get("crash-during-backup").expect("registered");
//! assert!(scenario.defaults().controls_processes);
//! assert!(scenario.diagram(&ScenarioOptions::short()).contains("BackgroundBackup"));
//! ```
#![deny(missing_docs)]

use std::time::Duration;

use stormchor::kit::effects::{
    BackgroundBackup, BackupOutcome, CompareChecksums, CreateLedger, Goal, KillServer, Phase,
    RecordPoint, RestartServer, Restore, RestoreTo, StartServer, TableChecksums, TakeBackup,
    VerifyBackup, VerifyLedger, WriteLedger,
};
use stormchor::kit::slots::{CHECKSUMS, LEDGER, POINT, PRIMARY, RESTORED};
use stormchor::kit::{
    Carry, DbEffect, Defaults, Fault, Kit, KitRole, KitScenario, Node, Program, ScenarioError,
    ScenarioOptions, ScenarioRegistry, Slot,
};
use stormchor::macros::{ExtensionEffect, choreography};
use stormchor::postgres::PgBinaries;
use stormchor::runtime::EffectFailure;
use stormchor::runtime::RegistryError;

/// The scenario's name.
pub const NAME: &str = "crash-during-backup";

/// How the backup that the kill interrupts ended, as the backup node saw it.
pub const INTERRUPTED: Slot<BackupOutcome> = Slot::new("interrupted backup");

/// The rate the first backup is throttled to, in kB/s: a fresh cluster holds some
/// 30 MB, so it would stream for half a minute; the kill comes milliseconds after the
/// server reports it streaming.
pub const THROTTLE_KB: u32 = 1024;

/// How long the backup node waits for the interrupted `pg_basebackup` to end.
const FINISH_BOUND: Duration = Duration::from_secs(60);

choreography! {
    /// The parties: each owns its resources (the primary's node its server, the
    /// backup node its backups and restored cluster, each worker its ledger).
    pub enum Role {
        /// Records the point, compares checksums, verifies the ledger.
        Coordinator,
        /// Runs the primary server: kills and restarts it.
        Primary,
        /// Takes the backups, checks them, owns the restored cluster.
        Backup,
        /// Writes ledger transactions.
        Worker(u16),
    }

    /// Load; a backup killed while it streams; a second backup restored to a point.
    pub fn crash_during_backup(workers: u16, load: Duration, after: Duration, throttle_kb: u32) -> Program<Role, Carry> {
        roles Coordinator, Primary, Backup, Worker[workers];
        ext Phase("setup");
        ext StartServer::throwaway().archiving().into_slot(PRIMARY) @ Primary;
        ext CreateLedger { on: PRIMARY } @ Primary;
        Primary -> Backup: PRIMARY.carry();
        Primary -> Coordinator: PRIMARY.carry();
        Primary -> Worker: PRIMARY.carry();
        ext Phase("load, backup, kill") @ Primary, Backup, Worker;
        par {
            ext WriteLedger { on: PRIMARY, duration: load }.into_slot(LEDGER) @ Worker;
            Worker -> Coordinator: LEDGER.carry();
        } and {
            // Started once it streams: effect order lands the kill during it.
            ext start BackgroundBackup { of: PRIMARY, max_rate_kb: Some(throttle_kb), within: FINISH_BOUND } => INTERRUPTED @ Backup as backup;
            ext KillServer @ Primary;
            ext RestartServer @ Primary;
            ext finish backup @ Backup;
            ext InterruptedBackupRejected { outcome: INTERRUPTED } @ Backup;
        }
        ext Phase("second backup") @ Backup;
        ext TakeBackup { of: PRIMARY } @ Backup;
        ext VerifyBackup { tolerate: false } @ Backup;
        Backup -> Coordinator: Carry::signal("backed up");
        // Load after the second backup: reaching the point takes replaying archived WAL.
        Coordinator -> Worker: Carry::signal("more load");
        ext Phase("load after the backup") @ Worker;
        ext WriteLedger { on: PRIMARY, duration: after }.into_slot(LEDGER) @ Worker;
        Worker -> Coordinator: LEDGER.carry();
        ext Phase("record point") @ Coordinator;
        ext RecordPoint { on: PRIMARY }.into_slot(POINT) @ Coordinator;
        Coordinator -> Backup: POINT.carry();
        ext Phase("restore") @ Backup;
        ext Restore { from: PRIMARY, to: RestoreTo::Goal(Goal::AtPoint(POINT)), name: "restored" }.into_slot(RESTORED) @ Backup;
        ext TableChecksums { of: RESTORED }.into_slot(CHECKSUMS) @ Backup;
        Backup -> Coordinator: CHECKSUMS.carry();
        ext Phase("verify") @ Coordinator;
        ext CompareChecksums { expected: POINT, found: CHECKSUMS, in_order: false } @ Coordinator;
        ext VerifyLedger { on: PRIMARY, ledgers: LEDGER } @ Coordinator;
    }
}

impl KitRole for Role {
    fn member(&self) -> Option<u16> {
        match self {
            Role::Worker(k) => Some(*k),
            _ => None,
        }
    }
}

/// The author's own effect: checks, as a check of the report, that the backup in
/// `outcome` was interrupted (`pg_basebackup` failed) and that `pg_verifybackup`
/// rejects what it left. A backup that completed fails the check: the kill must land
/// while `pg_basebackup` streams. The output is whether the check held.
///
/// # Example
/// ```
/// use stormchor::kit::DbEffect;
/// use stormchor_example_scenario::{INTERRUPTED, InterruptedBackupRejected};
///
/// let check = InterruptedBackupRejected { outcome: INTERRUPTED };
/// let produce = check.clone().into_slot(stormchor::kit::Slot::new("rejected"));
/// assert_eq!(produce.effect, check);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct InterruptedBackupRejected {
    /// How the backup ended ([`BackgroundBackup`]'s output).
    pub outcome: Slot<BackupOutcome>,
}

/// The name of the check [`InterruptedBackupRejected`] records.
pub const REJECTED_CHECK: &str = "pg_verifybackup rejects the interrupted backup";

impl DbEffect for InterruptedBackupRejected {
    type Output = bool;

    async fn run(&self, node: &Node) -> Result<bool, EffectFailure> {
        let outcome = node.value(self.outcome)?;
        let binaries = PgBinaries::locate().map_err(|e| EffectFailure::permanent(e.to_string()))?;
        let verified = binaries
            .run_client(
                "pg_verifybackup",
                &[outcome.path.to_string_lossy().into_owned()],
            )
            .await;
        let (passed, summary, evidence) = match (&outcome.error, verified) {
            (None, _) => (
                false,
                "pg_basebackup completed: the kill did not land while it streamed".to_owned(),
                Vec::new(),
            ),
            (Some(_), Ok(text)) => (
                false,
                "pg_verifybackup accepted a backup whose pg_basebackup failed".to_owned(),
                vec![text.trim().to_owned()],
            ),
            (Some(backup_error), Err(verify_error)) => (
                true,
                "pg_basebackup failed when the primary was killed, and pg_verifybackup rejects what it wrote".to_owned(),
                vec![
                    format!("pg_basebackup: {backup_error}"),
                    format!("pg_verifybackup: {verify_error}"),
                ],
            ),
        };
        node.journal()
            .check(REJECTED_CHECK, passed, summary, evidence);
        Ok(passed)
    }
}

/// Every kit effect, and the author's own.
pub fn kit() -> Result<Kit<Role>, RegistryError> {
    Kit::new()?.with::<InterruptedBackupRejected>()
}

/// The choreography for these options: the workers write for the run's duration
/// while the backup is started and interrupted, and for a quarter of it (at least
/// 200 ms) after the second backup.
pub fn program(options: &ScenarioOptions) -> Program<Role, Carry> {
    crash_during_backup(
        options.workers.max(1),
        options.duration,
        (options.duration / 4).max(Duration::from_millis(200)),
        THROTTLE_KB,
    )
}

/// The scenario.
pub fn scenario() -> KitScenario<Role> {
    KitScenario::new(
        NAME,
        "the primary is SIGKILLed while a base backup streams: pg_verifybackup rejects the interrupted backup; a backup taken after the restart restores to a recorded point with equal checksums; no acknowledged ledger transaction is lost",
        program,
    )
    .with_kit(kit)
    .with_faults(&[Fault::CorruptRestoredTable, Fault::SkipWalReplay])
    .with_defaults(Defaults {
        controls_processes: true,
        touches_user_tables: false,
        schema_file: false,
        workers: 2,
        rounds: 1,
        duration: Duration::from_secs(10),
    })
}

/// Registers the scenario in `registry` (fails when the name is taken).
pub fn register(registry: &mut ScenarioRegistry) -> Result<(), ScenarioError> {
    registry.register(scenario())?;
    Ok(())
}
