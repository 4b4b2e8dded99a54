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
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use stormchor::config::{FileConfig, FlagValues, Settings, Source};
use stormchor::report::{render_html, render_scenario_html, workload_json};
use stormchor::runtime::postgres::{
    ClusterOptions, PgCluster, PgTarget, RunSchema, connect, first_signal, interrupt,
    remove_all_clusters_now,
};
use stormchor::runtime::workload::{
    Live, LoadConfig, Workload, WorkloadRegistry, run_load, weights,
};
use stormchor::scenarios::{self, Fault, Scenario, ScenarioOptions, ScenarioRegistry};

mod processes_cli;

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
    /// Run one role of a scenario in this process, talking to its peers (each in a
    /// process of its own, on this host or others) over TCP (docs/processes.md).
    Role {
        #[command(flatten)]
        role: processes_cli::RoleArgs,
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
    /// Run PostgreSQL's isolation specs of DIR (laid out as src/test/isolation) and
    /// compare each output with its expected files.
    IsolationSuite {
        /// The directory (isolation_schedule, specs/, expected/).
        dir: PathBuf,
        /// Tests to run (default: every test of DIR/isolation_schedule).
        names: Vec<String>,
        /// Run against this server (a libpq connection string) instead of a throwaway
        /// cluster.
        #[arg(long)]
        target: Option<String>,
        /// Write per-test verdicts as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Cancel a step still running after this many seconds (upstream's
        /// max_step_wait); give up after twice it.
        #[arg(long, default_value_t = 360)]
        step_timeout: u64,
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
    /// Let a scenario's stress mix change and drop the existing tables of the server
    /// given with --target (off: your tables are not touched).
    #[arg(long)]
    on_user_tables: bool,
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
    /// Run every role of a scenario as a process of its own on loopback.
    #[arg(long)]
    processes: bool,
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

/// The number of the signal that stopped the run; 0 while none did.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

fn signal_name(number: i32) -> String {
    match number {
        1 => "SIGHUP".to_owned(),
        2 => "SIGINT".to_owned(),
        15 => "SIGTERM".to_owned(),
        other => format!("signal {other}"),
    }
}

/// Marks a report as cut short by a signal, when one stopped the run.
fn mark_interrupted(report: &mut serde_json::Value) {
    let number = SIGNALLED.load(Ordering::SeqCst);
    if number != 0 {
        report["interrupted"] = serde_json::json!(signal_name(number));
        println!(
            "\nINTERRUPTED by {}: the report covers what ran until then.",
            signal_name(number)
        );
    }
}

/// The options of a scenario from the settings and its defaults.
fn scenario_options(
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

/// Runs a scenario, prints its report and writes the JSON/HTML reports.
async fn run_flagship(
    settings: &Settings,
    registry: &ScenarioRegistry,
    name: &str,
    options: ScenarioOptions,
    processes: bool,
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
    let report = if processes {
        let scenario = registry.get(name).map_err(|e| e.to_string())?;
        processes_cli::launch(scenario, &options).await?
    } else {
        registry
            .run(name, options)
            .await
            .map_err(|e| e.to_string())?
    };
    report.print();
    let mut json = report.to_json();
    mark_interrupted(&mut json);
    write_json(settings, &json)?;
    if let Some(path) = &settings.html.value {
        std::fs::write(path, render_scenario_html(&json))
            .map_err(|e| format!("cannot write the HTML report to {}: {e}", path.display()))?;
        println!("Wrote the HTML report to {}.", path.display());
    }
    Ok(report.success)
}

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
    // On a user's server, everything the workload creates lives in a schema of the
    // run's own, and the cleanup drops that schema only.
    let schema = match &target {
        PgTarget::External(connection) => {
            let schema = RunSchema::create(connection)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Working in schema {} on the target (dropped at the end; nothing else is touched).",
                schema.name()
            );
            Some(schema)
        }
        PgTarget::Throwaway(_) => None,
    };
    let connection = schema.as_ref().map_or_else(
        || target.connection_string(),
        |s| s.connection_string().to_owned(),
    );
    let outcome = drive_workload(settings, name, workload, &weights, &connection, stop).await;
    if let Some(schema) = &schema {
        if let Err(error) = schema.drop_schema().await {
            let dropped = format!("cannot drop the run's schema {}: {error}", schema.name());
            return Err(match outcome {
                Err(first) => format!("{first}; {dropped}"),
                Ok(_) => dropped,
            });
        }
    }
    drop(target);
    outcome
}

/// Sets a workload up on `connection`, runs the load, reports, cleans up.
async fn drive_workload(
    settings: &Settings,
    name: &str,
    workload: Box<dyn Workload>,
    weights: &[u32],
    connection: &str,
    stop: &Arc<AtomicBool>,
) -> Result<bool, String> {
    let mut client = connect(connection).await.map_err(|e| e.to_string())?;
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
    let report = run_load(workload.clone(), connection, weights, config).await;
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            // The cleanup runs all the same.
            let _ = workload.cleanup(&client).await;
            return Err(error.to_string());
        }
    };
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
    mark_interrupted(&mut json);
    let written = write_json(settings, &json).and_then(|()| {
        if let Some(path) = &settings.html.value {
            let html = render_html(&json)?;
            std::fs::write(path, html)
                .map_err(|e| format!("cannot write the HTML report to {}: {e}", path.display()))?;
            println!("Wrote the HTML report to {}.", path.display());
        }
        Ok(())
    });
    // The cleanup runs even when a report could not be written.
    let cleaned = workload.cleanup(&client).await.map_err(|e| e.to_string());
    written?;
    cleaned?;
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

fn describe(name: &str, settings: &Settings, args: &RunArgs) -> Result<(), String> {
    let registry = scenarios::registry();
    if let Ok(scenario) = registry.get(name) {
        let options = scenario_options(settings, scenario, args);
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

/// Whether `name` is a workload (or a workload file); if not, an error that lists the
/// scenarios and workloads, with the closest name.
fn known_workload(scenarios: &ScenarioRegistry, name: &str) -> Result<(), String> {
    let is_file = [".toml", ".yaml", ".yml"].iter().any(|e| name.ends_with(e));
    let workloads = WorkloadRegistry::with_builtins().names();
    if is_file || workloads.iter().any(|w| w == name) {
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

/// `stormchor isolation-suite`: runs the suite, prints the summary, writes the JSON;
/// fails when a test this server can run differed.
fn isolation_suite(
    dir: PathBuf,
    names: Vec<String>,
    target: Option<String>,
    json: Option<PathBuf>,
    step_timeout: u64,
) -> ExitCode {
    use stormchor::isolation_suite::{SuiteOptions, run_suite};
    let mut options = SuiteOptions::new(dir);
    options.names = names;
    options.target = target;
    options.step_timeout = Duration::from_secs(step_timeout.max(1));
    options.progress = true;
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
    let report = runtime.block_on(async {
        stormchor::runtime::postgres::remove_clusters_on_ctrl_c();
        run_suite(&options).await
    });
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.summary());
    if let Some(path) = json {
        let text = match serde_json::to_string_pretty(&report.json()) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("error: cannot encode the report: {error}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(error) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
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
        Some(Command::IsolationSuite {
            dir,
            names,
            target,
            json,
            step_timeout,
        }) => {
            return isolation_suite(dir, names, target, json, step_timeout);
        }
        Some(Command::Describe { name, args }) => {
            let settings = match args.settings() {
                Ok(settings) => settings,
                Err(error) => return fail(error, 2),
            };
            return match describe(&name, &settings, &args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(error, 2),
            };
        }
        Some(Command::Role { role, args }) => {
            let settings = match args.settings() {
                Ok(settings) => settings,
                Err(error) => return fail(error, 2),
            };
            let registry = scenarios::registry();
            let scenario = match registry.get(&role.scenario) {
                Ok(scenario) => scenario,
                Err(error) => return fail(error.to_string(), 2),
            };
            let options = scenario_options(&settings, scenario, &args);
            return processes_cli::role(scenario, options, &role);
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
    // A scenario's options are checked before anything starts: a fault it cannot
    // inject is a usage error that lists the ones it can.
    let registry = scenarios::registry();
    let options = match registry.get(&name) {
        Ok(scenario) => {
            let options = scenario_options(&settings, scenario, &args);
            if let Err(error) = registry.check(&name, &options) {
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
        Err(_) if args.processes => {
            return fail(
                format!(
                    "--processes applies to scenarios; `{name}` is not one (see `stormchor list`)"
                ),
                2,
            );
        }
        Err(_) => {
            if let Err(error) = known_workload(&registry, &name) {
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
    // SIGINT (Ctrl-C), SIGTERM, SIGHUP: the load stops after the operations in flight,
    // server programs in flight (a base backup) and the cluster's waits end at once, the
    // report is still printed and written (marked interrupted), the throwaway servers
    // and directories are removed, and the exit status is 128 + the signal's number. A
    // second signal kills the servers and removes the directories at once.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    runtime.spawn(async move {
        let number = first_signal().await;
        SIGNALLED.store(number, Ordering::SeqCst);
        flag.store(true, Ordering::SeqCst);
        interrupt();
        stormchor::kit::interrupt::request();
        eprintln!(
            "\nStopping on {} (send it again to stop at once) ...",
            signal_name(number)
        );
        let again = first_signal().await;
        remove_all_clusters_now();
        std::process::exit(128 + again);
    });
    let outcome = match options {
        Some(options) => runtime.block_on(run_flagship(
            &settings,
            &registry,
            &name,
            options,
            args.processes,
        )),
        None => runtime.block_on(run_workload(&settings, &name, &stop)),
    };
    drop(runtime);
    let signalled = SIGNALLED.load(Ordering::SeqCst);
    if signalled != 0 {
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
