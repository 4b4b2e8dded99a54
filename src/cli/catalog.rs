//! `list` and `describe`: what scenarios and workloads there are, and what each does.

use stormchor::scenarios::{self, ScenarioRegistry};
use stormchor::workloads::WorkloadRegistry;

use super::args::RunArgs;
use super::config::Settings;
use super::scenario::scenario_options;
use super::workload::{PreparedWorkload, is_workload_file};

/// `stormchor list`.
pub fn list() {
    println!("Scenarios:");
    for scenario in scenarios::registry().iter() {
        println!("  {:<18} {}", scenario.name(), scenario.description());
    }
    println!("\nWorkloads:");
    let registry = WorkloadRegistry::with_builtins();
    for name in registry.names() {
        if let Ok(workload) = registry.create(&name) {
            println!("  {name:<12} {}", workload.info().description);
        }
    }
}

/// `stormchor describe NAME`: a scenario's diagram, control frames and local
/// programs, or a workload's operations and weights.
pub fn describe(
    name: &str,
    settings: &Settings,
    args: &RunArgs,
    svg: Option<&std::path::Path>,
) -> Result<(), String> {
    let registry = scenarios::registry();
    if let Ok(scenario) = registry.get(name) {
        let options = scenario_options(settings, scenario, args);
        if let Some(path) = svg {
            std::fs::write(path, scenario.svg(&options))
                .map_err(|e| format!("--svg {}: cannot write it: {e}", path.display()))?;
        }
        println!("{name}: {}\n", scenario.description());
        println!("```mermaid\n{}```\n", scenario.diagram(&options));
        let frames = scenario
            .control_frames(&options)
            .map_err(|e| e.to_string())?;
        println!("control frames: {frames} (effect order, in all projections)\n");
        for local in scenario
            .local_programs(&options)
            .map_err(|e| e.to_string())?
        {
            println!("{local}");
        }
        let faults: Vec<&str> = scenario.faults().iter().map(|f| f.name()).collect();
        if !faults.is_empty() {
            println!("\nfaults it can inject (--inject): {}", faults.join(", "));
        }
        return Ok(());
    }
    // A workload, built in or a workload file, configured as `run` would configure it
    // (the config file's sections and weights included).
    known_workload(&registry, name)?;
    let info = PreparedWorkload::new(settings, name)?.info();
    if svg.is_some() {
        return Err(format!(
            "--svg draws a scenario's choreography; `{name}` is a workload"
        ));
    }
    println!(
        "{} (version {}): {}\n\noperation weights:",
        info.name, info.version, info.description
    );
    for operation in info.operations {
        println!("  {:<16} {}", operation.name, operation.weight);
    }
    Ok(())
}

/// Whether `name` is a workload (or a workload file); if not, an error that lists the
/// scenarios and workloads, with the closest name.
pub fn known_workload(scenarios: &ScenarioRegistry, name: &str) -> Result<(), String> {
    let workloads = WorkloadRegistry::with_builtins().names();
    if is_workload_file(name) || workloads.iter().any(|w| w == name) {
        return Ok(());
    }
    let scenario_names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    let mut all: Vec<&str> = scenario_names.clone();
    all.extend(workloads.iter().map(String::as_str));
    let hint = stormchor::kit::closest(name, &all)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    Err(format!(
        "no scenario or workload named `{name}`{hint}; the scenarios are {}; the workloads are {}",
        scenario_names.join(", "),
        workloads.join(", ")
    ))
}
