//! `crash-recovery`: workers commit ledger transactions and report what was
//! acknowledged; the coordinator SIGKILLs the server at a seeded moment of every round
//! and starts it again; at the end every acknowledged transaction must be whole, none
//! half there, and `pg_amcheck` clean.

use std::time::Duration;

use stormchor_choreography::Program;
use stormchor_macros::choreography;
use stormchor_runtime::postgres::Ledger;

use super::database::{
    Crash, DbMsg, DbRole, FaultPoint, PrepareSchema, PrimarySetup, VerifyLedger, WriteLedger,
    run_database, workers,
};
use super::journal::Phase;
use super::{Fault, ScenarioError, ScenarioOptions, ScenarioReport};

choreography! {
    /// Rounds of writing with a crash in each, then the "nothing lost" check.
    pub fn crash_recovery(workers: u16, rounds: u64, window: Duration) -> Program<DbRole, DbMsg> {
        roles Coordinator, Worker[workers];
        ext Phase("setup");
        ext PrepareSchema @ Coordinator;
        Coordinator -> Worker: DbMsg::Go;
        ext Phase("write and crash");
        loop rounds {
            par {
                ext WriteLedger { duration: window } @ Worker;
                Worker -> Coordinator: DbMsg::Ledger(Ledger::default());
            } and {
                ext Crash { within: window, restart: true } @ Coordinator;
            }
        }
        ext Phase("verify") @ Coordinator;
        ext FaultPoint(Fault::DeleteAcknowledgedRow) @ Coordinator;
        ext FaultPoint(Fault::CorruptLedgerIndex) @ Coordinator;
        ext VerifyLedger @ Coordinator;
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, DbMsg> {
    crash_recovery(
        workers(options),
        u64::from(options.rounds.max(1)),
        options.duration,
    )
}

/// Runs the scenario.
pub async fn run(options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    let program = program(&options);
    run_database(
        "crash-recovery",
        program,
        options,
        PrimarySetup::Controlled,
        async |_| Ok(()),
    )
    .await
}
