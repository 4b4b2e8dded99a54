//! `crash-recovery`: workers commit ledger transactions (each row of each transaction
//! known) while the primary's node SIGKILLs its server at seeded moments and starts
//! it again; then every acknowledged transaction must be whole, none half there, and
//! `pg_amcheck` must find no corruption.
//!
//! The cluster has data checksums on (a check of the report says so), so a page
//! damaged behind the server's back cannot be read silently. With
//! [`ScenarioOptions::amcheck_each_round`] the primary's node runs `pg_amcheck` after
//! every crash round too (a check per round, `... after crash N`), and an injected
//! `corrupt-ledger-index` damages the index after every round, where the round's check
//! must catch it.

use std::time::Duration;

use stormchor_kit::effects::{
    Amcheck, AmcheckAfterCrash, CheckValue, Crash, CreateLedger, FaultPoint, Phase, Query,
    StartServer, VerifyLedger, Wanted, WriteLedger,
};
use stormchor_kit::slots::{LEDGER, PRIMARY};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program, Slot};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

/// What `SHOW data_checksums` says on the primary.
const DATA_CHECKSUMS: Slot<String> = Slot::new("data_checksums on the primary");

choreography! {
    /// Rounds of writing with a crash in each, then the "nothing lost" check;
    /// `after_each_crash` runs at the primary after each round's crash.
    pub fn crash_recovery(
        workers: u16,
        rounds: u64,
        window: Duration,
        after_each_crash: Program<DbRole, Carry>,
    ) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Worker[workers];
        ext Phase("setup");
        ext StartServer::throwaway().with_data_checksums() => PRIMARY @ Primary;
        ext Query::new(PRIMARY, "SHOW data_checksums") => DATA_CHECKSUMS @ Primary;
        ext CheckValue {
            name: "the cluster has data checksums on",
            found: DATA_CHECKSUMS,
            expected: Wanted::Text("on"),
        } @ Primary;
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
                call after_each_crash.clone();
            }
        }
        ext Phase("verify") @ Coordinator, Primary;
        ext FaultPoint { fault: Fault::CorruptLedgerIndex, on: PRIMARY, ledgers: LEDGER } @ Primary;
        ext FaultPoint { fault: Fault::DeleteAcknowledgedRow, on: PRIMARY, ledgers: LEDGER } @ Coordinator;
        ext VerifyLedger { on: PRIMARY, ledgers: LEDGER } @ Coordinator;
        ext Amcheck { on: PRIMARY } @ Coordinator;
    }

    /// What the primary's node does after each crash round when the run checks every
    /// round: the injected index damage (if any), then `pg_amcheck`.
    pub fn amcheck_after_each_crash() -> Program<DbRole, Carry> {
        roles Primary;
        ext FaultPoint { fault: Fault::CorruptLedgerIndex, on: PRIMARY, ledgers: LEDGER } @ Primary;
        ext AmcheckAfterCrash { on: PRIMARY } @ Primary;
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, Carry> {
    let after_each_crash = if options.amcheck_each_round {
        amcheck_after_each_crash()
    } else {
        Program::new()
    };
    crash_recovery(
        workers(options),
        u64::from(options.rounds.max(1)),
        options.duration,
        after_each_crash,
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
        schema_file: false,
        workers: 2,
        rounds: 10,
        duration: Duration::from_secs(10),
    })
}
