//! The `main` every scenario example shares: reads a few flags, prints the scenario's
//! diagram, runs it on a throwaway cluster and prints the report.

use std::process::ExitCode;
use std::time::Duration;

use stormchor::scenarios::{ScenarioOptions, registry};

/// Runs scenario `name` with `--workers N --seconds S --rounds R --seed S --inject FAULT`.
pub fn scenario_main(name: &str) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number =
        |flag: &str, default: u64| value(flag).and_then(|v| v.parse().ok()).unwrap_or(default);
    let defaults = ScenarioOptions::short();
    let fault = match value("--inject").map(|f| f.parse()) {
        Some(Ok(fault)) => Some(fault),
        Some(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let options = ScenarioOptions {
        workers: number("--workers", u64::from(defaults.workers)).min(64) as u16,
        duration: Duration::from_secs(number("--seconds", defaults.duration.as_secs())),
        rounds: number("--rounds", u64::from(defaults.rounds)).min(1_000) as u32,
        seed: number("--seed", defaults.seed),
        fault,
        ..defaults
    };
    let registry = registry();
    match registry.check(name, &options) {
        Ok(scenario) => println!("```mermaid\n{}```\n", scenario.diagram(&options)),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(registry.run(name, options)) {
        Ok(report) => {
            report.print();
            if report.success {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
