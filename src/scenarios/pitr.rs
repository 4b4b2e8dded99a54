//! `pitr`: the primary archives its WAL; the backup node takes a base backup first;
//! then, round after round, workers run the stress mix and the coordinator, with the
//! load stopped, records a point (WAL position and checksums of every table). At the
//! end the backup node restores a copy of the backup to each point in turn, replaying
//! the archive up to it, and the checksums must be the ones recorded there.

use std::time::Duration;

use stormchor_choreography::Program;
use stormchor_macros::choreography;
use stormchor_runtime::postgres::Checksums;

use super::database::{
    CompareChecksums, DbMsg, DbRole, PrepareSchema, PrimarySetup, RecordPoint, Restore, Side,
    StressLoad, TakeBackup, VerifyBackup, run_database, workers,
};
use super::journal::Phase;
use super::{ScenarioError, ScenarioOptions, ScenarioReport};

choreography! {
    /// Record points under load, then restore to each.
    pub fn pitr(workers: u16, points: u64, load: Duration) -> Program<DbRole, DbMsg> {
        roles Coordinator, Backup, Worker[workers];
        ext Phase("setup");
        ext PrepareSchema @ Coordinator;
        Coordinator -> Backup: DbMsg::Go;
        ext Phase("base backup") @ Backup;
        ext TakeBackup @ Backup;
        ext VerifyBackup @ Backup;
        Backup -> Coordinator: DbMsg::Done;
        loop points {
            ext Phase("load") @ Coordinator, Worker;
            Coordinator -> Worker: DbMsg::Go;
            ext StressLoad { side: Side::Primary, duration: load } @ Worker;
            Worker -> Coordinator: DbMsg::Actions(0);
            ext Phase("record point") @ Coordinator;
            ext RecordPoint @ Coordinator;
        }
        ext Phase("restore each point") @ Coordinator, Backup;
        loop points {
            Coordinator -> Backup: DbMsg::Point(0, 0);
            ext Restore { keep: false } @ Backup;
            Backup -> Coordinator: DbMsg::Checksums(0, Checksums::new());
            ext CompareChecksums @ Coordinator;
        }
    }
}

/// The choreography for these options: one point per round.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, DbMsg> {
    pitr(
        workers(options),
        u64::from(options.rounds.max(1)),
        options.duration,
    )
}

/// Runs the scenario.
pub async fn run(options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    let program = program(&options);
    run_database(
        "pitr",
        program,
        options,
        PrimarySetup::Archiving,
        async |_| Ok(()),
    )
    .await
}
