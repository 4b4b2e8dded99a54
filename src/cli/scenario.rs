//! `run SCENARIO`: a flagship scenario's options from the settings and its defaults,
//! its run, its printed report and its JSON and HTML reports.

use std::time::Duration;

use stormchor::report::render_scenario_html;
use stormchor::scenarios::{Scenario, ScenarioOptions, ScenarioRegistry};

use super::args::RunArgs;
use super::config::{Settings, Source};
use super::output::{write_html, write_json};
use super::signals::interruption;

/// The options of a scenario from the settings and its defaults.
pub fn scenario_options(
    settings: &Settings,
    scenario: &dyn Scenario,
    args: &RunArgs,
) -> ScenarioOptions {
    let defaults = scenario.defaults();
    // A scenario's own defaults hold unless a source gave a value (the ranges are
    // checked when the settings are resolved).
    let workers = match settings.workers.source {
        Source::Default => defaults.workers.max(1),
        _ => settings.workers.value,
    };
    let duration = match settings.duration.source {
        Source::Default => defaults.duration,
        _ => Duration::from_secs(settings.duration.value),
    };
    ScenarioOptions {
        workers,
        duration,
        rounds: settings.rounds.value.unwrap_or(defaults.rounds),
        seed: settings.seed.value,
        target: settings.target.value.clone(),
        schema_file: args.schema.clone(),
        fault: args.inject,
        started: std::time::SystemTime::now(),
        touch_user_tables: args.on_user_tables,
        amcheck_each_round: args.amcheck_each_round,
        discover_schemas: args.discover_schemas.clone(),
    }
}

/// Runs a scenario, prints its report and writes the JSON/HTML reports; whether it
/// passed.
pub async fn run_scenario(
    settings: &Settings,
    registry: &ScenarioRegistry,
    name: &str,
    options: ScenarioOptions,
    processes: bool,
) -> Result<bool, String> {
    let defaults = registry.get(name).map_err(|e| e.to_string())?.defaults();
    // The header names what the scenario has: workers, load phases, rounds.
    let mut shape = Vec::new();
    if defaults.workers > 0 {
        shape.push(format!("{} workers", options.workers));
    }
    if !defaults.duration.is_zero() {
        shape.push(format!("{} s load phases", options.duration.as_secs()));
    }
    if defaults.rounds > 0 {
        shape.push(format!("{} rounds", options.rounds));
    }
    shape.push(format!("seed {}", options.seed));
    println!(
        "Running the {name} scenario: {}{}.\n",
        shape.join(", "),
        options
            .fault
            .map_or(String::new(), |f| format!(", injecting {}", f.name()))
    );
    if options.touch_user_tables {
        let schemas = match &options.discover_schemas {
            None => "public".to_owned(),
            Some(stormchor::runtime::postgres::Schemas::AllUser) => {
                "every schema but the system's and other runs'".to_owned()
            }
            Some(stormchor::runtime::postgres::Schemas::Named(names)) => names.join(", "),
        };
        eprintln!(
            "Warning: --on-user-tables: the stress mix changes and drops tables of the target's \
             schema {schemas}, and the tables it makes (w<k>_...) stay there. Stop now (Ctrl-C) \
             if that is not what you want."
        );
    }
    let mut report = if processes {
        let scenario = registry.get(name).map_err(|e| e.to_string())?;
        let mut report = super::processes::launch(scenario, &options).await?;
        if report.diagram_svg.is_empty() {
            report.diagram_svg = scenario.svg(&options);
        }
        report.fault = options.fault.map(|f| f.name().to_owned());
        report
    } else {
        registry
            .run(name, options)
            .await
            .map_err(|e| e.to_string())?
    };
    report.print();
    report.interrupted = interruption();
    write_json(settings, &report.versioned()).await?;
    if let Some(path) = &settings.html.value {
        write_html(path, &render_scenario_html(&report)).await?;
    }
    Ok(report.success)
}
