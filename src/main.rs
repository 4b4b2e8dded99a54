//! The `stormchor` command.
//!
//! With no arguments it starts a throwaway PostgreSQL cluster and runs the sample
//! scenario, a choreography between a coordinator and N workers: the coordinator
//! discovers the schema and starts the workers, every worker runs the weighted random
//! DDL/DML mix for a while and reports how many actions it ran, and the coordinator
//! validates that the shared schema catalog matches the database exactly. It prints
//! the scenario's diagram and a report, removes the cluster, and exits non-zero if any
//! role failed or the catalog diverged. `--target` runs it against your own server.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use stormchor::prelude::*;
use stormchor::runtime::bridge::{
    DatabaseContext, DatabaseRole, DiscoverSchema, RunStressMix, ValidateCatalog,
    register_database_effects,
};
use stormchor::runtime::postgres::{
    Catalog, ClusterOptions, PgCluster, PgTarget, WorkerReport, remove_clusters_on_ctrl_c,
};
use stormchor::runtime::{
    ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, RunReport, run_all,
};

/// Multi-party PostgreSQL tests written as choreographies.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Run against this server (a libpq connection string) instead of a throwaway cluster.
    #[arg(long, env = "STORMCHOR_TARGET")]
    target: Option<String>,
    /// How many workers run the mix.
    #[arg(long, default_value_t = 2, env = "STORMCHOR_WORKERS")]
    workers: u16,
    /// How long the workers run, in seconds.
    #[arg(long, default_value_t = 10, env = "STORMCHOR_DURATION")]
    duration: u64,
    /// The seed of every random choice (replayable with one worker).
    #[arg(long, default_value_t = 1, env = "STORMCHOR_SEED")]
    seed: u64,
    /// Print the scenario's diagram and every role's local program, and run nothing.
    #[arg(long)]
    describe: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Worker(u16),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    /// Start the workload.
    Start,
    /// How many actions a worker ran.
    Actions(u64),
}

struct Node {
    db: DatabaseContext,
}

impl DatabaseRole for Node {
    fn database(&self) -> &DatabaseContext {
        &self.db
    }
}

impl RoleLogic<Role, Msg> for Node {
    fn message(state: &RoleState<Role, Msg, Self>, _to: Role, template: &Msg) -> Msg {
        match template {
            Msg::Actions(_) => {
                Msg::Actions(state.result::<RunStressMix<Role>, u64>().map_or(0, |n| *n))
            }
            other => other.clone(),
        }
    }
}

fn scenario(workers: u16, duration: Duration) -> Program<Role, Msg> {
    let family = Family::indexed("Worker", workers, Role::Worker);
    let mut load = Program::new();
    for i in 0..workers {
        load = load.ext(RunStressMix {
            role: Role::Worker(i),
            duration,
        });
    }
    Program::new()
        .role(Role::Coordinator)
        .family(&family)
        .ext(DiscoverSchema {
            role: Role::Coordinator,
        })
        .broadcast(Role::Coordinator, &family, Msg::Start)
        .then(load)
        .gather(&family, Role::Coordinator, Msg::Actions(0))
        .ext(ValidateCatalog {
            role: Role::Coordinator,
        })
}

fn print_report(report: &RunReport<Role, Msg, Node>, duration: Duration) {
    println!("\n## Roles\n");
    for (role, outcome) in &report.outcomes {
        match &outcome.result {
            Ok(()) => println!(
                "- {role:?}: completed in {:.1} s",
                outcome.elapsed.as_secs_f64()
            ),
            Err(failure) => println!("- {role:?}: FAILED: {failure}"),
        }
    }
    let reports: Vec<WorkerReport> = report
        .outcomes
        .values()
        .filter_map(|o| o.state.as_ref())
        .flat_map(|s| s.data().db.reports())
        .collect();
    if reports.is_empty() {
        return;
    }
    println!(
        "\n## Actions (all workers, {:.0} s)\n",
        duration.as_secs_f64()
    );
    println!("| action | runs | ok | failed (by SQLSTATE) | p50 ms | p99 ms |");
    println!("|---|---:|---:|---|---:|---:|");
    let mut names: Vec<&String> = reports.iter().flat_map(|r| r.actions.keys()).collect();
    names.sort();
    names.dedup();
    let mut total = 0;
    for name in names {
        let stats: Vec<_> = reports.iter().filter_map(|r| r.actions.get(name)).collect();
        let mut latency = stats[0].latency.clone();
        for other in &stats[1..] {
            let _ = latency.add(&other.latency);
        }
        let runs: u64 = stats.iter().map(|s| s.runs()).sum();
        let ok: u64 = stats.iter().map(|s| s.ok).sum();
        let mut failed = std::collections::BTreeMap::new();
        for s in &stats {
            for (code, n) in &s.errors {
                *failed.entry(code.clone()).or_insert(0u64) += n;
            }
        }
        let failed: Vec<String> = failed.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        total += runs;
        println!(
            "| {name} | {runs} | {ok} | {} | {:.2} | {:.2} |",
            failed.join(", "),
            latency.value_at_quantile(0.5) as f64 / 1e3,
            latency.value_at_quantile(0.99) as f64 / 1e3
        );
    }
    println!(
        "\n{total} actions, {:.0} actions/s",
        total as f64 / duration.as_secs_f64().max(0.001)
    );
    if let Some(coordinator) = report.state(&Role::Coordinator) {
        let divergences = coordinator.data().db.divergences();
        println!(
            "catalog: {} tables, {} differences from the database",
            coordinator.data().db.catalog.len(),
            divergences.len()
        );
    }
}

async fn run(cli: &Cli, program: &Program<Role, Msg>) -> Result<bool, String> {
    remove_clusters_on_ctrl_c();
    let target = match &cli.target {
        Some(connection) => PgTarget::External(connection.clone()),
        None => {
            let cluster = PgCluster::start(ClusterOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Started a throwaway PostgreSQL cluster on 127.0.0.1:{} in {}.",
                cluster.port(),
                cluster.data_dir().display()
            );
            PgTarget::Throwaway(cluster)
        }
    };
    let connection = target.connection_string();
    let catalog = Arc::new(Catalog::new());
    let mut registry = ExtensionRegistry::new();
    register_database_effects(&mut registry).map_err(|e| e.to_string())?;
    let registry = Arc::new(registry);
    let duration = Duration::from_secs(cli.duration);
    let config = RunConfig::default().with_deadline(duration + Duration::from_secs(300));
    let report = run_all(
        program,
        |_| {
            RoleSetup::with_registry(
                Node {
                    db: DatabaseContext::new(connection.clone(), catalog.clone(), cli.seed),
                },
                registry.clone(),
            )
        },
        config,
    )
    .await
    .map_err(|e| e.to_string())?;
    print_report(&report, duration);
    drop(target);
    Ok(report.is_success())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let program = scenario(cli.workers, Duration::from_secs(cli.duration));
    let locals = match project_all(&program) {
        Ok(locals) => locals,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "# stormchor: {} workers run the stress mix for {} s, the coordinator validates the catalog\n",
        cli.workers, cli.duration
    );
    println!("```mermaid\n{}```", to_mermaid(&program));
    if cli.describe {
        for local in locals.values() {
            println!("{local}");
        }
        return ExitCode::SUCCESS;
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
    match runtime.block_on(run(&cli, &program)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
