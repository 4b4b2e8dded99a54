//! `existing-database`: the test starts from a schema it did not create (a SQL file
//! loaded into the throwaway cluster before the choreography starts, or the schema of
//! your own server with `--target`), discovers it, runs the stress mix on it, and
//! checks that the catalog still matches the live schema exactly.

use std::time::Duration;

use stormchor_choreography::Program;
use stormchor_macros::choreography;
use stormchor_runtime::postgres::connect;

use super::database::{
    DbMsg, DbRole, FaultPoint, PrepareSchema, PrimarySetup, Side, StressLoad, Validate,
    run_database, workers,
};
use super::journal::Phase;
use super::{Fault, ScenarioError, ScenarioOptions, ScenarioReport};

/// The schema loaded when no file is given: tables, keys, indexes, a partitioned table.
pub const BUILTIN_SCHEMA: &str = include_str!("existing_schema.sql");

choreography! {
    /// Discover, stress, validate.
    pub fn existing_database(workers: u16, load: Duration) -> Program<DbRole, DbMsg> {
        roles Coordinator, Worker[workers];
        ext Phase("discover") @ Coordinator;
        ext PrepareSchema @ Coordinator;
        Coordinator -> Worker: DbMsg::Go;
        ext Phase("load");
        ext StressLoad { side: Side::Primary, duration: load } @ Worker;
        Worker -> Coordinator: DbMsg::Actions(0);
        ext Phase("validate") @ Coordinator;
        ext FaultPoint(Fault::DropTableBehindCatalog) @ Coordinator;
        ext Validate { side: Side::Primary } @ Coordinator;
    }
}

/// The choreography for these options.
pub fn program(options: &ScenarioOptions) -> Program<DbRole, DbMsg> {
    existing_database(workers(options), options.duration)
}

/// Runs the scenario: loads the schema file (or the built-in one) into a throwaway
/// cluster first; against a target, uses the schema that is there.
pub async fn run(options: ScenarioOptions) -> Result<ScenarioReport, ScenarioError> {
    let program = program(&options);
    let schema = match (&options.target, &options.schema_file) {
        (Some(_), _) => None,
        (None, Some(path)) => {
            Some(
                std::fs::read_to_string(path).map_err(|e| ScenarioError::Setup {
                    scenario: "existing-database".to_owned(),
                    message: format!("cannot read the schema file {}: {e}", path.display()),
                })?,
            )
        }
        (None, None) => Some(BUILTIN_SCHEMA.to_owned()),
    };
    let source = options
        .schema_file
        .as_ref()
        .map_or("the built-in schema".to_owned(), |p| {
            p.display().to_string()
        });
    run_database(
        "existing-database",
        program,
        options,
        PrimarySetup::Plain,
        async move |site| {
            let Some(schema) = schema else { return Ok(()) };
            let client = connect(&site.writers.get())
                .await
                .map_err(|e| e.to_string())?;
            client
                .batch_execute(&schema)
                .await
                .map_err(|e| format!("loading {source}: {e}"))?;
            Ok(())
        },
    )
    .await
}
