//! `stress-check`: workers run the weighted random DDL/DML mix, each on its own
//! share of the schema, and each one's catalog must match the database afterwards.

use std::time::Duration;

use stormchor_kit::effects::{
    Discover, FaultPoint, Phase, StartServer, StressLoad, ValidateCatalog,
};
use stormchor_kit::slots::{ACTIONS, LEDGER, PRIMARY};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

choreography! {
    /// Stress, then validate every catalog.
    pub fn stress_check(workers: u16, load: Duration) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Worker[workers];
        ext StartServer::target_or_throwaway() => PRIMARY @ Primary;
        Primary -> Worker: PRIMARY.carry();
        ext Discover { on: PRIMARY } @ Worker;
        ext Phase("load") @ Worker;
        ext StressLoad { on: PRIMARY, duration: load } => ACTIONS @ Worker;
        ext Phase("validate") @ Worker;
        ext FaultPoint { fault: Fault::DropTableBehindCatalog, on: PRIMARY, ledgers: LEDGER } @ Worker[0];
        ext ValidateCatalog { on: PRIMARY } @ Worker;
        Worker -> Coordinator: ACTIONS.carry();
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, Carry> {
    stress_check(workers(options), options.duration)
}

/// The scenario.
pub fn scenario() -> KitScenario<DbRole> {
    KitScenario::new(
        "stress-check",
        "workers run the weighted random DDL/DML mix on their shares; each catalog is validated against the database",
        program,
    )
    .with_faults(&[Fault::DropTableBehindCatalog])
    .with_defaults(Defaults {
        touches_user_tables: true,
        rounds: 0,
        ..Defaults::default()
    })
}
