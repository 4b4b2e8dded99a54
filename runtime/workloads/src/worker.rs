//! A worker: draws actions from its registry and runs them on its own connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use stormchor_postgres::Catalog;
use stormchor_postgres::PgError;
use stormchor_postgres::{ActionContext, ActionErrorKind, ActionRegistry};
use stormchor_postgres::{SqlLog, SqlSession};

/// When a worker stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkLimit {
    /// After this long.
    Duration(Duration),
    /// After this many actions.
    Actions(u64),
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The worker's name; with the seed it decides the worker's random stream.
    pub name: String,
    /// The run's seed.
    pub seed: u64,
    /// Where to connect.
    pub connection_string: String,
    /// When to stop.
    pub limit: WorkLimit,
    /// Where to log every statement, if anywhere.
    pub sql_log: Option<PathBuf>,
    /// How many times to try reconnecting after the server went away (200 ms apart).
    pub reconnect_attempts: u32,
    /// Set it to stop the worker after its current action.
    pub stop: Arc<AtomicBool>,
}

impl WorkerConfig {
    /// A worker called `name` with seed `seed`, connecting to `connection_string`,
    /// running `limit`; no SQL log, 50 reconnection attempts.
    pub fn new(
        name: impl Into<String>,
        seed: u64,
        connection_string: impl Into<String>,
        limit: WorkLimit,
    ) -> Self {
        WorkerConfig {
            name: name.into(),
            seed,
            connection_string: connection_string.into(),
            limit,
            sql_log: None,
            reconnect_attempts: 50,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What happened to one action.
#[derive(Clone, Debug)]
pub struct ActionStats {
    /// Successful runs.
    pub ok: u64,
    /// Failed runs by SQLSTATE (or `connection`, `no target`).
    pub errors: BTreeMap<String, u64>,
    /// Latency of every run, in microseconds.
    pub latency: Histogram<u64>,
}

impl ActionStats {
    fn new() -> Self {
        ActionStats {
            ok: 0,
            errors: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant bounds: 1 us to 1 h, 3 digits"),
        }
    }

    /// Runs in all.
    pub fn runs(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }
}

/// What a worker did.
#[derive(Clone, Debug)]
pub struct WorkerReport {
    /// The worker's name.
    pub name: String,
    /// Per action.
    pub actions: BTreeMap<String, ActionStats>,
    /// How many times it reconnected.
    pub reconnects: u32,
    /// How long it ran.
    pub elapsed: Duration,
}

impl WorkerReport {
    /// Actions run in all.
    pub fn runs(&self) -> u64 {
        self.actions.values().map(ActionStats::runs).sum()
    }
}

/// A seed for `name` within run `seed`.
fn worker_seed(seed: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    seed ^ hash
}

/// Runs actions drawn from `registry` until the limit, on the catalog shared with the
/// other workers.
///
/// The worker's random stream comes from (run seed, worker name), so a single-worker
/// run replays exactly. When the server goes away, it reconnects (bounded attempts)
/// and goes on; every statement goes to its SQL log with timing and outcome.
pub async fn run_worker(
    config: WorkerConfig,
    registry: ActionRegistry,
    catalog: Arc<Catalog>,
) -> Result<WorkerReport, PgError> {
    run_worker_observed(config, registry, catalog, |_| {}).await
}

/// How one action of a worker ended, as [`run_worker_observed`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionDone<'a> {
    /// The action's name.
    pub action: &'a str,
    /// It succeeded.
    pub ok: bool,
    /// How long it took.
    pub latency: Duration,
    /// It is the first action on a connection made after the last one was lost.
    pub after_reconnect: bool,
}

/// [`run_worker`], calling `observe` after each action (for per-second load figures
/// and the moment the worker is back after a crash).
///
/// # Example
/// ```no_run
/// use std::sync::Arc;
/// use stormchor_postgres::{ActionRegistry, Catalog, PgError};
/// use stormchor_workloads::{WorkLimit, WorkerConfig, run_worker_observed};
///
/// # async fn demo(catalog: Arc<Catalog>) -> Result<(), PgError> {
/// let config = WorkerConfig::new("w0", 1, "host=127.0.0.1 user=postgres", WorkLimit::Actions(100));
/// let mut failed = 0;
/// run_worker_observed(config, ActionRegistry::default_actions(), catalog, |done| {
///     failed += u64::from(!done.ok);
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn run_worker_observed(
    config: WorkerConfig,
    registry: ActionRegistry,
    catalog: Arc<Catalog>,
    mut observe: impl FnMut(ActionDone<'_>),
) -> Result<WorkerReport, PgError> {
    let log = match &config.sql_log {
        Some(path) => SqlLog::to_file(path)?,
        None => SqlLog::discard(),
    };
    let mut rng = SmallRng::seed_from_u64(worker_seed(config.seed, &config.name));
    let started = Instant::now();
    let mut session = connect(&config, &log).await?;
    let mut report = WorkerReport {
        name: config.name.clone(),
        actions: BTreeMap::new(),
        reconnects: 0,
        elapsed: Duration::ZERO,
    };
    let mut done = 0u64;
    let mut after_reconnect = false;
    loop {
        let finished = match config.limit {
            WorkLimit::Duration(limit) => started.elapsed() >= limit,
            WorkLimit::Actions(limit) => done >= limit,
        };
        if finished || config.stop.load(Ordering::Relaxed) {
            break;
        }
        let Some((name, _)) = registry.pick(&mut rng) else {
            return Err(PgError::State {
                state: "without a runnable action (every weight is 0)",
                operation: format!("run worker {}", config.name),
            });
        };
        let name = name.to_owned();
        let began = Instant::now();
        let outcome = registry
            .run(
                &name,
                ActionContext {
                    catalog: &catalog,
                    rng: &mut rng,
                    sql: &session,
                },
            )
            .await;
        let latency = began.elapsed();
        let took = latency.as_micros().max(1) as u64;
        observe(ActionDone {
            action: &name,
            ok: outcome.is_ok(),
            latency,
            after_reconnect: std::mem::take(&mut after_reconnect),
        });
        let stats = report.actions.entry(name).or_insert_with(ActionStats::new);
        let _ = stats.latency.record(took);
        done += 1;
        match outcome {
            Ok(()) => stats.ok += 1,
            Err(error) => {
                let key = match &error.kind {
                    ActionErrorKind::Sql(sql) => sql
                        .sqlstate
                        .clone()
                        .unwrap_or_else(|| "connection".to_owned()),
                    ActionErrorKind::NoTarget(_) => "no target".to_owned(),
                    ActionErrorKind::Registry(_) => "registry".to_owned(),
                    ActionErrorKind::Raised(_) => "raised".to_owned(),
                };
                *stats.errors.entry(key).or_insert(0) += 1;
                if error.is_connection_lost() || session.is_closed() {
                    session = connect(&config, &log).await?;
                    report.reconnects += 1;
                    after_reconnect = true;
                }
            }
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn connect(config: &WorkerConfig, log: &SqlLog) -> Result<SqlSession, PgError> {
    let mut attempt = 0;
    loop {
        match SqlSession::connect(&config.connection_string, log.clone()).await {
            Ok(session) => return Ok(session),
            Err(error) if attempt >= config.reconnect_attempts => {
                return Err(PgError::State {
                    state: "unreachable",
                    operation: format!(
                        "connect worker {} to `{}` after {} attempts ({error})",
                        config.name,
                        stormchor_postgres::redact(&config.connection_string),
                        attempt + 1
                    ),
                });
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
