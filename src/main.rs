//! The `stormchor` command.
//!
//! With no arguments it starts a throwaway PostgreSQL cluster and runs the sample
//! scenario, a choreography between a coordinator and N workers: the coordinator
//! discovers the schema and starts the workers, every worker runs the weighted random
//! DDL/DML mix for a while and reports how many actions it ran, and the coordinator
//! validates that the shared schema catalog matches the database exactly. It prints
//! the scenario's diagram and a report, removes the cluster, and exits non-zero if any
//! role failed or the catalog diverged. `--target` runs it against your own server.
//!
//! `stormchor run tpcb` (or `read-only`) runs a pgbench workload instead, `list` lists
//! scenarios and workloads, `describe NAME` shows one.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use stormchor::prelude::*;
use stormchor::runtime::bridge::{
    DatabaseContext, DatabaseRole, DiscoverSchema, RunStressMix, ValidateCatalog,
    register_database_effects,
};
use stormchor::runtime::postgres::{
    Catalog, ClusterOptions, PgCluster, PgTarget, WorkerReport, remove_clusters_on_ctrl_c,
};
use stormchor::runtime::workload::{LoadConfig, Workload, WorkloadRegistry, run_load, weights};
use stormchor::runtime::{
    ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, RunReport, run_all,
};

/// Multi-party PostgreSQL tests written as choreographies.
///
/// With no command it runs the `stress` scenario against a throwaway cluster.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario or a workload (default: the `stress` scenario).
    Run {
        /// A scenario (`stress`), a workload (`tpcb`, `read-only`, `ecommerce`), or a
        /// workload file (`my-workload.toml`); see `list`.
        name: Option<String>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// List the scenarios and workloads.
    List,
    /// Describe a scenario (its diagram and every role's program) or a workload (its operations).
    Describe {
        /// The scenario or workload.
        name: String,
        #[command(flatten)]
        args: RunArgs,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Run against this server (a libpq connection string) instead of a throwaway cluster.
    #[arg(long, env = "STORMCHOR_TARGET")]
    target: Option<String>,
    /// Workers of a scenario, or clients of a workload.
    #[arg(long, default_value_t = 2, env = "STORMCHOR_WORKERS")]
    workers: u16,
    /// How long the load runs, in seconds.
    #[arg(long, default_value_t = 10, env = "STORMCHOR_DURATION")]
    duration: u64,
    /// The seed of every random choice (replayable with one worker).
    #[arg(long, default_value_t = 1, env = "STORMCHOR_SEED")]
    seed: u64,
    /// The scale of the pgbench workloads (100,000 accounts each).
    #[arg(long, default_value_t = 1, env = "STORMCHOR_SCALE")]
    scale: u32,
}

const SCENARIOS: [(&str, &str); 1] = [(
    "stress",
    "workers run the weighted random DDL/DML mix; the coordinator validates the catalog against the database",
)];

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

/// The server of a run: a throwaway cluster, or the target.
async fn target(args: &RunArgs) -> Result<PgTarget, String> {
    remove_clusters_on_ctrl_c();
    match &args.target {
        Some(connection) => Ok(PgTarget::External(connection.clone())),
        None => {
            let cluster = PgCluster::start(ClusterOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Started a throwaway PostgreSQL cluster on 127.0.0.1:{} in {}.",
                cluster.port(),
                cluster.data_dir().display()
            );
            Ok(PgTarget::Throwaway(cluster))
        }
    }
}

async fn run_scenario(args: &RunArgs, program: &Program<Role, Msg>) -> Result<bool, String> {
    let target = target(args).await?;
    let connection = target.connection_string();
    let catalog = Arc::new(Catalog::new());
    let mut registry = ExtensionRegistry::new();
    register_database_effects(&mut registry).map_err(|e| e.to_string())?;
    let registry = Arc::new(registry);
    let duration = Duration::from_secs(args.duration);
    let config = RunConfig::default().with_deadline(duration + Duration::from_secs(300));
    let report = run_all(
        program,
        |_| {
            RoleSetup::with_registry(
                Node {
                    db: DatabaseContext::new(connection.clone(), catalog.clone(), args.seed),
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

async fn run_workload(args: &RunArgs, name: &str) -> Result<bool, String> {
    // A `.toml` name is a workload file for the `sql` workload; pgbench's workloads take
    // the scale.
    let mut section = toml::Table::new();
    let registered = if name.ends_with(".toml") {
        section.insert("file".to_owned(), toml::Value::String(name.to_owned()));
        "sql"
    } else {
        if matches!(name, "tpcb" | "read-only") {
            section.insert(
                "scale".to_owned(),
                toml::Value::Integer(i64::from(args.scale)),
            );
        }
        name
    };
    let mut workload = WorkloadRegistry::with_builtins()
        .create(registered)
        .map_err(|e| e.to_string())?;
    workload.configure(&section).map_err(|e| e.to_string())?;
    let weights = weights(&workload.info(), None).map_err(|e| e.to_string())?;
    let target = target(args).await?;
    let (mut client, connection) =
        tokio_postgres::connect(&target.connection_string(), tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect to `{}`: {e}", target.connection_string()))?;
    tokio::spawn(connection);
    println!("Setting up {name} ...");
    workload
        .setup(&mut client)
        .await
        .map_err(|e| e.to_string())?;
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let mut config = LoadConfig::new(
        usize::from(args.workers),
        Duration::from_secs(args.duration),
    );
    config.seed = args.seed;
    println!(
        "Running {name}: {} clients for {} s ...",
        args.workers, args.duration
    );
    let report = run_load(
        workload.clone(),
        &target.connection_string(),
        &weights,
        config,
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "\n| operation | ok | failed | per second | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (operation, metrics) in &report.operations {
        let ms = |q: f64| metrics.latency.value_at_quantile(q) as f64 / 1e3;
        let failed: Vec<String> = metrics
            .errors
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        println!(
            "| {operation} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            metrics.count,
            if failed.is_empty() {
                "0".to_owned()
            } else {
                failed.join(", ")
            },
            metrics.count as f64 / report.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            metrics.latency.max() as f64 / 1e3
        );
    }
    println!(
        "\n{:.0} transactions per second over {:.1} s",
        report.throughput(),
        report.elapsed.as_secs_f64()
    );
    workload.cleanup(&client).await.map_err(|e| e.to_string())?;
    drop(target);
    Ok(report.failures() == 0)
}

fn list() {
    println!("Scenarios:");
    for (name, description) in SCENARIOS {
        println!("  {name:<12} {description}");
    }
    println!("\nWorkloads:");
    let registry = WorkloadRegistry::with_builtins();
    for name in registry.names() {
        if let Ok(workload) = registry.create(&name) {
            println!("  {name:<12} {}", workload.info().description);
        }
    }
}

fn describe(name: &str, args: &RunArgs) -> Result<(), String> {
    if name == "stress" {
        let program = scenario(args.workers, Duration::from_secs(args.duration));
        let locals = project_all(&program).map_err(|e| e.to_string())?;
        println!("```mermaid\n{}```\n", to_mermaid(&program));
        for local in locals.values() {
            println!("{local}");
        }
        return Ok(());
    }
    let workload = WorkloadRegistry::with_builtins()
        .create(name)
        .map_err(|e| e.to_string())?;
    let info = workload.info();
    println!(
        "{} (version {}): {}\n\noperation weights:",
        info.name, info.version, info.description
    );
    for operation in info.operations {
        println!("  {:<16} {}", operation.name, operation.weight);
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, args) = match cli.command {
        Some(Command::List) => {
            list();
            return ExitCode::SUCCESS;
        }
        Some(Command::Describe { name, args }) => {
            return match describe(&name, &args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::Run { name, args }) => (name.unwrap_or_else(|| "stress".to_owned()), args),
        None => ("stress".to_owned(), cli.run),
    };
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
    let outcome = if name == "stress" {
        let program = scenario(args.workers, Duration::from_secs(args.duration));
        println!(
            "# stormchor stress: {} workers run the action mix for {} s, the coordinator validates the catalog\n",
            args.workers, args.duration
        );
        println!("```mermaid\n{}```", to_mermaid(&program));
        runtime.block_on(run_scenario(&args, &program))
    } else {
        runtime.block_on(run_workload(&args, &name))
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
