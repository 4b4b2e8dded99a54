//! `stormchor run NAME`: the settings resolved, the scenario or workload checked and
//! made before anything starts (any problem is a usage error), then run under the
//! signal watch.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use stormchor::scenarios::{self, Scenario, ScenarioRegistry};

use super::args::RunArgs;
use super::catalog::known_workload;
use super::exit::{CliError, Verdict};
use super::output::check_output_path;
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
            scenario_flags(&registry, scenario, args, settings.target.value.is_some())?;
            let options = scenario_options(&settings, scenario, args);
            registry
                .check(name, &options)
                .map_err(|e| CliError::usage(e.to_string()))?;
            Plan::Scenario(options)
        }
        Err(_) => {
            known_workload(&registry, name).map_err(CliError::Usage)?;
            workload_flags(name, args)?;
            Plan::Workload(
                PreparedWorkload::new(&settings, name)
                    .and_then(|prepared| prepared.pipelined(args.pipeline))
                    .map_err(CliError::Usage)?,
            )
        }
    };
    check_output_path("--json", settings.json.value.as_deref()).map_err(CliError::Usage)?;
    check_output_path("--html", settings.html.value.as_deref()).map_err(CliError::Usage)?;
    if let (Some(json), Some(html)) = (&settings.json.value, &settings.html.value) {
        // The files need not exist yet: compare their directories, resolved.
        let resolved = |path: &std::path::Path| {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => std::path::Path::new("."),
            };
            dir.canonicalize()
                .ok()
                .zip(path.file_name())
                .map(|(dir, name)| dir.join(name))
        };
        if json == html || resolved(json).is_some_and(|j| Some(j) == resolved(html)) {
            return Err(CliError::usage(format!(
                "--json and --html are both {}: give each report a file of its own",
                json.display()
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the async runtime: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    signals::watch(&runtime, stop.clone());
    let outcome = match plan {
        Plan::Scenario(options) => runtime.block_on(run_scenario(
            &settings,
            &registry,
            name,
            options,
            args.processes,
        )),
        Plan::Workload(prepared) => runtime.block_on(run_workload(&settings, prepared, &stop)),
    };
    drop(runtime);
    outcome.map(Verdict::from).map_err(CliError::Run)
}

/// The flags given that scenario `scenario` does not take: usage errors.
fn scenario_flags(
    registry: &ScenarioRegistry,
    scenario: &dyn Scenario,
    args: &RunArgs,
    has_target: bool,
) -> Result<(), CliError> {
    let name = scenario.name();
    let defaults = scenario.defaults();
    let refuse = |problem: String| Err(CliError::usage(format!("{name}: {problem}")));
    if args.pipeline {
        return refuse("--pipeline applies to workloads (tpcb, read-only)".to_owned());
    }
    if args.rate.is_some() {
        return refuse(
            "--rate applies to workloads (an open loop); a scenario's load is not paced".to_owned(),
        );
    }
    if args.scale.is_some() {
        return refuse("--scale applies to the pgbench workloads (tpcb, read-only)".to_owned());
    }
    if args.rounds.is_some() && defaults.rounds == 0 {
        let with_rounds: Vec<&str> = registry
            .iter()
            .filter(|s| s.defaults().rounds > 0)
            .map(|s| s.name())
            .collect();
        return refuse(format!(
            "it has no rounds; --rounds applies to {}",
            with_rounds.join(", ")
        ));
    }
    if args.workers.is_some() && defaults.workers == 0 {
        return refuse("it has no workers; --workers does not apply".to_owned());
    }
    if args.duration.is_some() && defaults.duration.is_zero() {
        return refuse("it has no load phase; --duration does not apply".to_owned());
    }
    if args.on_user_tables && !defaults.touches_user_tables {
        return refuse(
            "it does not work on a server's existing tables; --on-user-tables does not apply"
                .to_owned(),
        );
    }
    if args.on_user_tables && !has_target {
        return refuse("--on-user-tables applies with --target only".to_owned());
    }
    if args.amcheck_each_round && name != "crash-recovery" {
        return refuse("--amcheck-each-round applies to crash-recovery".to_owned());
    }
    if args.discover_schemas.is_some()
        && !matches!(
            name,
            "existing-database" | "stress-check" | "backup-restore"
        )
    {
        return refuse(
            "it discovers no schema; --discover-schemas applies to existing-database, \
             stress-check and backup-restore"
                .to_owned(),
        );
    }
    Ok(())
}

/// The flags given that a workload does not take: usage errors.
fn workload_flags(name: &str, args: &RunArgs) -> Result<(), CliError> {
    let refuse = |flag: &str, what: &str| {
        Err(CliError::usage(format!(
            "{flag} applies to {what}; `{name}` is a workload (see `stormchor list`)"
        )))
    };
    if args.inject.is_some() {
        return refuse("--inject", "scenarios");
    }
    if args.rounds.is_some() {
        return refuse("--rounds", "scenarios with rounds (crash-recovery, pitr)");
    }
    if args.schema.is_some() {
        return refuse("--schema", "the existing-database scenario");
    }
    if args.amcheck_each_round {
        return refuse("--amcheck-each-round", "the crash-recovery scenario");
    }
    if args.processes {
        return refuse("--processes", "scenarios");
    }
    if args.discover_schemas.is_some() {
        return refuse("--discover-schemas", "scenarios that discover a schema");
    }
    if args.on_user_tables {
        return refuse(
            "--on-user-tables",
            "the stress scenarios (a workload on a --target works in a schema of its own)",
        );
    }
    if args.scale.is_some() && !matches!(name, "tpcb" | "read-only") {
        return Err(CliError::usage(format!(
            "--scale applies to the pgbench workloads (tpcb, read-only), not to `{name}`"
        )));
    }
    Ok(())
}
