//! `failover`: the primary waits for a synchronous streaming replica; workers commit
//! ledger transactions on the primary; the coordinator SIGKILLs it at a seeded moment;
//! the replica is promoted; workers move to it and go on; every transaction
//! acknowledged before (and after) the kill must be on the new primary.
//!
//! With synchronous replication an acknowledged commit is on the replica's disk before
//! the client hears of it, which is what makes "nothing acknowledged is lost" a fair
//! demand of a failover. (The replica starts first: a synchronous primary without its
//! standby would make every commit wait.)

use std::time::Duration;

use stormchor_choreography::Program;
use stormchor_macros::choreography;
use stormchor_runtime::postgres::Ledger;

use super::database::{
    Crash, DbMsg, DbRole, FaultPoint, PrepareSchema, PrimarySetup, Promote, StartReplica,
    VerifyLedger, WriteLedger, run_database, workers,
};
use super::journal::Phase;
use super::{Fault, ScenarioError, ScenarioOptions, ScenarioReport};

choreography! {
    /// Load, kill the primary, promote the replica, move the workers, verify.
    pub fn failover(workers: u16, window: Duration) -> Program<DbRole, DbMsg> {
        roles Coordinator, Replica, Worker[workers];
        ext Phase("setup");
        Coordinator -> Replica: DbMsg::Go;
        ext StartReplica @ Replica;
        Replica -> Coordinator: DbMsg::Done;
        ext PrepareSchema @ Coordinator;
        Coordinator -> Worker: DbMsg::Go;
        ext Phase("load and kill") @ Coordinator, Worker;
        par {
            ext WriteLedger { duration: window } @ Worker;
            Worker -> Coordinator: DbMsg::Ledger(Ledger::default());
        } and {
            ext Crash { within: window, restart: false } @ Coordinator;
            Coordinator -> Replica: DbMsg::Go;
            ext Phase("promote") @ Replica;
            ext Promote @ Replica;
            Replica -> Coordinator: DbMsg::Done;
        }
        Coordinator -> Worker: DbMsg::Go;
        ext Phase("load on the new primary") @ Coordinator, Worker;
        ext WriteLedger { duration: window } @ Worker;
        Worker -> Coordinator: DbMsg::Ledger(Ledger::default());
        ext Phase("verify") @ Coordinator;
        ext FaultPoint(Fault::DeleteAcknowledgedRow) @ Coordinator;
        ext VerifyLedger @ Coordinator;
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, DbMsg> {
    failover(workers(options), options.duration)
}

/// Runs the scenario.
pub async fn run(options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    let program = program(&options);
    run_database(
        "failover",
        program,
        options,
        PrimarySetup::Synchronous,
        async |_| Ok(()),
    )
    .await
}
