//! `crash-recovery`: workers commit ledger transactions (each row of each transaction
//! known) while the primary's node SIGKILLs its server at seeded moments and starts
//! it again; then every acknowledged transaction must be whole, none half there, and
//! `pg_amcheck` must find no corruption.

use std::time::Duration;

use stormchor_kit::effects::{
    Amcheck, Crash, CreateLedger, FaultPoint, Phase, StartServer, VerifyLedger, WriteLedger,
};
use stormchor_kit::slots::{LEDGER, PRIMARY};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

choreography! {
    /// Rounds of writing with a crash in each, then the "nothing lost" check.
    pub fn crash_recovery(workers: u16, rounds: u64, window: Duration) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Worker[workers];
        ext Phase("setup");
        ext StartServer::throwaway() => PRIMARY @ Primary;
        ext CreateLedger { on: PRIMARY } @ Primary;
        Primary -> Worker: PRIMARY.carry();
        Primary -> Coordinator: PRIMARY.carry();
        ext Phase("write and crash") @ Primary, Worker;
        loop rounds {
            par {
                ext WriteLedger { on: PRIMARY, duration: window } => LEDGER @ Worker;
                Worker -> Coordinator: LEDGER.carry();
            } and {
                ext Crash { within: window, restart: true } @ Primary;
            }
        }
        ext Phase("verify") @ Coordinator, Primary;
        ext FaultPoint { fault: Fault::CorruptLedgerIndex, on: PRIMARY, ledgers: LEDGER } @ Primary;
        ext FaultPoint { fault: Fault::DeleteAcknowledgedRow, on: PRIMARY, ledgers: LEDGER } @ Coordinator;
        ext VerifyLedger { on: PRIMARY, ledgers: LEDGER } @ Coordinator;
        ext Amcheck { on: PRIMARY } @ Coordinator;
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, Carry> {
    crash_recovery(
        workers(options),
        u64::from(options.rounds.max(1)),
        options.duration,
    )
}

/// The scenario.
pub fn scenario() -> KitScenario<DbRole> {
    KitScenario::new(
        "crash-recovery",
        "workers commit ledger transactions while the server is SIGKILLed at seeded moments; nothing acknowledged is lost, nothing is half there, pg_amcheck is clean",
        program,
    )
    .with_faults(&[Fault::DeleteAcknowledgedRow, Fault::CorruptLedgerIndex])
    .with_defaults(Defaults {
        controls_processes: true,
        touches_user_tables: false,
        workers: 2,
        rounds: 10,
        duration: Duration::from_secs(10),
    })
}
