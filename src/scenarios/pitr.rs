//! `pitr`: WAL archiving on; the backup node takes a base backup first; then, round
//! after round, the workers run the stress mix and the coordinator records a point
//! (WAL position and checksums) with the load stopped. Afterwards the backup node
//! restores the one backup to each point in turn, replaying the archived WAL that far,
//! and each restored cluster's checksums must equal the ones recorded there; later
//! WAL exists for every point but the last, so recovery must stop exactly there.

use std::time::Duration;

use stormchor_kit::effects::{
    CompareChecksums, Discover, Goal, Phase, RecordPoint, Restore, RestoreTo, StartServer,
    StressLoad, TableChecksums, TakeBackup, VerifyBackup,
};
use stormchor_kit::slots::{ACTIONS, CHECKSUMS, POINT, PRIMARY, RESTORED};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

choreography! {
    /// Record points under load, then restore to each.
    pub fn pitr(workers: u16, points: u64, load: Duration) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Backup, Worker[workers];
        ext Phase("setup");
        ext StartServer::throwaway().archiving() => PRIMARY @ Primary;
        Primary -> Backup: PRIMARY.carry();
        Primary -> Coordinator: PRIMARY.carry();
        Primary -> Worker: PRIMARY.carry();
        ext Phase("base backup") @ Backup;
        ext TakeBackup { of: PRIMARY } @ Backup;
        ext VerifyBackup { tolerate: false } @ Backup;
        ext Discover { on: PRIMARY } @ Worker;
        loop points {
            ext Phase("load") @ Coordinator, Worker;
            ext StressLoad { on: PRIMARY, duration: load } => ACTIONS @ Worker;
            Worker -> Coordinator: ACTIONS.carry();
            ext Phase("record point") @ Coordinator;
            ext RecordPoint { on: PRIMARY } => POINT @ Coordinator;
            Coordinator -> Backup: POINT.carry();
        }
        ext Phase("restore each point") @ Coordinator, Backup;
        loop points {
            ext Restore { from: PRIMARY, to: RestoreTo::Goal(Goal::AtNextPoint(POINT)), name: "pitr" } => RESTORED @ Backup;
            ext TableChecksums { of: RESTORED } => CHECKSUMS @ Backup;
            Backup -> Coordinator: CHECKSUMS.carry();
            ext CompareChecksums { expected: POINT, found: CHECKSUMS, in_order: true } @ Coordinator;
        }
    }
}

/// The choreography for these options: one point per round.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, Carry> {
    pitr(
        workers(options),
        u64::from(options.rounds.max(1)),
        options.duration,
    )
}

/// The scenario.
pub fn scenario() -> KitScenario<DbRole> {
    KitScenario::new(
        "pitr",
        "WAL archiving on; the coordinator records points with checksums; the backup node restores to each point and the checksums must match",
        program,
    )
    .with_faults(&[Fault::CorruptRestoredTable, Fault::SkipWalReplay])
    .with_defaults(Defaults {
        controls_processes: true,
        touches_user_tables: false,
        schema_file: false,
        workers: 2,
        rounds: 3,
        duration: Duration::from_secs(5),
    })
}
