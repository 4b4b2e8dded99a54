//! `backup-restore`: workers run the stress mix while the backup node takes a base
//! backup; with the load stopped, the coordinator records a WAL position and the
//! checksums of every table; the backup node verifies the backup, restores it and
//! replays the archived WAL to exactly that position, and sends the restored
//! cluster's checksums, which must equal the recorded ones. Then the restored schema
//! is discovered, the workers go on on the restored cluster, and its catalog must
//! match it.
//!
//! The point is consistent by construction: nothing writes between the moment its
//! position is read and the moment its checksums are (the load has ended, in one
//! snapshot), and recovery stops at that position.

use std::time::Duration;

use stormchor_choreography::Program;
use stormchor_macros::choreography;
use stormchor_runtime::postgres::Checksums;

use super::database::{
    CompareChecksums, DbMsg, DbRole, Discover, PrepareSchema, PrimarySetup, RecordPoint, Restore,
    Side, StressLoad, TakeBackup, Validate, VerifyBackup, run_database, workers,
};
use super::journal::Phase;
use super::{ScenarioError, ScenarioOptions, ScenarioReport};

choreography! {
    /// Backup under load, restore to a recorded point, compare, go on there.
    pub fn backup_restore(workers: u16, load: Duration, more: Duration) -> Program<DbRole, DbMsg> {
        roles Coordinator, Backup, Worker[workers];
        ext Phase("setup");
        ext PrepareSchema @ Coordinator;
        Coordinator -> Worker: DbMsg::Go;
        ext Phase("load and backup");
        par {
            ext StressLoad { side: Side::Primary, duration: load } @ Worker;
            Worker -> Coordinator: DbMsg::Actions(0);
        } and {
            Coordinator -> Backup: DbMsg::Go;
            ext TakeBackup @ Backup;
            Backup -> Coordinator: DbMsg::Done;
        }
        ext Phase("record point") @ Coordinator;
        ext RecordPoint @ Coordinator;
        Coordinator -> Backup: DbMsg::Point(0, 0);
        ext Phase("verify and restore") @ Backup;
        ext VerifyBackup @ Backup;
        ext Restore { keep: true } @ Backup;
        Backup -> Coordinator: DbMsg::Checksums(0, Checksums::new());
        ext Phase("compare") @ Coordinator;
        ext CompareChecksums @ Coordinator;
        ext Discover { side: Side::Restored } @ Coordinator;
        Coordinator -> Worker: DbMsg::Go;
        ext Phase("load on the restored cluster") @ Coordinator, Worker;
        ext StressLoad { side: Side::Restored, duration: more } @ Worker;
        Worker -> Coordinator: DbMsg::Actions(0);
        ext Phase("validate") @ Coordinator;
        ext Validate { side: Side::Restored } @ Coordinator;
    }
}

/// The choreography for these options: the load on the restored cluster runs half
/// as long as the first.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, DbMsg> {
    backup_restore(workers(options), options.duration, options.duration / 2)
}

/// Runs the scenario.
pub async fn run(options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    let program = program(&options);
    run_database(
        "backup-restore",
        program,
        options,
        PrimarySetup::Archiving,
        async |_| Ok(()),
    )
    .await
}
