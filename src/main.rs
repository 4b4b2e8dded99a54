//! The `stormchor` command.
//!
//! With no arguments it starts a throwaway PostgreSQL cluster and runs the
//! `backup-restore` scenario on it in a short configuration (2 workers, 10 s of load
//! under which a base backup is taken, restored to a recorded point and compared
//! table by table), and prints the report.
//!
//! `stormchor run NAME` runs one of the flagship scenarios (`backup-restore`,
//! `crash-recovery`, `pitr`, `failover`, `existing-database`, `isolation`); see
//! `docs/scenarios.md`.
//!
//! `stormchor run stress-check` runs the sample scenario, a choreography between a
//! coordinator and N workers: the coordinator
//! discovers the schema and starts the workers, every worker runs the weighted random
//! DDL/DML mix for a while and reports how many actions it ran, and the coordinator
//! validates that the shared schema catalog matches the database exactly. It prints
//! the scenario's diagram and a report, removes the cluster, and exits non-zero if any
//! role failed or the catalog diverged. `--target` runs it against your own server.
//!
//! `stormchor run tpcb` (or `read-only`) runs a pgbench workload instead, `list` lists
//! scenarios and workloads, `describe NAME` shows one.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::args::{Cli, Command};
use cli::exit::{CliError, Verdict, exit_code};

fn main() -> ExitCode {
    // Clap's own usage errors exit 2 as well.
    let cli = Cli::parse();
    exit_code(match cli.command {
        None => cli::run::run("backup-restore", &cli.run),
        Some(Command::Run { name, args }) => {
            cli::run::run(name.as_deref().unwrap_or("backup-restore"), &args)
        }
        Some(Command::Role { role, args }) => {
            let settings = match args.settings() {
                Ok(settings) => settings,
                Err(error) => return exit_code(Err(CliError::Usage(error))),
            };
            let registry = stormchor::scenarios::registry();
            let scenario = match registry.get(&role.scenario) {
                Ok(scenario) => scenario,
                Err(error) => return exit_code(Err(CliError::Usage(error.to_string()))),
            };
            let options = cli::scenario::scenario_options(&settings, scenario, &args);
            return cli::processes::role(scenario, options, &role);
        }
        Some(Command::List) => {
            cli::catalog::list();
            Ok(Verdict::Passed)
        }
        Some(Command::Describe {
            name,
            svg,
            permutation,
            ..
        }) if cli::isolation::is_spec_file(&name) => {
            cli::isolation::describe_spec(&name, permutation, svg.as_deref())
                .map(|()| Verdict::Passed)
                .map_err(CliError::Usage)
        }
        Some(Command::Describe {
            permutation: Some(_),
            name,
            ..
        }) => Err(CliError::usage(format!(
            "--permutation chooses a permutation of a spec file (FILE.spec); `{name}` is not one"
        ))),
        Some(Command::Describe {
            name, svg, args, ..
        }) => args
            .settings()
            .and_then(|settings| cli::catalog::describe(&name, &settings, &args, svg.as_deref()))
            .map(|()| Verdict::Passed)
            .map_err(CliError::Usage),
        Some(Command::Validate { config }) => cli::validate::validate(&config)
            .map(|()| {
                println!("{} is valid.", config.display());
                Verdict::Passed
            })
            .map_err(CliError::Usage),
        Some(Command::IsolationSuite(args)) => cli::isolation::isolation_suite(args),
    })
}
