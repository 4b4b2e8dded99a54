//! Middleware: wrappers around one side of a role's [`Handler`], or both, each adding
//! one concern.
//!
//! A wrapper of the transport side implements [`Transport`] by delegating to the
//! transport it wraps; a wrapper of the effect side implements [`Effects`] the same
//! way; a concern that touches both wraps each side with the same type (sharing what
//! it must through an `Arc`). So a layer implements only the side it changes, and
//! layers stack in any order. Effects started in the background (`ext start`) go
//! through the effect side too: each layer wraps the started effect's run
//! ([`Effects::start_extension`]) and sees its finish ([`Effects::finish_extension`]).
//!
//! - [`Traced`] (both sides): a `tracing` span for every operation, with the role and
//!   the peer or effect;
//! - [`Retry`] (effects): retries extension effects whose error is transient, a bounded
//!   number of times, with exponential backoff and jitter;
//! - [`Metered`] (both): counts and total durations of sends, receives and extension
//!   effects;
//! - [`Faulty`] (both): seeded fault injection (delays, dropped messages, a crash after
//!   some operations) that replays identically with the same seed;
//! - [`Recording`] (both): the sequence of frames and effects, for tests to assert on.
//!
//! The first four have a [`Layer`] each ([`TraceLayer`], [`RetryLayer`],
//! [`MetricsLayer`], [`FaultLayer`]), to stack with [`Layers`](crate::Layers) for any
//! runner.

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stormchor_choreography::{Extension, Message, RoleId};
use tracing::Instrument;

use crate::effects::{EffectContext, Effects, ExtOutcome, StartedRun};
use crate::handler::{Handler, RunError, RunErrorKind};
use crate::layer::Layer;
use crate::sync::lock;
use crate::transport::{Channels, Frame, Transport};

/// Added to a seed for each part of a `par`, so parts draw different numbers.
const PART_SEED_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

// ---------------------------------------------------------------- tracing

/// A `tracing` span around every operation, named after it (`send`, `recv`, `ext`,
/// `ext start`, `ext finish`), with the role and the peer or effect as fields. Wraps
/// a transport, an effect side, or both ([`TraceLayer`]).
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, Layer, TraceLayer, Traced, Transport};
///
/// let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
/// // Both sides, as a layer does; `map_transport(Traced::new)` for one.
/// let traced = TraceLayer.layer("a", handlers.remove(0));
/// assert_eq!(traced.transport.role(), "a");
/// # let _: &Traced<_> = &traced.effects;
/// ```
#[derive(Debug)]
pub struct Traced<X> {
    inner: X,
}

impl<X> Traced<X> {
    /// Traces `inner` (one side of a handler).
    pub fn new(inner: X) -> Self {
        Traced { inner }
    }

    /// The wrapped side.
    pub fn into_inner(self) -> X {
        self.inner
    }
}

impl<R: RoleId, M: Message, T: Transport<R, M>> Transport<R, M> for Traced<T> {
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

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        Ok(self
            .inner
            .split(parts)?
            .into_iter()
            .map(Traced::new)
            .collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.inner
            .join(parts.into_iter().map(Traced::into_inner).collect());
    }
}

impl<R: RoleId, X: Effects<R>> Effects<R> for Traced<X> {
    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        let span = tracing::info_span!("ext", role = ?context.role, effect = effect.type_name());
        let result = self
            .inner
            .extension(context, effect)
            .instrument(span.clone())
            .await;
        if let Err(error) = &result {
            span.in_scope(|| tracing::warn!(%error, "extension effect failed"));
        }
        result
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let span = tracing::info_span!(
            "ext start",
            role = ?context.role,
            effect = effect.type_name()
        );
        self.inner
            .start_extension(context, effect)
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
        role: R,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        let span = tracing::info_span!("ext finish", role = ?role, effect = effect.type_name());
        self.inner
            .finish_extension(role, effect, outcome)
            .instrument(span)
            .await
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        self.inner
            .fork(parts)
            .into_iter()
            .map(Traced::new)
            .collect()
    }
}

/// The [`Layer`] of [`Traced`], on both sides.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<R, T, E> Layer<R, Handler<T, E>> for TraceLayer {
    type Handler = Handler<Traced<T>, Traced<E>>;

    fn layer(&self, _role: R, inner: Handler<T, E>) -> Self::Handler {
        Handler::new(Traced::new(inner.transport), Traced::new(inner.effects))
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

/// Retries extension effects that fail with a transient error: an effect-side layer,
/// which leaves the transport alone (a lost message is a protocol failure, not a
/// hiccup).
///
/// Each wait is the backoff (doubling from `initial_backoff`, capped at `max_backoff`)
/// times a random factor between 0.5 and 1.5 drawn from the seeded generator.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_runtime::{memory_mesh, Retry, RetryPolicy};
///
/// let (mut handlers, _) = memory_mesh::<&str, u8>(&["a"]);
/// let policy = RetryPolicy { attempts: 5, initial_backoff: Duration::from_millis(1), ..RetryPolicy::default() };
/// let retrying = handlers.remove(0).map_effects(|effects| Retry::new(effects, policy));
/// assert_eq!(retrying.effects.retries(), 0);
/// ```
#[derive(Debug)]
pub struct Retry<X> {
    inner: X,
    policy: RetryPolicy,
    rng: SmallRng,
    /// Retries made, of whole and started effects, by this role and its parts.
    retries: Arc<AtomicU64>,
}

impl<X> Retry<X> {
    /// Retries the effects of `inner` (an effect side) according to `policy`.
    pub fn new(inner: X, policy: RetryPolicy) -> Self {
        let rng = SmallRng::seed_from_u64(policy.seed);
        Retry {
            inner,
            policy,
            rng,
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many retries this role made (of started effects and in `par` parts too).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

impl<R: RoleId, X: Effects<R>> Effects<R> for Retry<X> {
    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        let mut backoff = Backoff::new(&self.policy);
        loop {
            let result = self.inner.extension(context, effect).await;
            let Some(wait) = backoff.after(&result, &mut self.rng) else {
                return result;
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let run = self.inner.start_extension(context, effect);
        let policy = self.policy.clone();
        let seed = self.rng.random::<u64>();
        let retries = self.retries.clone();
        StartedRun::new(move || {
            let (run, policy, retries) = (run.clone(), policy.clone(), retries.clone());
            Box::pin(async move {
                let mut rng = SmallRng::seed_from_u64(seed);
                let mut backoff = Backoff::new(&policy);
                loop {
                    let result = run.run().await;
                    let Some(wait) = backoff.after(&result, &mut rng) else {
                        return result;
                    };
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
            })
        })
    }

    fn finish_extension<'a>(
        &'a mut self,
        role: R,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> impl Future<Output = ExtOutcome> + Send + 'a {
        self.inner.finish_extension(role, effect, outcome)
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        let mut seed = self.rng.random::<u64>();
        self.inner
            .fork(parts)
            .into_iter()
            .map(|inner| {
                seed = seed.wrapping_add(PART_SEED_STEP);
                Retry {
                    inner,
                    policy: self.policy.clone(),
                    rng: SmallRng::seed_from_u64(seed),
                    retries: self.retries.clone(),
                }
            })
            .collect()
    }
}

/// The waits between the attempts of one effect under a [`RetryPolicy`].
struct Backoff<'p> {
    policy: &'p RetryPolicy,
    next: Duration,
    tried: u32,
}

impl<'p> Backoff<'p> {
    fn new(policy: &'p RetryPolicy) -> Self {
        Backoff {
            policy,
            next: policy.initial_backoff,
            tried: 1,
        }
    }

    /// The wait before the next attempt after `result`, or `None` to end with it: it
    /// succeeded, failed for good, or was the last attempt.
    fn after(&mut self, result: &ExtOutcome, rng: &mut SmallRng) -> Option<Duration> {
        let transient = matches!(
            result,
            Err(e) if matches!(e.kind(), RunErrorKind::Extension(x) if x.is_transient())
        );
        if !transient || self.tried >= self.policy.attempts.max(1) {
            return None;
        }
        let wait = self.next.mul_f64(rng.random_range(0.5..1.5));
        self.next = (self.next * 2).min(self.policy.max_backoff);
        self.tried += 1;
        Some(wait)
    }
}

/// The [`Layer`] of [`Retry`], on the effect side: every role retries with `policy`.
#[derive(Clone, Debug, Default)]
pub struct RetryLayer(pub RetryPolicy);

impl<R, T, E> Layer<R, Handler<T, E>> for RetryLayer {
    type Handler = Handler<T, Retry<E>>;

    fn layer(&self, _role: R, inner: Handler<T, E>) -> Self::Handler {
        inner.map_effects(|effects| Retry::new(effects, self.0.clone()))
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

    /// The figures so far, by operation (`send`, `recv`, `ext <Type>`,
    /// `finish <Type>`).
    pub fn snapshot(&self) -> BTreeMap<String, OpStats> {
        lock(&self.ops).clone()
    }

    fn record(&self, op: &str, took: Duration, ok: bool) {
        let mut ops = lock(&self.ops);
        let stats = match ops.get_mut(op) {
            Some(stats) => stats,
            None => ops.entry(op.to_owned()).or_default(),
        };
        stats.count += 1;
        stats.errors += u64::from(!ok);
        stats.total += took;
    }
}

/// Counts and times every send and receive (on the transport side) and every
/// extension effect (on the effect side) into shared [`Metrics`].
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, Layer, Metered, MetricsLayer, Metrics, Transport};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let metrics = Metrics::new();
///     let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     // Both sides, as the layer does; `Metered::new` wraps one.
///     let layer = MetricsLayer::new(metrics.clone());
///     let mut b = layer.layer("b", handlers.pop().expect("b"));
///     let mut a = handlers.pop().expect("a").map_transport(|t| Metered::new(t, metrics.clone()));
///     a.transport.send("b", 1).await.expect("sent");
///     b.transport.recv("a").await.expect("received");
///     let figures = metrics.snapshot();
///     assert_eq!((figures["send"].count, figures["recv"].count), (1, 1));
/// });
/// ```
#[derive(Debug)]
pub struct Metered<X> {
    inner: X,
    metrics: Arc<Metrics>,
}

impl<X> Metered<X> {
    /// Measures `inner` (one side of a handler) into `metrics`.
    pub fn new(inner: X, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics }
    }

    fn part(&self, inner: X) -> Self {
        Metered::new(inner, self.metrics.clone())
    }
}

impl<R: RoleId, M: Message, T: Transport<R, M>> Transport<R, M> for Metered<T> {
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

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        let split = self.inner.split(parts)?;
        Ok(split.into_iter().map(|inner| self.part(inner)).collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.inner
            .join(parts.into_iter().map(|part| part.inner).collect());
    }
}

impl<R: RoleId, X: Effects<R>> Effects<R> for Metered<X> {
    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        let started = Instant::now();
        let result = self.inner.extension(context, effect).await;
        let op = format!("ext {}", effect.type_name());
        self.metrics.record(&op, started.elapsed(), result.is_ok());
        result
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let metrics = self.metrics.clone();
        let op = format!("ext {}", effect.type_name());
        self.inner
            .start_extension(context, effect)
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
        role: R,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        let started = Instant::now();
        let result = self.inner.finish_extension(role, effect, outcome).await;
        let op = format!("finish {}", effect.type_name());
        self.metrics.record(&op, started.elapsed(), result.is_ok());
        result
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        let forked = self.inner.fork(parts);
        forked.into_iter().map(|inner| self.part(inner)).collect()
    }
}

/// The [`Layer`] of [`Metered`], on both sides: every role measures into the same
/// [`Metrics`].
#[derive(Clone, Debug)]
pub struct MetricsLayer(Arc<Metrics>);

impl MetricsLayer {
    /// Measures every role into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        MetricsLayer(metrics)
    }
}

impl<R, T, E> Layer<R, Handler<T, E>> for MetricsLayer {
    type Handler = Handler<Metered<T>, Metered<E>>;

    fn layer(&self, _role: R, inner: Handler<T, E>) -> Self::Handler {
        Handler::new(
            Metered::new(inner.transport, self.0.clone()),
            Metered::new(inner.effects, self.0.clone()),
        )
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
/// crash at a chosen operation (sends, receives and effects alike count). Every role
/// draws from its own generator, derived from the plan's seed and the role, so a
/// failing run replays with the same seed.
///
/// It wraps both sides of a handler ([`Faulty::around`], [`FaultLayer`]): the two
/// share one count of operations, and split together for the parts of a `par`.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, FaultPlan, Faulty, Transport};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let plan = FaultPlan { seed: 7, crash_at: Some(2), ..FaultPlan::default() };
///     let mut a = Faulty::around(handlers.remove(0), plan, &"a");
///     assert!(a.transport.send("b", 1).await.is_ok());
///     assert!(a.transport.send("b", 2).await.is_err(), "crashes at the second operation");
///     assert_eq!(a.effects.faults().len(), 1, "both sides share the log");
/// });
/// ```
#[derive(Debug)]
pub struct Faulty<X> {
    inner: X,
    core: Arc<FaultCore>,
}

/// What the two sides of a [`Faulty`] handler share.
#[derive(Debug)]
struct FaultCore {
    /// The plan (a part's never crashes: only the whole role does).
    plan: FaultPlan,
    /// The log, shared by the role's parts.
    log: Arc<Mutex<Vec<Fault>>>,
    state: Mutex<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    rng: SmallRng,
    /// Operations so far.
    op: u64,
    /// The cores of the parts of the last split, made by the transport side (which
    /// splits first) for the effect side to take.
    parts: Vec<Arc<FaultCore>>,
}

/// What a send suffers.
struct SendFaults {
    op: u64,
    delay: Option<Duration>,
    dropped: bool,
}

impl FaultCore {
    fn new(plan: FaultPlan, seed: u64, log: Arc<Mutex<Vec<Fault>>>) -> Arc<Self> {
        Arc::new(FaultCore {
            plan,
            log,
            state: Mutex::new(FaultState {
                rng: SmallRng::seed_from_u64(seed),
                op: 0,
                parts: Vec::new(),
            }),
        })
    }

    /// Counts an operation; fails it if the plan crashes the role there.
    fn next_op(&self) -> Result<u64, RunError> {
        let mut state = lock(&self.state);
        state.op += 1;
        let op = state.op;
        if self.plan.crash_at == Some(op) {
            lock(&self.log).push(Fault::Crashed { op });
            return Err(RunErrorKind::Injected(format!("crash at operation {op}")).into());
        }
        Ok(op)
    }

    /// Counts a send and draws its faults.
    fn on_send(&self) -> Result<SendFaults, RunError> {
        let op = self.next_op()?;
        let plan = &self.plan;
        let mut state = lock(&self.state);
        let delay = (plan.delay > 0.0 && state.rng.random_bool(plan.delay.clamp(0.0, 1.0)))
            .then(|| plan.max_delay.mul_f64(state.rng.random_range(0.0..1.0)));
        let dropped = plan.drop > 0.0 && state.rng.random_bool(plan.drop.clamp(0.0, 1.0));
        Ok(SendFaults { op, delay, dropped })
    }

    /// New cores for `parts` parts, kept for the effect side to take.
    fn split(&self, parts: usize) -> Vec<Arc<FaultCore>> {
        let mut state = lock(&self.state);
        let mut seed = state.rng.random::<u64>();
        let plan = FaultPlan {
            crash_at: None,
            ..self.plan.clone()
        };
        state.parts = (0..parts)
            .map(|_| {
                seed = seed.wrapping_add(PART_SEED_STEP);
                FaultCore::new(plan.clone(), seed, self.log.clone())
            })
            .collect();
        state.parts.clone()
    }

    /// The cores the transport side made for `parts` parts (new ones if it made none).
    fn take_parts(&self, parts: usize) -> Vec<Arc<FaultCore>> {
        let made = std::mem::take(&mut lock(&self.state).parts);
        if made.len() == parts {
            made
        } else {
            self.split(parts);
            std::mem::take(&mut lock(&self.state).parts)
        }
    }
}

impl Faulty<()> {
    /// Injects the faults of `plan` into both sides of `handler`, the handler of
    /// `role` (the role seeds the generator).
    pub fn around<T, E>(
        handler: Handler<T, E>,
        plan: FaultPlan,
        role: &impl Hash,
    ) -> Handler<Faulty<T>, Faulty<E>> {
        let mut hasher = DefaultHasher::new();
        role.hash(&mut hasher);
        let seed = plan.seed ^ hasher.finish();
        let core = FaultCore::new(plan, seed, Arc::default());
        Handler::new(
            Faulty {
                inner: handler.transport,
                core: core.clone(),
            },
            Faulty {
                inner: handler.effects,
                core,
            },
        )
    }
}

impl<X> Faulty<X> {
    /// The faults injected so far (by either side, and in `par` parts).
    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.core.log).clone()
    }

    /// A handle on the log of injected faults, which outlives the handler.
    pub fn fault_log(&self) -> Arc<Mutex<Vec<Fault>>> {
        self.core.log.clone()
    }
}

impl<R: RoleId, M: Message, T: Transport<R, M>> Transport<R, M> for Faulty<T> {
    fn role(&self) -> R {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let SendFaults { op, delay, dropped } = self.core.on_send()?;
        if let Some(by) = delay {
            let to = format!("{to:?}");
            lock(&self.core.log).push(Fault::Delayed { op, to, by });
            tokio::time::sleep(by).await;
        }
        if dropped {
            let to = format!("{to:?}");
            lock(&self.core.log).push(Fault::Dropped { op, to });
            return Ok(());
        }
        self.inner.send_frame(to, frame).await
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        self.core.next_op()?;
        self.inner.recv_frame(from).await
    }

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        let cores = self.core.split(parts.len());
        let split = self.inner.split(parts)?;
        Ok(split
            .into_iter()
            .zip(cores)
            .map(|(inner, core)| Faulty { inner, core })
            .collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.inner
            .join(parts.into_iter().map(|part| part.inner).collect());
    }
}

impl<R: RoleId, X: Effects<R>> Effects<R> for Faulty<X> {
    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        self.core.next_op()?;
        self.inner.extension(context, effect).await
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        // A start is one operation: a crash there fails the started effect at once.
        match self.core.next_op() {
            Ok(_) => self.inner.start_extension(context, effect),
            Err(crash) => {
                let reason = match crash.kind() {
                    RunErrorKind::Injected(reason) => reason.clone(),
                    other => other.to_string(),
                };
                StartedRun::new(move || {
                    let crash = RunError::from(RunErrorKind::Injected(reason.clone()));
                    Box::pin(std::future::ready(Err(crash)))
                })
            }
        }
    }

    async fn finish_extension<'a>(
        &'a mut self,
        role: R,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        self.core.next_op()?;
        self.inner.finish_extension(role, effect, outcome).await
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        let cores = self.core.take_parts(parts);
        self.inner
            .fork(parts)
            .into_iter()
            .zip(cores)
            .map(|(inner, core)| Faulty { inner, core })
            .collect()
    }
}

/// The [`Layer`] of [`Faulty`], on both sides: every role injects the faults of the
/// plan, each from its own generator.
#[derive(Clone, Debug, Default)]
pub struct FaultLayer(pub FaultPlan);

impl<R: Hash, T, E> Layer<R, Handler<T, E>> for FaultLayer {
    type Handler = Handler<Faulty<T>, Faulty<E>>;

    fn layer(&self, role: R, inner: Handler<T, E>) -> Self::Handler {
        Faulty::around(inner, self.0.clone(), &role)
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

/// Records every frame sent and received (on the transport side) and every extension
/// effect (on the effect side), for tests to assert on the exact sequence.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, Recorded, Recording, Transport};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let mut b = handlers.pop().expect("b");
///     let mut a = Recording::around(handlers.pop().expect("a"));
///     a.transport.send("b", 7).await.expect("sent");
///     b.transport.recv("a").await.expect("received");
///     assert_eq!(a.effects.events(), vec![Recorded::Sent("b", "message 7".to_owned())]);
/// });
/// ```
#[derive(Debug)]
pub struct Recording<R, X> {
    inner: X,
    log: Arc<Mutex<Vec<Recorded<R>>>>,
}

impl<R: Clone, X> Recording<R, X> {
    /// Records what `inner` (one side of a handler) does, in a log of its own.
    pub fn new(inner: X) -> Self {
        Recording {
            inner,
            log: Arc::default(),
        }
    }

    /// Records what both sides of `handler` do, in one log.
    pub fn around<T>(handler: Handler<T, X>) -> Handler<Recording<R, T>, Recording<R, X>> {
        let log: Arc<Mutex<Vec<Recorded<R>>>> = Arc::default();
        Handler::new(
            Recording {
                inner: handler.transport,
                log: log.clone(),
            },
            Recording {
                inner: handler.effects,
                log,
            },
        )
    }

    /// What was recorded so far, in order.
    pub fn events(&self) -> Vec<Recorded<R>> {
        lock(&self.log).clone()
    }

    /// A handle on the log, which outlives the handler.
    pub fn log(&self) -> Arc<Mutex<Vec<Recorded<R>>>> {
        self.log.clone()
    }

    fn record(&self, event: Recorded<R>) {
        lock(&self.log).push(event);
    }

    fn part<Y>(&self, inner: Y) -> Recording<R, Y> {
        Recording {
            inner,
            log: self.log.clone(),
        }
    }
}

impl<R: RoleId, M: Message, T: Transport<R, M>> Transport<R, M> for Recording<R, T> {
    fn role(&self) -> R {
        self.inner.role()
    }

    async fn send_frame(&mut self, to: R, frame: Frame<M>) -> Result<(), RunError> {
        let description = frame.describe();
        self.inner.send_frame(to, frame).await?;
        self.record(Recorded::Sent(to, description));
        Ok(())
    }

    async fn recv_frame(&mut self, from: R) -> Result<Frame<M>, RunError> {
        let frame = self.inner.recv_frame(from).await?;
        self.record(Recorded::Received(from, frame.describe()));
        Ok(frame)
    }

    fn split(&mut self, parts: &[Channels<R>]) -> Result<Vec<Self>, RunError> {
        let split = self.inner.split(parts)?;
        Ok(split.into_iter().map(|inner| self.part(inner)).collect())
    }

    fn join(&mut self, parts: Vec<Self>) {
        self.inner
            .join(parts.into_iter().map(|part| part.inner).collect());
    }
}

impl<R: RoleId, X: Effects<R>> Effects<R> for Recording<R, X> {
    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        let value = self.inner.extension(context, effect).await?;
        self.record(Recorded::Ext(effect.type_name()));
        Ok(value)
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let name = effect.type_name();
        self.record(Recorded::Started(name));
        let recording = self.part(());
        self.inner
            .start_extension(context, effect)
            .map(move |attempt| {
                let recording = recording.part(());
                Box::pin(async move {
                    let value = attempt.await?;
                    recording.record(Recorded::Ext(name));
                    Ok(value)
                })
            })
    }

    async fn finish_extension<'a>(
        &'a mut self,
        role: R,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> ExtOutcome {
        let value = self.inner.finish_extension(role, effect, outcome).await?;
        self.record(Recorded::Finished(effect.type_name()));
        Ok(value)
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        let forked = self.inner.fork(parts);
        forked.into_iter().map(|inner| self.part(inner)).collect()
    }
}
