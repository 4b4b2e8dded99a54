//! `failover`: the primary waits for a synchronous streaming replica; workers commit
//! ledger transactions on the primary; its node SIGKILLs it at a seeded moment; the
//! replica is promoted and sends its address on as the new primary; workers move to
//! it and go on; every transaction acknowledged before (and after) the kill must be
//! on the new primary.
//!
//! With synchronous replication an acknowledged commit is on the replica's disk before
//! the client hears of it, which is what makes "nothing acknowledged is lost" a fair
//! demand of a failover. (The replica starts first: a synchronous primary without its
//! standby would make every commit wait.) The primary is created with data checksums
//! on; the replica, a base backup of it, has them too.

use std::time::Duration;

use stormchor_kit::effects::{
    Amcheck, Crash, CreateLedger, FaultPoint, Phase, Promote, StartReplica, StartServer,
    VerifyLedger, WriteLedger,
};
use stormchor_kit::slots::{LEDGER, PRIMARY, REPLICA};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

choreography! {
    /// Load, kill the primary, promote the replica, move the workers, verify.
    pub fn failover(workers: u16, window: Duration) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Replica, Worker[workers];
        ext Phase("setup");
        ext StartServer::throwaway().synchronous().with_data_checksums() => PRIMARY @ Primary;
        Primary -> Replica: PRIMARY.carry();
        ext StartReplica { of: PRIMARY } => REPLICA @ Replica;
        Replica -> Primary: REPLICA.carry();
        ext CreateLedger { on: PRIMARY } @ Primary;
        Primary -> Worker: PRIMARY.carry();
        ext Phase("load and kill") @ Primary, Worker;
        par {
            ext WriteLedger { on: PRIMARY, duration: window } => LEDGER @ Worker;
            Worker -> Coordinator: LEDGER.carry();
        } and {
            ext Crash { within: window, restart: false } @ Primary;
            ext Phase("promote") @ Replica;
            ext Promote => PRIMARY @ Replica;
        }
        Replica -> Worker: PRIMARY.carry();
        Replica -> Coordinator: PRIMARY.carry();
        ext Phase("load on the new primary") @ Worker;
        ext WriteLedger { on: PRIMARY, duration: window } => LEDGER @ Worker;
        Worker -> Coordinator: LEDGER.carry();
        ext Phase("verify") @ Coordinator;
        ext FaultPoint { fault: Fault::DeleteAcknowledgedRow, on: PRIMARY, ledgers: LEDGER } @ Coordinator;
        ext VerifyLedger { on: PRIMARY, ledgers: LEDGER } @ Coordinator;
        ext Amcheck { on: PRIMARY } @ Coordinator;
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, Carry> {
    failover(workers(options), options.duration)
}

/// The scenario.
pub fn scenario() -> KitScenario<DbRole> {
    KitScenario::new(
        "failover",
        "a synchronous streaming replica; the primary is killed under load; the replica is promoted; workers move to it; every acknowledged write is there",
        program,
    )
    .with_faults(&[Fault::DeleteAcknowledgedRow])
    .with_defaults(Defaults {
        controls_processes: true,
        touches_user_tables: false,
        schema_file: false,
        workers: 2,
        rounds: 0,
        duration: Duration::from_secs(10),
    })
}
