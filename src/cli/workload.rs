//! `run WORKLOAD`: a workload (built in, or a workload file) made and configured before
//! anything starts, then set up, loaded and cleaned up on a throwaway cluster or in a
//! schema of the run's own on a `--target`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use stormchor::postgres::{ClusterOptions, PgTarget, RunSchema, connect};
use stormchor::report::{WorkloadReport, render_html};
use stormchor::workloads::{
    Live, LoadConfig, Workload, WorkloadInfo, WorkloadRegistry, run_load, weights,
};

use super::config::{Settings, Source};
use super::output::{print_workload_table, write_html, write_json};
use super::progress::show_progress;
use super::signals::interruption;

/// Whether `name` names a workload file (`.toml`, `.yaml`, `.yml`).
pub fn is_workload_file(name: &str) -> bool {
    [".toml", ".yaml", ".yml"].iter().any(|e| name.ends_with(e))
}

/// A workload made and configured, with its operations' weights: ready to run.
pub struct PreparedWorkload {
    name: String,
    workload: Box<dyn Workload>,
    weights: Vec<u32>,
    pipeline: bool,
}

impl PreparedWorkload {
    /// Makes workload `name` (a `.toml`/`.yaml` name is a workload file for the `sql`
    /// workload) and configures it from the settings: pgbench's workloads take the
    /// scale, the config file's `[workload.<name>]` section comes on top.
    pub fn new(settings: &Settings, name: &str) -> Result<Self, String> {
        let mut section = settings.workloads.get(name).cloned().unwrap_or_default();
        let overrides = section.remove("weights");
        let registered = if is_workload_file(name) {
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
        Ok(PreparedWorkload {
            name: name.to_owned(),
            workload,
            weights,
            pipeline: false,
        })
    }

    /// Sends each operation's statements without waiting for each reply
    /// (`--pipeline`), or a usage error when the workload cannot.
    pub fn pipelined(mut self, pipeline: bool) -> Result<Self, String> {
        if pipeline && !self.workload.pipelines() {
            return Err(format!(
                "--pipeline: `{}` cannot pipeline its statements (tpcb and read-only can)",
                self.name
            ));
        }
        self.pipeline = pipeline;
        Ok(self)
    }

    /// What the workload is, with the weights it runs with.
    pub fn info(&self) -> WorkloadInfo {
        let mut info = self.workload.info();
        for (operation, weight) in info.operations.iter_mut().zip(&self.weights) {
            operation.weight = *weight;
        }
        info
    }
}

async fn target(settings: &Settings) -> Result<PgTarget, String> {
    let target = PgTarget::resolve(settings.target.value.as_deref(), ClusterOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    if let PgTarget::Throwaway(cluster) = &target {
        println!(
            "Started a throwaway PostgreSQL cluster on 127.0.0.1:{} in {}.",
            cluster.port(),
            cluster.data_dir().display()
        );
    }
    Ok(target)
}

/// Runs a prepared workload on its target; whether it passed (some operation succeeded).
pub async fn run_workload(
    settings: &Settings,
    prepared: PreparedWorkload,
    stop: &Arc<AtomicBool>,
) -> Result<bool, String> {
    let target = target(settings).await?;
    let outcome = run_on_target(settings, prepared, stop, &target).await;
    let ended = target.shutdown().await.map_err(|e| e.to_string());
    match (outcome, ended) {
        (Err(first), Err(second)) => Err(format!("{first}; {second}")),
        (outcome, ended) => ended.and(outcome),
    }
}

/// [`run_workload`] on a target that was resolved (and is shut down by the caller).
async fn run_on_target(
    settings: &Settings,
    prepared: PreparedWorkload,
    stop: &Arc<AtomicBool>,
    target: &PgTarget,
) -> Result<bool, String> {
    // On a user's server, everything the workload creates lives in a schema of the
    // run's own, and the cleanup drops that schema only.
    let schema = match target {
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
    let outcome = drive_workload(settings, prepared, &connection, stop).await;
    if let Some(schema) = &schema {
        if let Err(error) = schema.drop_schema().await {
            let dropped = format!("cannot drop the run's schema {}: {error}", schema.name());
            return Err(match outcome {
                Err(first) => format!("{first}; {dropped}"),
                Ok(_) => dropped,
            });
        }
    }
    outcome
}

/// Sets a workload up on `connection`, runs the load, reports, cleans up.
async fn drive_workload(
    settings: &Settings,
    prepared: PreparedWorkload,
    connection: &str,
    stop: &Arc<AtomicBool>,
) -> Result<bool, String> {
    let PreparedWorkload {
        name,
        workload,
        weights,
        pipeline,
    } = prepared;
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
    config.pipeline = pipeline;
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
    let report = run_load(workload.clone(), connection, &weights, config).await;
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
    print_workload_table(&report);
    if let Some(rate) = settings.rate.value {
        if report.missed > 0 {
            println!(
                "{} operations due before the end could not start in time: the server kept \
                 up with less than {rate} operations/s",
                report.missed
            );
        }
    }
    let mut typed = WorkloadReport::of(
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
        typed.custom = custom.into_iter().collect();
    }
    typed.interrupted = interruption();
    let written = write_reports(settings, &typed).await;
    // The cleanup runs even when a report could not be written.
    let cleaned = workload.cleanup(&client).await.map_err(|e| e.to_string());
    written?;
    cleaned?;
    // Failed operations are in the report (some workloads, like `stress`, fail by design);
    // the run fails only if nothing succeeded.
    Ok(report.successes() > 0)
}

/// Writes the `--json` and `--html` reports of a workload run, when asked for.
async fn write_reports(settings: &Settings, report: &WorkloadReport) -> Result<(), String> {
    write_json(settings, &report.versioned()).await?;
    match &settings.html.value {
        Some(path) => write_html(path, &render_html(report)?).await,
        None => Ok(()),
    }
}
