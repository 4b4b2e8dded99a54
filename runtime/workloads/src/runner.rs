//! The load runner (a closed loop, or an open loop at a rate) and its metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::drive::Driver;
use super::{Workload, WorkloadError};
use stormchor_postgres::SqlError;

/// How to load the server.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Concurrent clients, each with its own connection, each as fast as it goes.
    pub clients: usize,
    /// How long.
    pub duration: Duration,
    /// The seed; client `i` draws from `seed + i`.
    pub seed: u64,
    /// Whether to time every operation (latency histograms); counts are always kept.
    /// An open loop always times.
    pub record_latency: bool,
    /// `None`: a closed loop, every client as fast as it goes. `Some(rate)`: an open loop
    /// at `rate` operations per second in all, spread evenly over the clients; each
    /// operation's latency counts from the moment it was due, so a stall shows in every
    /// operation that waited behind it (no coordinated omission). Each client's schedule
    /// starts once it is connected and ends at the duration, like the run: operations
    /// due by then that could not start in time are counted in [`LoadReport::missed`],
    /// never run late. The rate must be finite and above 0.
    pub rate: Option<f64>,
    /// Set it to end the run early: every client finishes its current operation and
    /// stops, and the report covers what ran.
    pub stop: Arc<AtomicBool>,
    /// Live figures to update while running, for a progress display.
    pub live: Option<Arc<Live>>,
    /// Send each operation's statements without waiting for each reply (one round trip
    /// per operation instead of one per statement); only for workloads that
    /// [pipeline](Workload::pipelines), else the run is refused.
    pub pipeline: bool,
}

impl LoadConfig {
    /// `clients` clients for `duration`, seed 1, latencies recorded.
    pub fn new(clients: usize, duration: Duration) -> Self {
        LoadConfig {
            clients,
            duration,
            seed: 1,
            record_latency: true,
            rate: None,
            stop: Arc::new(AtomicBool::new(false)),
            live: None,
            pipeline: false,
        }
    }

    /// The same, as an open loop at `rate` operations per second in all.
    pub fn at_rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }
}

/// The figures of one operation.
#[derive(Clone, Debug)]
pub struct OperationMetrics {
    /// Successful runs.
    pub count: u64,
    /// Failed runs by SQLSTATE (`connection` when the connection broke).
    pub errors: BTreeMap<String, u64>,
    /// Latency of successful runs, in microseconds.
    pub latency: Histogram<u64>,
}

impl OperationMetrics {
    fn new() -> Self {
        OperationMetrics {
            count: 0,
            errors: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant bounds: 1 us to 1 h, 3 digits"),
        }
    }

    fn merge(&mut self, other: &OperationMetrics) {
        self.count += other.count;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_insert(0) += n;
        }
        let _ = self.latency.add(&other.latency);
    }
}

/// Figures that clients update while a run goes, for a progress display.
#[derive(Debug)]
pub struct Live {
    /// Successful operations so far.
    pub successes: AtomicU64,
    /// Failed operations so far.
    pub failures: AtomicU64,
    /// Latencies of the seconds completed since it was last taken ([`Live::take_recent`]).
    recent: std::sync::Mutex<Histogram<u64>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            recent: std::sync::Mutex::new(second_histogram()),
        }
    }
}

impl Live {
    /// Takes the latencies recorded since the last call (microseconds).
    pub fn take_recent(&self) -> Histogram<u64> {
        let mut recent = stormchor_postgres::lock(&self.recent);
        std::mem::replace(&mut *recent, second_histogram())
    }

    fn add_second(&self, second: &Histogram<u64>) {
        let _ = stormchor_postgres::lock(&self.recent).add(second);
    }
}

/// What a load run did.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// The workload.
    pub workload: String,
    /// How long it ran.
    pub elapsed: Duration,
    /// Per operation.
    pub operations: BTreeMap<String, OperationMetrics>,
    /// Successful operations in each second of the run.
    pub per_second: Vec<u64>,
    /// The latency of the operations of each second (all operations together), in
    /// microseconds; empty histograms where latencies were not recorded.
    pub per_second_latency: Vec<Histogram<u64>>,
    /// Successful operations of each client.
    pub per_client: Vec<u64>,
    /// An open loop: the operations due before the end of the run that could not start
    /// by then (the server was slower than the rate); 0 for a closed loop.
    pub missed: u64,
}

impl LoadReport {
    /// Successful operations in all.
    pub fn successes(&self) -> u64 {
        self.operations.values().map(|o| o.count).sum()
    }

    /// Failed operations in all.
    pub fn failures(&self) -> u64 {
        self.operations
            .values()
            .flat_map(|o| o.errors.values())
            .sum()
    }

    /// Successful operations per second.
    pub fn throughput(&self) -> f64 {
        self.successes() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct ClientFigures {
    operations: Vec<OperationMetrics>,
    per_second: Vec<u64>,
    per_second_latency: Vec<Histogram<u64>>,
    missed: u64,
}

/// A histogram for one second's latencies: two significant digits keep it small.
fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds: 1 us to 1 h, 2 digits")
}

/// What one client does.
struct ClientPlan {
    weights: Vec<u32>,
    total: u64,
    seed: u64,
    record: bool,
    started: Instant,
    deadline: Instant,
    /// Open loop: the interval between this client's operations, and its first one's offset.
    pacing: Option<(Duration, Duration)>,
    stop: Arc<AtomicBool>,
    live: Option<Arc<Live>>,
    pipeline: bool,
}

/// Runs `workload` with `config.clients` clients, each drawing operations by `weights`:
/// as fast as they go (a closed loop), or at `config.rate` (an open loop).
///
/// The workload's `setup` must have run. A client whose connection breaks reconnects and
/// goes on until the end.
pub async fn run_load(
    workload: Arc<dyn Workload>,
    connection_string: &str,
    weights: &[u32],
    config: LoadConfig,
) -> Result<LoadReport, WorkloadError> {
    let info = workload.info();
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 || weights.len() != info.operations.len() {
        return Err(WorkloadError::Config {
            workload: info.name.clone(),
            problem: format!(
                "{} weights for {} operations, summing to {total}",
                weights.len(),
                info.operations.len()
            ),
        });
    }
    let fail = |problem: String| WorkloadError::Config {
        workload: info.name.clone(),
        problem,
    };
    // An open loop's rate must give every client an interval a clock can hold.
    let pacing = |client: usize| -> Result<Option<(Duration, Duration)>, WorkloadError> {
        let Some(rate) = config.rate else {
            return Ok(None);
        };
        if !rate.is_finite() || rate <= 0.0 {
            return Err(fail(format!(
                "an open loop needs a finite rate above 0 operations per second, found {rate}"
            )));
        }
        let interval = Duration::try_from_secs_f64(config.clients as f64 / rate);
        let offset = Duration::try_from_secs_f64(client as f64 / rate);
        match (interval, offset) {
            (Ok(interval), Ok(offset)) if !interval.is_zero() => Ok(Some((interval, offset))),
            _ => Err(fail(format!(
                "a rate of {rate} operations per second over {} clients has no interval a \
                 clock can hold",
                config.clients
            ))),
        }
    };
    pacing(0)?;
    if config.pipeline && !workload.pipelines() {
        return Err(fail(
            "it cannot pipeline its statements (--pipeline): run it without".to_owned(),
        ));
    }
    let started = Instant::now();
    let deadline = started.checked_add(config.duration).ok_or_else(|| {
        fail(format!(
            "a duration of {} s is past what the clock can hold",
            config.duration.as_secs()
        ))
    })?;
    // Every client runs on a thread of its own with a single-threaded runtime, and polls
    // its connection in its own task (`Driver`): a statement crosses no thread and no
    // task, which is what keeps a closed loop fast (pgbench also gives each client a
    // thread).
    let mut clients = Vec::new();
    for client in 0..config.clients {
        let pacing = pacing(client)?;
        let plan = ClientPlan {
            weights: weights.to_vec(),
            total,
            seed: config.seed.wrapping_add(client as u64),
            record: config.record_latency || pacing.is_some(),
            started,
            deadline,
            pacing,
            stop: config.stop.clone(),
            live: config.live.clone(),
            pipeline: config.pipeline,
        };
        let (workload, connection_string, name) = (
            workload.clone(),
            connection_string.to_owned(),
            info.name.clone(),
        );
        let (done, figures) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-client-{client}"))
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(client_loop(workload, connection_string, plan)),
                    Err(error) => Err(WorkloadError::Config {
                        workload: name,
                        problem: format!("cannot start a client runtime: {error}"),
                    }),
                };
                let _ = done.send(result);
            });
        if let Err(error) = thread {
            return Err(WorkloadError::Config {
                workload: info.name.clone(),
                problem: format!("cannot start a client thread: {error}"),
            });
        }
        clients.push(figures);
    }
    let mut operations: BTreeMap<String, OperationMetrics> = info
        .operations
        .iter()
        .map(|o| (o.name.clone(), OperationMetrics::new()))
        .collect();
    let mut per_second = Vec::new();
    let mut per_second_latency: Vec<Histogram<u64>> = Vec::new();
    let mut per_client = Vec::new();
    let mut missed = 0;
    for client in clients {
        let Ok(figures) = client.await else {
            return Err(WorkloadError::Config {
                workload: info.name.clone(),
                problem: "a client thread ended without its figures".to_owned(),
            });
        };
        let figures = figures?;
        missed += figures.missed;
        per_client.push(figures.operations.iter().map(|o| o.count).sum());
        for (op, metrics) in info.operations.iter().zip(&figures.operations) {
            if let Some(total) = operations.get_mut(&op.name) {
                total.merge(metrics);
            }
        }
        if per_second.len() < figures.per_second.len() {
            per_second.resize(figures.per_second.len(), 0);
        }
        for (slot, n) in per_second.iter_mut().zip(&figures.per_second) {
            *slot += n;
        }
        if per_second_latency.len() < figures.per_second_latency.len() {
            per_second_latency.resize_with(figures.per_second_latency.len(), second_histogram);
        }
        for (slot, histogram) in per_second_latency
            .iter_mut()
            .zip(&figures.per_second_latency)
        {
            let _ = slot.add(histogram);
        }
    }
    Ok(LoadReport {
        workload: info.name,
        elapsed: started.elapsed(),
        operations,
        per_second,
        per_second_latency,
        per_client,
        missed,
    })
}

/// Runs the load at each client count in `steps` for `step` each, one after the other.
pub async fn run_ramp(
    workload: Arc<dyn Workload>,
    connection_string: &str,
    weights: &[u32],
    steps: &[usize],
    step: Duration,
    seed: u64,
) -> Result<Vec<(usize, LoadReport)>, WorkloadError> {
    let mut reports = Vec::new();
    for &clients in steps {
        let mut config = LoadConfig::new(clients, step);
        config.seed = seed;
        reports.push((
            clients,
            run_load(workload.clone(), connection_string, weights, config).await?,
        ));
    }
    Ok(reports)
}

async fn client_loop(
    workload: Arc<dyn Workload>,
    connection_string: String,
    plan: ClientPlan,
) -> Result<ClientFigures, WorkloadError> {
    let ClientPlan {
        weights,
        total,
        seed,
        record,
        started,
        deadline,
        pacing,
        stop,
        live,
        pipeline,
    } = plan;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut figures = ClientFigures {
        operations: weights.iter().map(|_| OperationMetrics::new()).collect(),
        per_second: Vec::new(),
        per_second_latency: Vec::new(),
        missed: 0,
    };
    let (mut session, mut connection) = open(&*workload, &connection_string).await?;
    // An open loop's schedule starts once its connection is ready and lasts the whole
    // duration: the time to connect is neither operations missed nor a shorter run.
    let (schedule, deadline) = match pacing {
        Some(_) => {
            let now = Instant::now();
            let end = now
                .checked_add(deadline.saturating_duration_since(started))
                .unwrap_or(deadline);
            (now.max(started), end)
        }
        None => (started, deadline),
    };
    let mut slot: u64 = 0;
    // One clock read per operation: the end of one is the start of the next.
    let mut now = Instant::now();
    loop {
        // When this operation is due: now (closed loop) or at its slot (open loop).
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = match pacing {
            None if now >= deadline => break,
            None => None,
            Some((interval, offset)) => {
                let Some(due) = due_at(schedule, offset, interval, slot) else {
                    break;
                };
                // The schedule ends at the deadline, and so does the run: an operation
                // due before it that could not start by then is missed, not run late.
                if due >= deadline || Instant::now() >= deadline {
                    break;
                }
                slot += 1;
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                Some(due)
            }
        };
        let mut draw = rng.random_range(0..total);
        let operation = weights
            .iter()
            .position(|w| {
                let hit = draw < u64::from(*w);
                draw = draw.saturating_sub(u64::from(*w));
                hit
            })
            .unwrap_or(0);
        let began = due.unwrap_or(now);
        let outcome = if pipeline {
            connection
                .drive(session.run_pipelined(operation, &mut rng))
                .await
        } else {
            connection.drive(session.run(operation, &mut rng)).await
        };
        now = Instant::now();
        let metrics = &mut figures.operations[operation];
        match outcome {
            Ok(()) => {
                metrics.count += 1;
                let second = now.saturating_duration_since(started).as_secs() as usize;
                if figures.per_second.len() <= second {
                    // A second is over: show its latencies live.
                    if let (Some(live), Some(last)) = (&live, figures.per_second_latency.last()) {
                        live.add_second(last);
                    }
                    figures.per_second.resize(second + 1, 0);
                    figures
                        .per_second_latency
                        .resize_with(second + 1, second_histogram);
                }
                if let Some(live) = &live {
                    live.successes.fetch_add(1, Ordering::Relaxed);
                }
                figures.per_second[second] += 1;
                if record {
                    let took = now.saturating_duration_since(began).as_micros().max(1) as u64;
                    let _ = metrics.latency.record(took);
                    let _ = figures.per_second_latency[second].record(took);
                }
            }
            Err(error) => {
                let lost = error.is_connection_lost();
                let code = error.sqlstate.unwrap_or_else(|| "connection".to_owned());
                *metrics.errors.entry(code).or_insert(0) += 1;
                if let Some(live) = &live {
                    live.failures.fetch_add(1, Ordering::Relaxed);
                }
                if lost {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Ok((reopened, driver)) = open(&*workload, &connection_string).await {
                        session = reopened;
                        connection = driver;
                    }
                    now = Instant::now();
                }
            }
        }
    }
    if let Some((interval, offset)) = pacing {
        figures.missed = due_before(schedule, offset, interval, Instant::now().min(deadline))
            .saturating_sub(slot);
    }
    // Dropping the session drops its client: the connection then says goodbye to the
    // server (Terminate) and ends, within a bound.
    drop(session);
    connection.close().await;
    Ok(figures)
}

/// When slot `slot` of a client's schedule is due; `None` past what the clock holds.
fn due_at(started: Instant, offset: Duration, interval: Duration, slot: u64) -> Option<Instant> {
    let after = interval.as_nanos().checked_mul(u128::from(slot))?;
    started
        .checked_add(offset)?
        .checked_add(Duration::from_nanos(u64::try_from(after).ok()?))
}

/// How many slots of a client's schedule are due before `end`.
fn due_before(started: Instant, offset: Duration, interval: Duration, end: Instant) -> u64 {
    let Some(first) = started.checked_add(offset) else {
        return 0;
    };
    let span = end.saturating_duration_since(first).as_nanos();
    let step = interval.as_nanos().max(1);
    u64::try_from(span.div_ceil(step)).unwrap_or(u64::MAX)
}

async fn open(
    workload: &dyn Workload,
    connection_string: &str,
) -> Result<(Box<dyn super::WorkloadSession>, Driver), WorkloadError> {
    let (client, connection) = stormchor_postgres::connect_raw(connection_string)
        .await
        .map_err(|error| WorkloadError::Sql {
            workload: workload.info().name,
            what: "connecting".to_owned(),
            error: match error {
                stormchor_postgres::PgError::Connect {
                    source, problem, ..
                } => SqlError {
                    message: problem,
                    ..SqlError::from(source)
                },
                other => SqlError {
                    sqlstate: None,
                    message: other.to_string(),
                },
            },
        })?;
    let mut driver = Driver::new(connection);
    let session = driver.drive(workload.session(client)).await?;
    Ok((session, driver))
}
