//! `stormchor run NAME`: the settings resolved, the scenario or workload checked and
//! made before anything starts (any problem is a usage error), then run under the
//! signal watch.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use stormchor::scenarios;

use super::args::RunArgs;
use super::catalog::known_workload;
use super::exit::{CliError, Verdict};
use super::scenario::{run_scenario, scenario_options};
use super::signals;
use super::workload::{PreparedWorkload, run_workload};

/// Runs scenario or workload `name` with `args`.
pub fn run(name: &str, args: &RunArgs) -> Result<Verdict, CliError> {
    let settings = args.settings().map_err(CliError::Usage)?;
    if args.show_config {
        println!("{}", settings.describe());
        return Ok(Verdict::Passed);
    }
    // A scenario's options are checked, and a workload made and configured, before
    // anything starts: every problem found here is a usage error.
    let registry = scenarios::registry();
    enum Plan {
        Scenario(scenarios::ScenarioOptions),
        Workload(PreparedWorkload),
    }
    let plan = match registry.get(name) {
        Ok(scenario) => {
            let options = scenario_options(&settings, scenario, args);
            registry
                .check(name, &options)
                .map_err(|e| CliError::usage(e.to_string()))?;
            Plan::Scenario(options)
        }
        Err(_) => {
            known_workload(&registry, name).map_err(CliError::Usage)?;
            if args.inject.is_some() {
                return Err(CliError::usage(format!(
                    "--inject applies to scenarios; `{name}` is not one (see `stormchor list`)"
                )));
            }
            Plan::Workload(PreparedWorkload::new(&settings, name).map_err(CliError::Usage)?)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the async runtime: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    signals::watch(&runtime, stop.clone());
    let outcome = match plan {
        Plan::Scenario(options) => {
            runtime.block_on(run_scenario(&settings, &registry, name, options))
        }
        Plan::Workload(prepared) => runtime.block_on(run_workload(&settings, prepared, &stop)),
    };
    drop(runtime);
    outcome.map(Verdict::from).map_err(CliError::Run)
}
