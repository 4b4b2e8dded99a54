//! `stormchor run NAME`: the settings resolved, the scenario or workload checked and
//! made before anything starts, then run under the signal watch; its exit status.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use stormchor::scenarios;

use super::args::RunArgs;
use super::catalog::known_workload;
use super::scenario::{run_scenario, scenario_options};
use super::signals::{self, signal_name};
use super::workload::{PreparedWorkload, run_workload};

fn fail(error: String, code: u8) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(code)
}

/// Runs scenario or workload `name` with `args`.
pub fn run(name: &str, args: &RunArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(error) => return fail(error, 2),
    };
    if args.show_config {
        println!("{}", settings.describe());
        return ExitCode::SUCCESS;
    }
    // A scenario's options are checked before anything starts: a fault it cannot
    // inject is a usage error that lists the ones it can.
    let registry = scenarios::registry();
    let options = match registry.get(name) {
        Ok(scenario) => {
            let options = scenario_options(&settings, scenario, args);
            if let Err(error) = registry.check(name, &options) {
                return fail(error.to_string(), 2);
            }
            Some(options)
        }
        Err(_) if args.inject.is_some() => {
            return fail(
                format!(
                    "--inject applies to scenarios; `{name}` is not one (see `stormchor list`)"
                ),
                2,
            );
        }
        Err(_) => {
            if let Err(error) = known_workload(&registry, name) {
                return fail(error, 2);
            }
            None
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the async runtime: {error}"), 1),
    };
    let stop = Arc::new(AtomicBool::new(false));
    signals::watch(&runtime, stop.clone());
    let outcome = match options {
        Some(options) => runtime.block_on(run_scenario(&settings, &registry, name, options)),
        None => match PreparedWorkload::new(&settings, name) {
            Ok(prepared) => runtime.block_on(run_workload(&settings, prepared, &stop)),
            Err(error) => Err(error),
        },
    };
    drop(runtime);
    if let Some(signalled) = signals::signalled() {
        if let Err(error) = &outcome {
            eprintln!("error: {error}");
        }
        eprintln!("Interrupted by {}.", signal_name(signalled));
        return ExitCode::from(u8::try_from(128 + signalled).unwrap_or(u8::MAX));
    }
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => fail(error, 1),
    }
}
