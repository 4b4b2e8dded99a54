//! The load runner (a closed loop, or an open loop at a rate) and its metrics: the one
//! load engine of stormchor, for the workloads and for the stress mix alike (the mix is
//! the [`Stress`](crate::Stress) workload).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::drive::{Connection, Driver};
use super::{Workload, WorkloadError};
use stormchor_postgres::SqlError;
use tokio_postgres::Client;

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
    /// `Some(n)`: each client also stops once it has run `n` operations (with a
    /// [`Duration::MAX`] duration, [`LoadConfig::operations_per_client`]: only then).
    pub operations: Option<u64>,
    /// How a client gets through a server that goes away. `None`: its first connection
    /// must succeed, and a lost one is tried again (200 ms apart) until the end of the
    /// run (a run limited by [`operations`](Self::operations) only: 50 times).
    /// `Some(n)`: the first connection and every lost one are tried again up to `n`
    /// times, 200 ms apart, then the run fails naming the client and the server.
    pub reconnect_attempts: Option<u32>,
    /// Called on the client's thread after every operation (for per-second figures of
    /// one's own, and the moment a client is back after an outage).
    pub observer: Option<Observer>,
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
            operations: None,
            reconnect_attempts: None,
            observer: None,
        }
    }

    /// `clients` clients that each run `operations` operations, however long it takes.
    pub fn operations_per_client(clients: usize, operations: u64) -> Self {
        LoadConfig {
            operations: Some(operations),
            ..LoadConfig::new(clients, Duration::MAX)
        }
    }

    /// The same, as an open loop at `rate` operations per second in all.
    pub fn at_rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }
}

/// How one operation of a run ended, as an [`Observer`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperationDone<'a> {
    /// The client that ran it (0 to `clients - 1`).
    pub client: usize,
    /// Its index among the workload's operations.
    pub index: usize,
    /// Its name.
    pub operation: &'a str,
    /// It succeeded.
    pub ok: bool,
    /// From the moment it was due (an open loop) or began, to its end.
    pub latency: Duration,
    /// It is the client's first operation on a connection made after one was lost.
    pub after_reconnect: bool,
}

/// What a run calls after every operation ([`LoadConfig::observer`]).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use stormchor_workloads::{LoadConfig, Observer, OperationDone};
///
/// let failed = Arc::new(AtomicU64::new(0));
/// let count = failed.clone();
/// let mut config = LoadConfig::operations_per_client(1, 100);
/// config.observer = Some(Observer::new(move |done: OperationDone<'_>| {
///     count.fetch_add(u64::from(!done.ok), Ordering::Relaxed);
/// }));
/// assert_eq!(config.operations, Some(100));
/// ```
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(OperationDone<'_>) + Send + Sync>);

impl Observer {
    /// Calls `observe` after every operation.
    pub fn new(observe: impl Fn(OperationDone<'_>) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(observe))
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// The figures of one operation (of a workload, or one action of the stress mix).
#[derive(Clone, Debug)]
pub struct OperationMetrics {
    /// Successful runs.
    pub count: u64,
    /// Failed runs by SQLSTATE (`connection` when the connection broke; the stress
    /// mix adds `no target`, `registry` and `raised`).
    pub errors: BTreeMap<String, u64>,
    /// Latency of successful runs, in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for OperationMetrics {
    fn default() -> Self {
        OperationMetrics {
            count: 0,
            errors: BTreeMap::new(),
            latency: latency_histogram(3),
        }
    }
}

impl OperationMetrics {
    /// Failed runs in all.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Runs in all, successful or not.
    pub fn runs(&self) -> u64 {
        self.count + self.failures()
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
    /// How many times a client connected again after losing its connection.
    pub reconnects: u64,
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
            .map(OperationMetrics::failures)
            .sum()
    }

    /// Operations run in all, successful or not.
    pub fn runs(&self) -> u64 {
        self.successes() + self.failures()
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
    reconnects: u64,
}

/// The bounds of every latency histogram, in microseconds: 1 us to 1 h.
const LATENCY_BOUNDS: (u64, u64) = (1, 3_600_000_000);

/// A latency histogram with `digits` significant digits.
fn latency_histogram(digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_BOUNDS.0, LATENCY_BOUNDS.1, digits)
        .expect("constant bounds: 1 us to 1 h, 1 to 3 digits")
}

/// A histogram for one second's latencies: two significant digits keep it small.
fn second_histogram() -> Histogram<u64> {
    latency_histogram(2)
}

/// The pause between two attempts to connect a client.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// How many times a client of a run without a deadline tries a lost connection again
/// when [`LoadConfig::reconnect_attempts`] does not say (10 s of attempts).
const UNBOUNDED_RUN_RECONNECTS: u32 = 50;

/// What one client does.
struct ClientPlan {
    client: usize,
    config: Arc<LoadConfig>,
    workload: Arc<dyn Workload>,
    connection_string: Arc<str>,
    names: Arc<[String]>,
    weights: Arc<[u32]>,
    total: u64,
    started: Instant,
    /// `None`: no end but the operations limit.
    deadline: Option<Instant>,
    /// Open loop: the interval between this client's operations, and its first one's offset.
    pacing: Option<(Duration, Duration)>,
    /// Set when a client failed: the others stop too.
    halt: Arc<AtomicBool>,
}

/// Runs `workload` with `config.clients` clients, each drawing operations by `weights`:
/// as fast as they go (a closed loop), or at `config.rate` (an open loop).
///
/// The workload's `setup` must have run. A client whose connection breaks reconnects and
/// goes on until the end ([`LoadConfig::reconnect_attempts`] bounds how long it tries).
/// Client `i` draws its operations (and the workload its values) from the stream of
/// `config.seed + i`: a one-client run of a deterministic workload replays exactly.
pub async fn run_load(
    workload: Arc<dyn Workload>,
    connection_string: &str,
    weights: &[u32],
    config: LoadConfig,
) -> Result<LoadReport, WorkloadError> {
    let config = Arc::new(config);
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
    let deadline = match started.checked_add(config.duration) {
        Some(deadline) => Some(deadline),
        None if config.operations.is_some() => None,
        None => {
            return Err(fail(format!(
                "a duration of {} s is past what the clock can hold",
                config.duration.as_secs()
            )));
        }
    };
    let names: Arc<[String]> = info.operations.iter().map(|o| o.name.clone()).collect();
    let (weights, connection_string): (Arc<[u32]>, Arc<str>) =
        (weights.into(), connection_string.into());
    // Every client runs on a thread of its own with a single-threaded runtime, and polls
    // its connection in its own task (`Driver`): a statement crosses no thread and no
    // task, which is what keeps a closed loop fast (pgbench also gives each client a
    // thread).
    let mut clients = Vec::new();
    let halt = Arc::new(AtomicBool::new(false));
    for client in 0..config.clients {
        let pacing = pacing(client)?;
        let plan = ClientPlan {
            client,
            config: config.clone(),
            workload: workload.clone(),
            connection_string: connection_string.clone(),
            names: names.clone(),
            weights: weights.clone(),
            total,
            started,
            deadline,
            pacing,
            halt: halt.clone(),
        };
        let name = info.name.clone();
        let (done, figures) = tokio::sync::oneshot::channel();
        let failed = halt.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-client-{client}"))
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(client_loop(plan)),
                    Err(error) => Err(WorkloadError::Config {
                        workload: name,
                        problem: format!("cannot start a client runtime: {error}"),
                    }),
                };
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                let _ = done.send(result);
            });
        if let Err(error) = thread {
            halt.store(true, Ordering::Relaxed);
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
        .map(|o| (o.name.clone(), OperationMetrics::default()))
        .collect();
    let mut per_second = Vec::new();
    let mut per_second_latency: Vec<Histogram<u64>> = Vec::new();
    let mut per_client = Vec::new();
    let mut missed = 0;
    let mut reconnects = 0;
    // Every client ends (a failed one stops the others) before the figures are read.
    let mut ended = Vec::with_capacity(clients.len());
    for client in clients {
        ended.push(client.await);
    }
    for figures in ended {
        let Ok(figures) = figures else {
            return Err(WorkloadError::Config {
                workload: info.name.clone(),
                problem: "a client thread ended without its figures".to_owned(),
            });
        };
        let figures = figures?;
        missed += figures.missed;
        reconnects += figures.reconnects;
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
        reconnects,
    })
}

/// The seed of the stream called `name` within a run seeded `seed` (FNV-1a of the
/// name, mixed into the seed): the loads of a run, each named, draw streams of their
/// own that the run's seed replays.
///
/// # Example
/// ```
/// use stormchor_workloads::stream_seed;
///
/// assert_eq!(stream_seed(7, "Worker(0)#0"), stream_seed(7, "Worker(0)#0"));
/// assert_ne!(stream_seed(7, "Worker(0)#0"), stream_seed(7, "Worker(1)#0"));
/// ```
pub fn stream_seed(seed: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    seed ^ hash
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

async fn client_loop(plan: ClientPlan) -> Result<ClientFigures, WorkloadError> {
    let config = &*plan.config;
    let (started, pacing) = (plan.started, plan.pacing);
    let record = config.record_latency || pacing.is_some();
    let mut rng = SmallRng::seed_from_u64(config.seed.wrapping_add(plan.client as u64));
    let mut figures = ClientFigures {
        operations: plan
            .weights
            .iter()
            .map(|_| OperationMetrics::default())
            .collect(),
        per_second: Vec::new(),
        per_second_latency: Vec::new(),
        missed: 0,
        reconnects: 0,
    };
    // The first connection is tried its number of times whatever the duration: a run
    // that never reached its server fails, it does not end empty.
    let first_attempts = config.reconnect_attempts.unwrap_or(0);
    let Some((mut session, mut connection)) = plan.open(first_attempts, None).await? else {
        return Ok(figures);
    };
    // A lost connection is tried again until the end of the run (a run without one:
    // `UNBOUNDED_RUN_RECONNECTS` times), unless bounded.
    let attempts = config.reconnect_attempts.unwrap_or(match plan.deadline {
        Some(_) => u32::MAX,
        None => UNBOUNDED_RUN_RECONNECTS,
    });
    // An open loop's schedule starts once its connection is ready and lasts the whole
    // duration: the time to connect is neither operations missed nor a shorter run.
    let (schedule, deadline) = match pacing {
        Some(_) => {
            let now = Instant::now();
            let end = plan.deadline.map(|deadline| {
                now.checked_add(deadline.saturating_duration_since(started))
                    .unwrap_or(deadline)
            });
            (now.max(started), end)
        }
        None => (started, plan.deadline),
    };
    let mut slot: u64 = 0;
    let mut done: u64 = 0;
    let mut after_reconnect = false;
    // One clock read per operation: the end of one is the start of the next.
    let mut now = Instant::now();
    loop {
        // When this operation is due: now (closed loop) or at its slot (open loop).
        if plan.stopped() || config.operations.is_some_and(|limit| done >= limit) {
            break;
        }
        let due = match pacing {
            None if reached(deadline, now) => break,
            None => None,
            Some((interval, offset)) => {
                let Some(due) = due_at(schedule, offset, interval, slot) else {
                    break;
                };
                // The schedule ends at the deadline, and so does the run: an operation
                // due before it that could not start by then is missed, not run late.
                if reached(deadline, due) || reached(deadline, Instant::now()) {
                    break;
                }
                slot += 1;
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                Some(due)
            }
        };
        let mut draw = rng.random_range(0..plan.total);
        let operation = plan
            .weights
            .iter()
            .position(|w| {
                let hit = draw < u64::from(*w);
                draw = draw.saturating_sub(u64::from(*w));
                hit
            })
            .unwrap_or(0);
        let began = due.unwrap_or(now);
        let outcome = if config.pipeline {
            connection
                .drive(session.run_pipelined(operation, &mut rng))
                .await
        } else {
            connection.drive(session.run(operation, &mut rng)).await
        };
        now = Instant::now();
        done += 1;
        if let Some(observer) = &config.observer {
            (observer.0)(OperationDone {
                client: plan.client,
                index: operation,
                operation: &plan.names[operation],
                ok: outcome.is_ok(),
                latency: now.saturating_duration_since(began),
                after_reconnect: std::mem::take(&mut after_reconnect),
            });
        }
        let metrics = &mut figures.operations[operation];
        match outcome {
            Ok(()) => {
                metrics.count += 1;
                let second = now.saturating_duration_since(started).as_secs() as usize;
                if figures.per_second.len() <= second {
                    // A second is over: show its latencies live.
                    if let (Some(live), Some(last)) =
                        (&config.live, figures.per_second_latency.last())
                    {
                        live.add_second(last);
                    }
                    figures.per_second.resize(second + 1, 0);
                    figures
                        .per_second_latency
                        .resize_with(second + 1, second_histogram);
                }
                if let Some(live) = &config.live {
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
                // An operation can fail otherwise once its connection is gone (an action
                // that catches the lost connection's error and raises its own).
                let lost = error.is_connection_lost() || connection.is_closed();
                let code = error.sqlstate.unwrap_or_else(|| "connection".to_owned());
                *metrics.errors.entry(code).or_insert(0) += 1;
                if let Some(live) = &config.live {
                    live.failures.fetch_add(1, Ordering::Relaxed);
                }
                if lost {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    match plan.open(attempts, deadline).await? {
                        Some((reopened, driver)) => {
                            session = reopened;
                            connection = driver;
                            figures.reconnects += 1;
                            after_reconnect = true;
                        }
                        // The run ended while the server was away.
                        None => return Ok(figures.end(pacing, schedule, deadline, slot)),
                    }
                    now = Instant::now();
                }
            }
        }
    }
    // Dropping the session drops its client: the connection then says goodbye to the
    // server (Terminate) and ends, within a bound.
    drop(session);
    connection.close().await;
    Ok(figures.end(pacing, schedule, deadline, slot))
}

impl ClientFigures {
    /// The figures of a client that stopped at slot `slot` of its schedule (an open
    /// loop: what was due by the end and not run is missed).
    fn end(
        mut self,
        pacing: Option<(Duration, Duration)>,
        schedule: Instant,
        deadline: Option<Instant>,
        slot: u64,
    ) -> Self {
        if let Some((interval, offset)) = pacing {
            let now = Instant::now();
            let end = deadline.map_or(now, |deadline| now.min(deadline));
            self.missed = due_before(schedule, offset, interval, end).saturating_sub(slot);
        }
        self
    }
}

/// Whether `at` is at or past the deadline (never, without one).
fn reached(deadline: Option<Instant>, at: Instant) -> bool {
    deadline.is_some_and(|deadline| at >= deadline)
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

impl ClientPlan {
    /// The run is to end now: stopped by its caller, or another client failed.
    fn stopped(&self) -> bool {
        self.config.stop.load(Ordering::Relaxed) || self.halt.load(Ordering::Relaxed)
    }

    /// A session on a new connection, tried again [`RECONNECT_PAUSE`] apart up to
    /// `attempts` times; `None` when the run is stopped or reaches its deadline first.
    async fn open(
        &self,
        attempts: u32,
        deadline: Option<Instant>,
    ) -> Result<Option<(Box<dyn super::WorkloadSession>, Driver)>, WorkloadError> {
        let target = stormchor_postgres::redact(&self.connection_string);
        let mut failed: u32 = 0;
        loop {
            let error = match connect(&self.connection_string).await {
                Ok(connection) => {
                    let (client, connection) = connection;
                    let mut driver = Driver::new(connection);
                    let session = driver.drive(self.workload.session(client)).await?;
                    return Ok(Some((session, driver)));
                }
                Err(error) => error,
            };
            if failed >= attempts {
                let tries = match attempts {
                    0 => String::new(),
                    _ => format!(" after {} attempts", u64::from(failed) + 1),
                };
                return Err(WorkloadError::Sql {
                    workload: self.workload.info().name,
                    what: format!("connecting client {} to `{target}`{tries}", self.client),
                    error,
                });
            }
            failed += 1;
            let now = Instant::now();
            let pause = deadline.map_or(RECONNECT_PAUSE, |deadline| {
                RECONNECT_PAUSE.min(deadline.saturating_duration_since(now))
            });
            tokio::time::sleep(pause).await;
            if self.stopped() || reached(deadline, Instant::now()) {
                return Ok(None);
            }
        }
    }
}

/// A new connection to `connection_string`, not yet driven.
async fn connect(connection_string: &str) -> Result<(Client, Connection), SqlError> {
    stormchor_postgres::connect_raw(connection_string)
        .await
        .map_err(|error| match error {
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
        })
}
