//! `backup-restore`: workers run the stress mix while the backup node takes a base
//! backup of the primary, and a while more after it ended; with the load stopped,
//! the coordinator records a WAL
//! position and the checksums of every table; the backup node verifies the backup,
//! restores it, replaying the archived WAL to exactly that position, and sends the
//! restored cluster's checksums, which must equal the recorded ones. Then the workers
//! go on on the restored cluster, and each one's catalog must match it.
//!
//! The point is consistent by construction: nothing writes between the moment its
//! position is read and the moment its checksums are (the load has ended, in one
//! snapshot), and recovery stops at that position.

use std::time::Duration;

use stormchor_kit::effects::{
    CompareChecksums, Discover, Goal, Phase, RecordPoint, Restore, RestoreTo, StartServer,
    StressLoad, TableChecksums, TakeBackup, ValidateCatalog, VerifyBackup,
};
use stormchor_kit::slots::{ACTIONS, CHECKSUMS, POINT, PRIMARY, RESTORED};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

choreography! {
    /// Backup under load, restore to a recorded point, compare, go on there.
    pub fn backup_restore(workers: u16, load: Duration, after: Duration, more: Duration) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Backup, Worker[workers];
        ext Phase("setup");
        ext StartServer::throwaway().archiving() => PRIMARY @ Primary;
        Primary -> Backup: PRIMARY.carry();
        Primary -> Coordinator: PRIMARY.carry();
        Primary -> Worker: PRIMARY.carry();
        ext Discover { on: PRIMARY } @ Worker;
        ext Phase("load and backup") @ Coordinator, Backup, Worker;
        par {
            ext StressLoad { on: PRIMARY, duration: load } => ACTIONS @ Worker;
            Worker -> Coordinator: ACTIONS.carry();
        } and {
            ext TakeBackup { of: PRIMARY } @ Backup;
        }
        // Load after the backup has ended: the point lies beyond the backup's end, so
        // that reaching it takes replaying archived WAL.
        ext Phase("load after the backup") @ Worker;
        ext StressLoad { on: PRIMARY, duration: after } => ACTIONS @ Worker;
        Worker -> Coordinator: ACTIONS.carry();
        ext Phase("record point") @ Coordinator;
        ext RecordPoint { on: PRIMARY } => POINT @ Coordinator;
        Coordinator -> Backup: POINT.carry();
        ext Phase("verify and restore") @ Backup;
        ext VerifyBackup { tolerate: false } @ Backup;
        ext Restore { from: PRIMARY, to: RestoreTo::Goal(Goal::AtPoint(POINT)), name: "restored" } => RESTORED @ Backup;
        ext TableChecksums { of: RESTORED } => CHECKSUMS @ Backup;
        Backup -> Coordinator: CHECKSUMS.carry();
        Backup -> Worker: RESTORED.carry();
        ext Phase("compare") @ Coordinator;
        ext CompareChecksums { expected: POINT, found: CHECKSUMS, in_order: false } @ Coordinator;
        ext Phase("load on the restored cluster") @ Worker;
        ext Discover { on: RESTORED } @ Worker;
        ext StressLoad { on: RESTORED, duration: more } => ACTIONS @ Worker;
        ext Phase("validate") @ Worker;
        ext ValidateCatalog { on: RESTORED } @ Worker;
        Worker -> Coordinator: ACTIONS.carry();
    }
}

/// The choreography for these options: the load after the backup runs a quarter as
/// long as the first (at least 200 ms), the load on the restored cluster half as long.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, Carry> {
    let after = (options.duration / 4).max(Duration::from_millis(200));
    backup_restore(
        workers(options),
        options.duration,
        after,
        options.duration / 2,
    )
}

/// The scenario.
pub fn scenario() -> KitScenario<DbRole> {
    KitScenario::new(
        "backup-restore",
        "a base backup taken under load restores (WAL replayed to a quiesced point) to exactly the primary's checksums; workers go on on the restored cluster",
        program,
    )
    .with_faults(&[Fault::CorruptRestoredTable, Fault::SkipWalReplay])
    .with_defaults(Defaults {
        controls_processes: true,
        touches_user_tables: false,
        schema_file: false,
        workers: 2,
        rounds: 0,
        duration: Duration::from_secs(10),
    })
}
