//! Middleware: handlers that wrap another handler and add one concern each.
//!
//! Every layer implements [`ChoreoHandler`] by delegating to the handler it wraps, so
//! layers stack in any order: `Traced::new(Retry::new(Metered::new(endpoint, ..), ..))`.
//! Effects started in the background (`ext start`) go through the layers too: each
//! wraps the started effect's run ([`ChoreoHandler::start_extension`]) and sees its
//! finish ([`ChoreoHandler::finish_extension`]).
//!
//! - [`Traced`]: a `tracing` span for every operation, with the role and the peer or
//!   effect;
//! - [`Retry`]: retries extension effects whose error is transient, a bounded number of
//!   times, with exponential backoff and jitter;
//! - [`Metered`]: counts and total durations of sends, receives and extension effects;
//! - [`Faulty`]: seeded fault injection (delays, dropped messages, a crash after some
//!   operations) that replays identically with the same seed;
//! - [`Recording`]: the sequence of frames and effects, for tests to assert on.
//!
//! The first four have a [`Layer`] each ([`TraceLayer`], [`RetryLayer`],
//! [`MetricsLayer`], [`FaultLayer`]), to stack with [`Layers`](crate::Layers) for any
//! runner.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stormchor_choreography::{Extension, Message, RoleId};
use tracing::Instrument;

use crate::handler::{Channels, ChoreoHandler, ExtOutcome, RunError, RunErrorKind, StartedRun};
use crate::layer::Layer;
use crate::registry::{ExtValue, ExtensionRegistry};
use crate::transport::Frame;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `split` and `join` for a layer whose only state besides `inner` is shared
/// (cloned into every part).
macro_rules! split_join {
    ($layer:ident { $($shared:ident),* }) => {
        fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
            Ok(self
                .inner
                .split(parts)?
                .into_iter()
                .map(|inner| $layer { inner, $($shared: self.$shared.clone()),* })
                .collect())
        }

        fn join(&mut self, parts: Vec<Self>) {
            self.inner.join(parts.into_iter().map(|part| part.inner).collect());
        }
    };
}

// ---------------------------------------------------------------- tracing

/// A `tracing` span around every operation, named after it, with the role and the
/// peer or effect as fields.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, ChoreoHandler, Traced};
///
/// let (mut endpoints, _) = memory_mesh::<&str, u8>(&["a", "b"]);
/// let traced = Traced::new(endpoints.remove(0));
/// assert_eq!(traced.role(), "a");
/// ```
#[derive(Debug)]
pub struct Traced<H> {
    inner: H,
}

impl<H> Traced<H> {
    /// Traces `inner`.
    pub fn new(inner: H) -> Self {
        Traced { inner }
    }

    /// The wrapped handler.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<R: RoleId, M: Message, H: ChoreoHandler<R, M>> ChoreoHandler<R, M> for Traced<H> {
    fn role(&self) -> R {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let span = tracing::debug_span!("send", role = ?self.inner.role(), to = ?to);
        self.inner.send_frame(to, frame).instrument(span).await
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        let span = tracing::debug_span!("recv", role = ?self.inner.role(), from = ?from);
        self.inner.recv_frame(from).instrument(span).await
    }

    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        registry: &'a ExtensionRegistry<E>,
        env: &'a E,
        effect: &'a Extension,
    ) -> Result<Option<ExtValue>, RunError> {
        let span =
            tracing::info_span!("ext", role = ?self.inner.role(), effect = effect.type_name());
        let result = self
            .inner
            .extension(registry, env, effect)
            .instrument(span.clone())
            .await;
        if let Err(error) = &result {
            span.in_scope(|| tracing::warn!(%error, "extension effect failed"));
        }
        result
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        registry: &'s ExtensionRegistry<E>,
        env: &'s E,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let span = tracing::info_span!(
            "ext start",
            role = ?self.inner.role(),
            effect = effect.type_name()
        );
        self.inner
            .start_extension(registry, env, effect)
            .map(move |attempt| {
                let span = span.clone();
                Box::pin(async move {
                    let result = attempt.instrument(span.clone()).await;
                    if let Err(error) = &result {
                        span.in_scope(|| tracing::warn!(%error, "started extension effect failed"));
                    }
                    result
                })
            })
    }

    async fn finish_extension<'a>(
        &'a mut self,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        let span = tracing::info_span!(
            "ext finish",
            role = ?self.inner.role(),
            effect = effect.type_name()
        );
        self.inner
            .finish_extension(effect, outcome)
            .instrument(span)
            .await
    }

    split_join!(Traced {});
}

/// The [`Layer`] of [`Traced`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<R, H> Layer<R, H> for TraceLayer {
    type Handler = Traced<H>;

    fn layer(&self, _role: R, inner: H) -> Traced<H> {
        Traced::new(inner)
    }
}

// ---------------------------------------------------------------- retry

/// How [`Retry`] retries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; it doubles after each.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// The seed of the jitter, for replayable runs.
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            seed: 0,
        }
    }
}

/// Retries extension effects that fail with a transient error.
///
/// Each wait is the backoff (doubling from `initial_backoff`, capped at `max_backoff`)
/// times a random factor between 0.5 and 1.5 drawn from the seeded generator.
/// Messages are never retried: a lost message is a protocol failure, not a hiccup.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_runtime::{memory_mesh, Retry, RetryPolicy};
///
/// let (mut endpoints, _) = memory_mesh::<&str, u8>(&["a"]);
/// let policy = RetryPolicy { attempts: 5, initial_backoff: Duration::from_millis(1), ..RetryPolicy::default() };
/// let retrying = Retry::new(endpoints.remove(0), policy);
/// assert_eq!(retrying.retries(), 0);
/// ```
#[derive(Debug)]
pub struct Retry<H> {
    inner: H,
    policy: RetryPolicy,
    rng: SmallRng,
    retries: u64,
    /// Retries of started effects, which run apart from the handler (shared with
    /// the parts of a `par`).
    started_retries: Arc<AtomicU64>,
}

impl<H> Retry<H> {
    /// Retries `inner`'s extension effects according to `policy`.
    pub fn new(inner: H, policy: RetryPolicy) -> Self {
        let rng = SmallRng::seed_from_u64(policy.seed);
        Retry {
            inner,
            policy,
            rng,
            retries: 0,
            started_retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many retries this handler made (of started effects too).
    pub fn retries(&self) -> u64 {
        self.retries + self.started_retries.load(Ordering::Relaxed)
    }
}

impl<R: RoleId, M: Message, H: ChoreoHandler<R, M>> ChoreoHandler<R, M> for Retry<H> {
    fn role(&self) -> R {
        self.inner.role()
    }

    fn send_frame(
        &mut self,
        to: R,
        frame: Frame<M>,
    ) -> impl Future<Output = Result<(), RunError>> + Send {
        self.inner.send_frame(to, frame)
    }

    fn recv_frame(&mut self, from: R) -> impl Future<Output = Result<Frame<M>, RunError>> + Send {
        self.inner.recv_frame(from)
    }

    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        registry: &'a ExtensionRegistry<E>,
        env: &'a E,
        effect: &'a Extension,
    ) -> Result<Option<ExtValue>, RunError> {
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let result = self.inner.extension(registry, env, effect).await;
            if !transient(&result) || attempt >= self.policy.attempts.max(1) {
                return result;
            }
            let factor: f64 = self.rng.random_range(0.5..1.5);
            tokio::time::sleep(backoff.mul_f64(factor)).await;
            backoff = (backoff * 2).min(self.policy.max_backoff);
            attempt += 1;
            self.retries += 1;
        }
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        registry: &'s ExtensionRegistry<E>,
        env: &'s E,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let run = self.inner.start_extension(registry, env, effect);
        let policy = self.policy.clone();
        let seed = self.rng.random::<u64>();
        let counter = self.started_retries.clone();
        StartedRun::new(move || {
            let (run, policy, counter) = (run.clone(), policy.clone(), counter.clone());
            let attempts: BoxFuture<'s, ExtOutcome> = Box::pin(async move {
                let mut rng = SmallRng::seed_from_u64(seed);
                let mut retries = 0;
                let result = retrying(&policy, &mut rng, &mut retries, || run.run()).await;
                counter.fetch_add(retries, Ordering::Relaxed);
                result
            });
            attempts
        })
    }

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        let policy = self.policy.clone();
        let mut seed = self.rng.random::<u64>();
        Ok(self
            .inner
            .split(parts)?
            .into_iter()
            .map(|inner| {
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut part = Retry::new(
                    inner,
                    RetryPolicy {
                        seed,
                        ..policy.clone()
                    },
                );
                part.started_retries = self.started_retries.clone();
                part
            })
            .collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.retries += parts.iter().map(|p| p.retries).sum::<u64>();
        self.inner
            .join(parts.into_iter().map(|part| part.inner).collect());
    }
}

/// Whether an extension effect failed with a transient error.
fn transient(result: &ExtOutcome) -> bool {
    matches!(result, Err(e) if matches!(e.kind(), RunErrorKind::Extension(x) if x.is_transient()))
}

/// Runs `attempt` until it succeeds, fails for good, or `policy`'s attempts are
/// spent, waiting between attempts; counts the retries into `retries`.
async fn retrying<F: Future<Output = ExtOutcome>>(
    policy: &RetryPolicy,
    rng: &mut SmallRng,
    retries: &mut u64,
    mut attempt: impl FnMut() -> F,
) -> ExtOutcome {
    let mut backoff = policy.initial_backoff;
    let mut tried = 1;
    loop {
        let result = attempt().await;
        if !transient(&result) || tried >= policy.attempts.max(1) {
            return result;
        }
        let factor: f64 = rng.random_range(0.5..1.5);
        tokio::time::sleep(backoff.mul_f64(factor)).await;
        backoff = (backoff * 2).min(policy.max_backoff);
        tried += 1;
        *retries += 1;
    }
}

/// The [`Layer`] of [`Retry`]: every role retries with `policy`.
#[derive(Clone, Debug, Default)]
pub struct RetryLayer(pub RetryPolicy);

impl<R, H> Layer<R, H> for RetryLayer {
    type Handler = Retry<H>;

    fn layer(&self, _role: R, inner: H) -> Retry<H> {
        Retry::new(inner, self.0.clone())
    }
}

// ---------------------------------------------------------------- metrics

/// Count and total time of one kind of operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpStats {
    /// How many.
    pub count: u64,
    /// How many failed.
    pub errors: u64,
    /// Time spent in all.
    pub total: Duration,
}

/// What [`Metered`] measured, shared by all layers of one run.
#[derive(Debug, Default)]
pub struct Metrics {
    ops: Mutex<BTreeMap<String, OpStats>>,
}

impl Metrics {
    /// Empty metrics, to share between handlers.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    /// The figures so far, by operation (`send`, `recv`, `ext <Type>`).
    pub fn snapshot(&self) -> BTreeMap<String, OpStats> {
        lock(&self.ops).clone()
    }

    fn record(&self, op: &str, took: Duration, ok: bool) {
        let mut ops = lock(&self.ops);
        let stats = ops.entry(op.to_owned()).or_default();
        stats.count += 1;
        stats.errors += u64::from(!ok);
        stats.total += took;
    }
}

/// Counts and times every send, receive and extension effect into shared [`Metrics`].
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, ChoreoHandler, Metered, Metrics};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let metrics = Metrics::new();
///     let (mut endpoints, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let mut b = Metered::new(endpoints.pop().expect("b"), metrics.clone());
///     let mut a = Metered::new(endpoints.pop().expect("a"), metrics.clone());
///     a.send("b", 1).await.expect("sent");
///     b.recv("a").await.expect("received");
///     let figures = metrics.snapshot();
///     assert_eq!((figures["send"].count, figures["recv"].count), (1, 1));
/// });
/// ```
#[derive(Debug)]
pub struct Metered<H> {
    inner: H,
    metrics: Arc<Metrics>,
}

impl<H> Metered<H> {
    /// Measures `inner` into `metrics`.
    pub fn new(inner: H, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics }
    }
}

impl<R: RoleId, M: Message, H: ChoreoHandler<R, M>> ChoreoHandler<R, M> for Metered<H> {
    fn role(&self) -> R {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let started = Instant::now();
        let result = self.inner.send_frame(to, frame).await;
        self.metrics
            .record("send", started.elapsed(), result.is_ok());
        result
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        let started = Instant::now();
        let result = self.inner.recv_frame(from).await;
        self.metrics
            .record("recv", started.elapsed(), result.is_ok());
        result
    }

    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        registry: &'a ExtensionRegistry<E>,
        env: &'a E,
        effect: &'a Extension,
    ) -> Result<Option<ExtValue>, RunError> {
        let started = Instant::now();
        let result = self.inner.extension(registry, env, effect).await;
        self.metrics.record(
            &format!("ext {}", effect.type_name()),
            started.elapsed(),
            result.is_ok(),
        );
        result
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        registry: &'s ExtensionRegistry<E>,
        env: &'s E,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let metrics = self.metrics.clone();
        let op = format!("ext {}", effect.type_name());
        self.inner
            .start_extension(registry, env, effect)
            .map(move |attempt| {
                let (metrics, op) = (metrics.clone(), op.clone());
                Box::pin(async move {
                    let started = Instant::now();
                    let result = attempt.await;
                    metrics.record(&op, started.elapsed(), result.is_ok());
                    result
                })
            })
    }

    async fn finish_extension<'a>(
        &'a mut self,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        let started = Instant::now();
        let result = self.inner.finish_extension(effect, outcome).await;
        self.metrics.record(
            &format!("finish {}", effect.type_name()),
            started.elapsed(),
            result.is_ok(),
        );
        result
    }

    split_join!(Metered { metrics });
}

/// The [`Layer`] of [`Metered`]: every role measures into the same [`Metrics`].
#[derive(Clone, Debug)]
pub struct MetricsLayer(Arc<Metrics>);

impl MetricsLayer {
    /// Measures every role into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        MetricsLayer(metrics)
    }
}

impl<R, H> Layer<R, H> for MetricsLayer {
    type Handler = Metered<H>;

    fn layer(&self, _role: R, inner: H) -> Metered<H> {
        Metered::new(inner, self.0.clone())
    }
}

// ---------------------------------------------------------------- faults

/// Which faults [`Faulty`] injects. Probabilities are per send.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// The seed; the same seed injects the same faults at the same operations.
    pub seed: u64,
    /// Probability that a send is delayed.
    pub delay: f64,
    /// The longest delay.
    pub max_delay: Duration,
    /// Probability that a message is silently dropped.
    pub drop: f64,
    /// The role crashes (fails) at this operation (counted from 1), if set.
    pub crash_at: Option<u64>,
}

/// A fault that [`Faulty`] injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A send to `to` was delayed.
    Delayed {
        /// The operation number.
        op: u64,
        /// The peer.
        to: String,
        /// The delay.
        by: Duration,
    },
    /// A frame to `to` was dropped.
    Dropped {
        /// The operation number.
        op: u64,
        /// The peer.
        to: String,
    },
    /// The role crashed.
    Crashed {
        /// The operation number.
        op: u64,
    },
}

/// Injects seeded faults into a role's operations: delays and drops on sends, and a
/// crash at a chosen operation. Every role draws from its own generator, derived from
/// the plan's seed and the role, so a failing run replays with the same seed.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, ChoreoHandler, FaultPlan, Faulty};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut endpoints, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let plan = FaultPlan { seed: 7, crash_at: Some(2), ..FaultPlan::default() };
///     let mut a = Faulty::new(endpoints.remove(0), plan);
///     assert!(a.send("b", 1).await.is_ok());
///     assert!(a.send("b", 2).await.is_err(), "crashes at the second operation");
///     assert_eq!(a.faults().len(), 1);
/// });
/// ```
#[derive(Debug)]
pub struct Faulty<H> {
    inner: H,
    plan: FaultPlan,
    rng: SmallRng,
    op: u64,
    log: Arc<Mutex<Vec<Fault>>>,
}

impl<H> Faulty<H> {
    /// Injects the faults of `plan` into `inner`.
    pub fn new<R: RoleId, M: Message>(inner: H, plan: FaultPlan) -> Self
    where
        H: ChoreoHandler<R, M>,
    {
        let role = inner.role();
        Faulty::for_role(inner, plan, &role)
    }

    /// [`Faulty::new`] for a handler of `role` (the role seeds its generator).
    pub fn for_role(inner: H, plan: FaultPlan, role: &impl std::hash::Hash) -> Self {
        let mut hasher = DefaultHasher::new();
        role.hash(&mut hasher);
        let rng = SmallRng::seed_from_u64(plan.seed ^ hasher.finish());
        Faulty {
            inner,
            plan,
            rng,
            op: 0,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The faults injected so far.
    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.log).clone()
    }

    /// A handle on the log of injected faults, which outlives the handler.
    pub fn fault_log(&self) -> Arc<Mutex<Vec<Fault>>> {
        self.log.clone()
    }

    fn next_op(&mut self) -> Result<u64, RunError> {
        self.op += 1;
        if self.plan.crash_at == Some(self.op) {
            lock(&self.log).push(Fault::Crashed { op: self.op });
            return Err(RunErrorKind::Injected(format!("crash at operation {}", self.op)).into());
        }
        Ok(self.op)
    }
}

impl<R: RoleId, M: Message, H: ChoreoHandler<R, M>> ChoreoHandler<R, M> for Faulty<H> {
    fn role(&self) -> R {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let op = self.next_op()?;
        if self.plan.delay > 0.0 && self.rng.random_bool(self.plan.delay.clamp(0.0, 1.0)) {
            let by = self.plan.max_delay.mul_f64(self.rng.random_range(0.0..1.0));
            lock(&self.log).push(Fault::Delayed {
                op,
                to: format!("{to:?}"),
                by,
            });
            tokio::time::sleep(by).await;
        }
        if self.plan.drop > 0.0 && self.rng.random_bool(self.plan.drop.clamp(0.0, 1.0)) {
            lock(&self.log).push(Fault::Dropped {
                op,
                to: format!("{to:?}"),
            });
            return Ok(());
        }
        self.inner.send_frame(to, frame).await
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        self.next_op()?;
        self.inner.recv_frame(from).await
    }

    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        registry: &'a ExtensionRegistry<E>,
        env: &'a E,
        effect: &'a Extension,
    ) -> Result<Option<ExtValue>, RunError> {
        self.next_op()?;
        self.inner.extension(registry, env, effect).await
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        registry: &'s ExtensionRegistry<E>,
        env: &'s E,
        effect: &Extension,
    ) -> StartedRun<'s> {
        // A start is one operation: a crash there fails the started effect at once.
        match self.next_op() {
            Ok(_) => self.inner.start_extension(registry, env, effect),
            Err(error) => {
                let reason = error.to_string();
                StartedRun::new(move || {
                    let crash = RunError::from(RunErrorKind::Injected(
                        reason.trim_start_matches("injected fault: ").to_owned(),
                    ));
                    Box::pin(std::future::ready(Err(crash)))
                })
            }
        }
    }

    async fn finish_extension<'a>(
        &'a mut self,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        self.next_op()?;
        self.inner.finish_extension(effect, outcome).await
    }

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        let mut seed = self.rng.random::<u64>();
        let (plan, log) = (self.plan.clone(), self.log.clone());
        Ok(self
            .inner
            .split(parts)?
            .into_iter()
            .map(|inner| {
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                Faulty {
                    inner,
                    plan: FaultPlan {
                        // Parts count their own operations; only the whole role crashes.
                        crash_at: None,
                        ..plan.clone()
                    },
                    rng: SmallRng::seed_from_u64(seed),
                    op: 0,
                    log: log.clone(),
                }
            })
            .collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.inner
            .join(parts.into_iter().map(|part| part.inner).collect());
    }
}

/// The [`Layer`] of [`Faulty`]: every role injects the faults of the plan, each from
/// its own generator.
#[derive(Clone, Debug, Default)]
pub struct FaultLayer(pub FaultPlan);

impl<R: std::hash::Hash, H> Layer<R, H> for FaultLayer {
    type Handler = Faulty<H>;

    fn layer(&self, role: R, inner: H) -> Faulty<H> {
        Faulty::for_role(inner, self.0.clone(), &role)
    }
}

// ---------------------------------------------------------------- recording

/// One operation seen by [`Recording`].
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded<R> {
    /// A frame sent to a peer, described.
    Sent(R, String),
    /// A frame received from a peer, described.
    Received(R, String),
    /// An extension effect carried out, by type name (for a started one: when its
    /// run ended, which may be before or after later steps of the role).
    Ext(&'static str),
    /// An extension effect started in the background (`ext start`), by type name.
    Started(&'static str),
    /// The finish of a started extension effect (`ext finish`), by type name.
    Finished(&'static str),
}

/// Records every frame sent and received and every extension effect, for tests to
/// assert on the exact sequence.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, ChoreoHandler, Recorded, Recording};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut endpoints, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let mut b = endpoints.pop().expect("b");
///     let mut a = Recording::new(endpoints.pop().expect("a"));
///     a.send("b", 7).await.expect("sent");
///     b.recv("a").await.expect("received");
///     assert_eq!(a.events(), vec![Recorded::Sent("b", "message 7".to_owned())]);
/// });
/// ```
#[derive(Debug)]
pub struct Recording<R, H> {
    inner: H,
    log: Arc<Mutex<Vec<Recorded<R>>>>,
}

impl<R: Clone, H> Recording<R, H> {
    /// Records what `inner` does.
    pub fn new(inner: H) -> Self {
        Recording {
            inner,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// What was recorded so far, in order.
    pub fn events(&self) -> Vec<Recorded<R>> {
        lock(&self.log).clone()
    }

    /// A handle on the log, which outlives the handler.
    pub fn log(&self) -> Arc<Mutex<Vec<Recorded<R>>>> {
        self.log.clone()
    }
}

impl<R: RoleId, M: Message, H: ChoreoHandler<R, M>> ChoreoHandler<R, M> for Recording<R, H> {
    fn role(&self) -> R {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let description = frame.describe();
        self.inner.send_frame(to, frame).await?;
        lock(&self.log).push(Recorded::Sent(to, description));
        Ok(())
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        let frame = self.inner.recv_frame(from).await?;
        lock(&self.log).push(Recorded::Received(from, frame.describe()));
        Ok(frame)
    }

    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        registry: &'a ExtensionRegistry<E>,
        env: &'a E,
        effect: &'a Extension,
    ) -> Result<Option<ExtValue>, RunError> {
        let value = self.inner.extension(registry, env, effect).await?;
        lock(&self.log).push(Recorded::Ext(effect.type_name()));
        Ok(value)
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        registry: &'s ExtensionRegistry<E>,
        env: &'s E,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let name = effect.type_name();
        lock(&self.log).push(Recorded::Started(name));
        let log = self.log.clone();
        self.inner
            .start_extension(registry, env, effect)
            .map(move |attempt| {
                let log = log.clone();
                Box::pin(async move {
                    let value = attempt.await?;
                    lock(&log).push(Recorded::Ext(name));
                    Ok(value)
                })
            })
    }

    async fn finish_extension<'a>(
        &'a mut self,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        let value = self.inner.finish_extension(effect, outcome).await?;
        lock(&self.log).push(Recorded::Finished(effect.type_name()));
        Ok(value)
    }

    split_join!(Recording { log });
}
