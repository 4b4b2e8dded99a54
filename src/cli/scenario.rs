//! `run SCENARIO`: a flagship scenario's options from the settings and its defaults,
//! its run, its printed report and its JSON and HTML reports.

use std::time::Duration;

use stormchor::report::render_scenario_html;
use stormchor::scenarios::{Scenario, ScenarioOptions, ScenarioRegistry};

use super::args::RunArgs;
use super::config::{Settings, Source};
use super::output::{write_html, write_json};
use super::signals::mark_interrupted;

/// The options of a scenario from the settings and its defaults.
pub fn scenario_options(
    settings: &Settings,
    scenario: &dyn Scenario,
    args: &RunArgs,
) -> ScenarioOptions {
    let defaults = scenario.defaults();
    let workers = match settings.workers.source {
        Source::Default => defaults.workers.max(1),
        _ => settings.workers.value,
    };
    let duration = match settings.duration.source {
        Source::Default => defaults.duration,
        _ => Duration::from_secs(settings.duration.value.max(1)),
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
    }
}

/// Runs a scenario, prints its report and writes the JSON/HTML reports; whether it
/// passed.
pub async fn run_scenario(
    settings: &Settings,
    registry: &ScenarioRegistry,
    name: &str,
    options: ScenarioOptions,
) -> Result<bool, String> {
    println!(
        "Running the {name} scenario: {} workers, {} s load phases, {} rounds, seed {}{}.\n",
        options.workers,
        options.duration.as_secs(),
        options.rounds,
        options.seed,
        options
            .fault
            .map_or(String::new(), |f| format!(", injecting {}", f.name()))
    );
    let report = registry
        .run(name, options)
        .await
        .map_err(|e| e.to_string())?;
    report.print();
    let mut json = report.to_json();
    mark_interrupted(&mut json);
    write_json(settings, &json)?;
    if let Some(path) = &settings.html.value {
        write_html(path, &render_scenario_html(&json))?;
    }
    Ok(report.success)
}
