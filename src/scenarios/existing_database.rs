//! `existing-database`: the test starts from a schema it did not create (a SQL file
//! loaded into the throwaway cluster first, or the schema of your own server with
//! `--target`), each worker discovers its share of it (groups of tables linked by
//! foreign keys or partitioning), runs the stress mix on it, and checks that its
//! catalog still matches the live schema exactly.

use std::time::Duration;

use stormchor_kit::effects::schema::SqlSource;
use stormchor_kit::effects::{
    Discover, FaultPoint, Phase, RunSql, StartServer, StressLoad, ValidateCatalog,
};
use stormchor_kit::slots::{ACTIONS, LEDGER, PRIMARY};
use stormchor_kit::{Carry, DbEffect, Defaults, Fault, KitScenario, Program};
use stormchor_macros::choreography;

use super::{DbRole, ScenarioOptions, workers};

/// The schema loaded when no file is given: tables, keys, indexes, a partitioned table.
pub const BUILTIN_SCHEMA: &str = include_str!("existing_schema.sql");

choreography! {
    /// Load the schema, discover, stress, validate.
    pub fn existing_database(workers: u16, load: Duration) -> Program<DbRole, Carry> {
        roles Coordinator, Primary, Worker[workers];
        ext Phase("setup") @ Primary;
        ext StartServer::target_or_throwaway() => PRIMARY @ Primary;
        ext RunSql { on: PRIMARY, sql: SqlSource::SchemaOption(BUILTIN_SCHEMA) } @ Primary;
        Primary -> Worker: PRIMARY.carry();
        ext Phase("discover") @ Worker;
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
    existing_database(workers(options), options.duration)
}

/// The scenario.
pub fn scenario() -> KitScenario<DbRole> {
    KitScenario::new(
        "existing-database",
        "a schema the test did not create (a SQL file, or your server) is discovered, stressed with the action mix, and validated",
        program,
    )
    .with_faults(&[Fault::DropTableBehindCatalog])
    .with_defaults(Defaults {
        touches_user_tables: true,
        rounds: 0,
        schema_file: true,
        ..Defaults::default()
    })
}
