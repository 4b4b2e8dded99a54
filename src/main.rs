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

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use stormchor::config::{FileConfig, FlagValues, Settings, Source};
use stormchor::prelude::*;
use stormchor::report::{
    errors_json, latency_json, render_html, render_scenario_html, workload_json,
};
use stormchor::runtime::bridge::{
    DatabaseContext, DatabaseRole, DiscoverSchema, RunStressMix, ValidateCatalog,
    register_database_effects,
};
use stormchor::runtime::postgres::{
    Catalog, ClusterOptions, PgCluster, PgTarget, WorkerReport, remove_all_clusters_now,
};
use stormchor::runtime::workload::{
    Live, LoadConfig, Workload, WorkloadRegistry, run_load, weights,
};
use stormchor::runtime::{
    ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, RunReport, run_all,
};
use stormchor::scenarios::{self, Fault, ScenarioOptions};

/// Multi-party PostgreSQL tests written as choreographies.
///
/// With no command it runs the `backup-restore` scenario against a throwaway cluster. Values
/// come from flags, then `STORMCHOR_*` environment variables, then the `--config` file,
/// then defaults.
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
    /// Run a scenario or a workload (default: `backup-restore`).
    Run {
        /// A scenario (`backup-restore`, `crash-recovery`, `pitr`, `failover`,
        /// `existing-database`, `isolation`, `stress-check`), a workload (`tpcb`,
        /// `read-only`, `ecommerce`, `stress`), or a workload file (`my-workload.toml`);
        /// see `list`.
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
    /// Check a config file (keys, types, workload sections) without running anything.
    Validate {
        /// The config file (TOML).
        config: PathBuf,
    },
}

#[derive(Debug, Clone, Default, clap::Args)]
struct RunArgs {
    /// A config file (TOML); flags and STORMCHOR_* variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run against this server (a libpq connection string) instead of a throwaway
    /// cluster [env: STORMCHOR_TARGET].
    #[arg(long)]
    target: Option<String>,
    /// Workers of a scenario, or clients of a workload [default: 2, env: STORMCHOR_WORKERS].
    #[arg(long)]
    workers: Option<u16>,
    /// How long the load runs, in seconds [default: 10, env: STORMCHOR_DURATION].
    #[arg(long)]
    duration: Option<u64>,
    /// The seed of every random choice [default: 1, env: STORMCHOR_SEED].
    #[arg(long)]
    seed: Option<u64>,
    /// The scale of the pgbench workloads [default: 1, env: STORMCHOR_SCALE].
    #[arg(long)]
    scale: Option<u32>,
    /// Rounds of a scenario: crashes of crash-recovery (default 10), recorded points of
    /// pitr (default 3) [env: STORMCHOR_ROUNDS].
    #[arg(long)]
    rounds: Option<u32>,
    /// Inject a fault the scenario's verifier must catch: delete-acknowledged-row,
    /// corrupt-ledger-index, corrupt-restored-table, skip-wal-replay,
    /// drop-table-behind-catalog, weaker-isolation.
    #[arg(long)]
    inject: Option<Fault>,
    /// The schema (a SQL file) the existing-database scenario starts from [default: a
    /// built-in one].
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Run a workload as an open loop at this many operations per second in all
    /// [env: STORMCHOR_RATE].
    #[arg(long)]
    rate: Option<f64>,
    /// Write the report as JSON to this file [env: STORMCHOR_JSON].
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a workload's report as a self-contained HTML page with plots to this file
    /// [env: STORMCHOR_HTML].
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print the resolved configuration, with where each value came from, and stop.
    #[arg(long)]
    show_config: bool,
}

impl RunArgs {
    fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => Some(FileConfig::load(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let flags = FlagValues {
            target: self.target.clone(),
            workers: self.workers,
            duration: self.duration,
            seed: self.seed,
            scale: self.scale,
            rounds: self.rounds,
            rate: self.rate,
            json: self.json.clone(),
            html: self.html.clone(),
        };
        Settings::resolve(flags, |name| std::env::var(name).ok(), file).map_err(|e| e.to_string())
    }
}

const SCENARIOS: [(&str, &str); 1] = [(
    "stress-check",
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

/// The sample scenario: discover, broadcast, every worker runs the mix at the same
/// time (a `par`: effects in sequence would run one after the other), gather, validate.
fn scenario(workers: u16, duration: Duration) -> Program<Role, Msg> {
    let family = Family::indexed("Worker", workers, Role::Worker);
    Program::new()
        .role(Role::Coordinator)
        .family(&family)
        .ext(DiscoverSchema {
            role: Role::Coordinator,
        })
        .broadcast(Role::Coordinator, &family, Msg::Start)
        .par(
            family
                .members()
                .iter()
                .map(|w| Program::new().ext(RunStressMix { role: *w, duration })),
        )
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

/// The options of a flagship scenario from the settings.
fn scenario_options(
    settings: &Settings,
    name: &str,
    fault: Option<Fault>,
    schema: Option<PathBuf>,
    stop: Arc<AtomicBool>,
) -> ScenarioOptions {
    let default_rounds = match name {
        "crash-recovery" => 10,
        "pitr" => 3,
        _ => 1,
    };
    ScenarioOptions {
        workers: settings.workers.value,
        duration: Duration::from_secs(settings.duration.value.max(1)),
        rounds: settings.rounds.value.unwrap_or(default_rounds),
        seed: settings.seed.value,
        target: settings.target.value.clone(),
        schema_file: schema,
        fault,
        stop,
    }
}

/// Runs a flagship scenario, prints its report and writes the JSON/HTML reports.
async fn run_flagship(
    settings: &Settings,
    name: &str,
    fault: Option<Fault>,
    schema: Option<PathBuf>,
    stop: &Arc<AtomicBool>,
) -> Result<bool, String> {
    let options = scenario_options(settings, name, fault, schema, stop.clone());
    println!(
        "Running the {name} scenario: {} workers, {} s load phases, {} rounds, seed {}{}.\n",
        options.workers,
        options.duration.as_secs(),
        options.rounds,
        options.seed,
        fault.map_or(String::new(), |f| format!(", injecting {}", f.name()))
    );
    let report = scenarios::run(name, options)
        .await
        .map_err(|e| e.to_string())?;
    report.print();
    let json = report.to_json();
    write_json(settings, &json)?;
    if let Some(path) = &settings.html.value {
        std::fs::write(path, render_scenario_html(&json))
            .map_err(|e| format!("cannot write the HTML report to {}: {e}", path.display()))?;
        println!("Wrote the HTML report to {}.", path.display());
    }
    Ok(report.success)
}

/// The server of a run: a throwaway cluster, or the target.
async fn target(settings: &Settings) -> Result<PgTarget, String> {
    match &settings.target.value {
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

fn write_json(settings: &Settings, report: &serde_json::Value) -> Result<(), String> {
    if let Some(path) = &settings.json.value {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write the JSON report to {}: {e}", path.display()))?;
        println!("Wrote the JSON report to {}.", path.display());
    }
    Ok(())
}

async fn run_scenario(
    settings: &Settings,
    program: &Program<Role, Msg>,
    stop: &Arc<AtomicBool>,
) -> Result<bool, String> {
    let target = target(settings).await?;
    let connection = target.connection_string();
    let catalog = Arc::new(Catalog::new());
    let mut registry = ExtensionRegistry::new();
    register_database_effects(&mut registry).map_err(|e| e.to_string())?;
    let registry = Arc::new(registry);
    let duration = Duration::from_secs(settings.duration.value);
    let config = RunConfig::default().with_deadline(duration + Duration::from_secs(300));
    let seed = settings.seed.value;
    let report = run_all(
        program,
        |_| {
            let mut db = DatabaseContext::new(connection.clone(), catalog.clone(), seed);
            db.stop = stop.clone();
            RoleSetup::with_registry(Node { db }, registry.clone())
        },
        config,
    )
    .await
    .map_err(|e| e.to_string())?;
    print_report(&report, duration);
    let roles: serde_json::Map<String, serde_json::Value> = report
        .outcomes
        .iter()
        .map(|(role, outcome)| {
            let value = match &outcome.result {
                Ok(()) => serde_json::json!({ "completed": true, "elapsed_s": outcome.elapsed.as_secs_f64() }),
                Err(failure) => serde_json::json!({
                    "completed": false, "elapsed_s": outcome.elapsed.as_secs_f64(),
                    "failed_at": failure.path, "effect": failure.effect, "error": failure.error.to_string(),
                }),
            };
            (format!("{role:?}"), value)
        })
        .collect();
    let workers: Vec<serde_json::Value> = report
        .outcomes
        .values()
        .filter_map(|o| o.state.as_ref())
        .flat_map(|s| s.data().db.reports())
        .map(|w| {
            let actions: serde_json::Map<String, serde_json::Value> = w
                .actions
                .iter()
                .map(|(name, stats)| {
                    (name.clone(), serde_json::json!({ "ok": stats.ok, "errors": errors_json(&stats.errors), "latency_ms": latency_json(&stats.latency) }))
                })
                .collect();
            serde_json::json!({ "worker": w.name, "reconnects": w.reconnects, "elapsed_s": w.elapsed.as_secs_f64(), "actions": actions })
        })
        .collect();
    let divergences: Vec<String> = report
        .state(&Role::Coordinator)
        .map(|s| {
            s.data()
                .db
                .divergences()
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    write_json(
        settings,
        &serde_json::json!({
            "schema": "stormchor-report/1", "kind": "scenario", "name": "stress-check", "seed": seed,
            "success": report.is_success(), "roles": roles, "workers": workers, "divergences": divergences,
        }),
    )?;
    drop(target);
    Ok(report.is_success())
}

async fn run_workload(
    settings: &Settings,
    name: &str,
    stop: &Arc<AtomicBool>,
) -> Result<bool, String> {
    // A `.toml` name is a workload file for the `sql` workload; pgbench's workloads take
    // the scale; the config file's `[workload.<name>]` section comes on top.
    let mut section = settings.workloads.get(name).cloned().unwrap_or_default();
    let overrides = section.remove("weights");
    let registered = if [".toml", ".yaml", ".yml"].iter().any(|e| name.ends_with(e)) {
        section.insert("file".to_owned(), toml::Value::String(name.to_owned()));
        "sql"
    } else {
        if matches!(name, "tpcb" | "read-only")
            && (!section.contains_key("scale") || settings.scale.source != Source::Default)
        {
            section.insert(
                "scale".to_owned(),
                toml::Value::Integer(i64::from(settings.scale.value)),
            );
        }
        name
    };
    let mut workload = WorkloadRegistry::with_builtins()
        .create(registered)
        .map_err(|e| e.to_string())?;
    workload.configure(&section).map_err(|e| e.to_string())?;
    let overrides = match overrides {
        Some(toml::Value::Table(table)) => Some(table),
        Some(other) => {
            return Err(format!(
                "[workload.{name}].weights must be a table, found {other}"
            ));
        }
        None => None,
    };
    let weights = weights(&workload.info(), overrides.as_ref()).map_err(|e| e.to_string())?;
    let target = target(settings).await?;
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
        usize::from(settings.workers.value),
        Duration::from_secs(settings.duration.value),
    );
    config.seed = settings.seed.value;
    config.rate = settings.rate.value;
    config.stop = stop.clone();
    let live = Arc::new(Live::default());
    config.live = Some(live.clone());
    match config.rate {
        Some(rate) => println!(
            "Running {name}: {} clients at {rate} operations/s for {} s ...",
            config.clients, settings.duration.value
        ),
        None => println!(
            "Running {name}: {} clients as fast as they go for {} s ...",
            config.clients, settings.duration.value
        ),
    }
    let progress = show_progress(live, Duration::from_secs(settings.duration.value));
    let report = run_load(
        workload.clone(),
        &target.connection_string(),
        &weights,
        config,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some(progress) = progress {
        progress.abort();
        let _ = progress.await;
    }
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
    let mut json = workload_json(
        &report,
        settings.seed.value,
        settings.workers.value,
        settings.rate.value,
    );
    let custom = workload.custom_metrics();
    if !custom.is_empty() {
        println!(
            "{}",
            custom
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        json["custom"] = serde_json::Value::Object(
            custom
                .into_iter()
                .map(|(name, value)| (name, serde_json::json!(value)))
                .collect(),
        );
    }
    write_json(settings, &json)?;
    if let Some(path) = &settings.html.value {
        let html = render_html(&json)?;
        std::fs::write(path, html)
            .map_err(|e| format!("cannot write the HTML report to {}: {e}", path.display()))?;
        println!("Wrote the HTML report to {}.", path.display());
    }
    workload.cleanup(&client).await.map_err(|e| e.to_string())?;
    drop(target);
    // Failed operations are in the report (some workloads, like `stress`, fail by design);
    // the run fails only if nothing succeeded.
    Ok(report.successes() > 0)
}

/// A live line on the terminal (elapsed, throughput, p99, errors) while a load runs;
/// nothing when standard error is not a terminal.
fn show_progress(live: Arc<Live>, duration: Duration) -> Option<tokio::task::JoinHandle<()>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut last = 0u64;
        let mut p99 = 0.0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let done = live.successes.load(Ordering::Relaxed);
            let recent = live.take_recent();
            if !recent.is_empty() {
                p99 = recent.value_at_quantile(0.99) as f64 / 1e3;
            }
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(format!(
                "{done} ops, {} ops/s, p99 {p99:.2} ms, {} errors",
                done - last,
                live.failures.load(Ordering::Relaxed)
            ));
            last = done;
            if started.elapsed() >= duration {
                bar.finish_and_clear();
                return;
            }
        }
    }))
}

fn list() {
    println!("Scenarios:");
    for (name, description) in scenarios::SCENARIOS.iter().chain(&SCENARIOS) {
        println!("  {name:<18} {description}");
    }
    println!("\nWorkloads:");
    let registry = WorkloadRegistry::with_builtins();
    for name in registry.names() {
        if let Ok(workload) = registry.create(&name) {
            println!("  {name:<12} {}", workload.info().description);
        }
    }
}

fn describe(name: &str, settings: &Settings) -> Result<(), String> {
    if scenarios::is_scenario(name) {
        let options = scenario_options(settings, name, None, None, Arc::default());
        let diagram = scenarios::diagram(name, &options).map_err(|e| e.to_string())?;
        if let Some((_, description)) = scenarios::SCENARIOS.iter().find(|(n, _)| *n == name) {
            println!("{name}: {description}\n");
        }
        println!("```mermaid\n{diagram}```");
        let frames = scenarios::control_frames(name, &options).map_err(|e| e.to_string())?;
        println!("\ncontrol frames: {frames} (effect order, in all projections)");
        return Ok(());
    }
    if name == "stress-check" {
        let program = scenario(
            settings.workers.value,
            Duration::from_secs(settings.duration.value),
        );
        let locals = project_all(&program).map_err(|e| e.to_string())?;
        println!("```mermaid\n{}```\n", to_mermaid(&program));
        let frames = order_frames(&program).map_err(|e| e.to_string())?;
        println!(
            "control frames: {} (effect order, in all projections)\n",
            frames.total()
        );
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

/// Checks a config file, workload sections included.
fn validate_config(path: &std::path::Path) -> Result<(), String> {
    let file = FileConfig::load(path).map_err(|e| e.to_string())?;
    let registry = WorkloadRegistry::with_builtins();
    for (name, section) in &file.workload {
        let mut section = section.clone();
        let overrides = section.remove("weights");
        let mut workload = registry
            .create(name)
            .map_err(|e| format!("{}: [workload.{name}]: {e}", path.display()))?;
        workload
            .configure(&section)
            .map_err(|e| format!("{}: [workload.{name}]: {e}", path.display()))?;
        let overrides = match overrides {
            Some(toml::Value::Table(table)) => Some(table),
            Some(other) => {
                return Err(format!(
                    "{}: [workload.{name}].weights must be a table, found {other}",
                    path.display()
                ));
            }
            None => None,
        };
        weights(&workload.info(), overrides.as_ref())
            .map_err(|e| format!("{}: [workload.{name}]: {e}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let fail = |error: String, code: u8| {
        eprintln!("error: {error}");
        ExitCode::from(code)
    };
    let (name, args) = match cli.command {
        Some(Command::List) => {
            list();
            return ExitCode::SUCCESS;
        }
        Some(Command::Validate { config }) => {
            return match validate_config(&config) {
                Ok(()) => {
                    println!("{} is valid.", config.display());
                    ExitCode::SUCCESS
                }
                Err(error) => fail(error, 2),
            };
        }
        Some(Command::Describe { name, args }) => {
            let settings = match args.settings() {
                Ok(settings) => settings,
                Err(error) => return fail(error, 2),
            };
            return match describe(&name, &settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(error, 2),
            };
        }
        Some(Command::Run { name, args }) => {
            (name.unwrap_or_else(|| "backup-restore".to_owned()), args)
        }
        None => ("backup-restore".to_owned(), cli.run),
    };
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(error) => return fail(error, 2),
    };
    if args.show_config {
        println!("{}", settings.describe());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the async runtime: {error}"), 1),
    };
    // Ctrl-C: the load stops after the operations in flight, the report is still printed
    // and written, the throwaway cluster is removed. A second Ctrl-C stops at once.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
            eprintln!("\nStopping (Ctrl-C again to stop at once) ...");
            if tokio::signal::ctrl_c().await.is_ok() {
                remove_all_clusters_now();
                std::process::exit(130);
            }
        }
    });
    let outcome = if scenarios::is_scenario(&name) {
        runtime.block_on(run_flagship(
            &settings,
            &name,
            args.inject,
            args.schema.clone(),
            &stop,
        ))
    } else if name == "stress-check" {
        let program = scenario(
            settings.workers.value,
            Duration::from_secs(settings.duration.value),
        );
        println!(
            "# stormchor stress-check: {} workers run the action mix for {} s, the coordinator validates the catalog\n",
            settings.workers.value, settings.duration.value
        );
        println!("```mermaid\n{}```", to_mermaid(&program));
        runtime.block_on(run_scenario(&settings, &program, &stop))
    } else {
        runtime.block_on(run_workload(&settings, &name, &stop))
    };
    drop(runtime);
    match outcome {
        _ if stop.load(Ordering::Relaxed) => ExitCode::from(130),
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => fail(error, 1),
    }
}
