//! The effect side of a role's handler: how its extension effects run.
//!
//! [`Effects`] is what the interpreter calls for `ext`, `ext start` and `ext finish`;
//! [`Dispatch`] is the bottom of every stack (the role's [`ExtensionRegistry`], raced
//! against its [`Alarm`]), and middleware that changes how effects run wraps it
//! ([`Retry`](crate::Retry) only here; [`Traced`](crate::Traced),
//! [`Metered`](crate::Metered), [`Faulty`](crate::Faulty) and
//! [`Recording`](crate::Recording) on both sides). The transport side is
//! [`Transport`](crate::Transport); a [`Handler`](crate::Handler) pairs the two.

use std::fmt::{self, Debug};
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use stormchor_choreography::{Extension, RoleId};

use crate::handler::{RunError, RunErrorKind};
use crate::registry::{ExtValue, ExtensionRegistry};
use crate::transport::{Alarm, CAUSE_GRACE};

/// The outcome of one run of an extension effect: the value to keep, if any.
pub type ExtOutcome = Result<Option<ExtValue>, RunError>;

/// What an extension effect runs with: the role, the registry of its effect handlers
/// and the environment those handlers see (in the interpreter, the role's
/// [`RoleState`](crate::RoleState)).
///
/// # Example
/// ```
/// use stormchor_choreography::Extension;
/// use stormchor_macros::ExtensionEffect;
/// use stormchor_runtime::{EffectContext, EffectFailure, ExtensionRegistry};
///
/// #[derive(Clone, Debug, ExtensionEffect)]
/// struct Ping;
///
/// let mut registry = ExtensionRegistry::<()>::new();
/// registry
///     .register_unit::<Ping, _>(|_, _| Box::pin(async { Ok::<_, EffectFailure>(()) }))
///     .expect("registered");
/// let context = EffectContext::new("a", &registry, &());
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// assert!(rt.block_on(context.run(&Extension::new(Ping))).is_ok());
/// ```
pub struct EffectContext<'a, R, E> {
    /// The role carrying out the effect.
    pub role: R,
    /// The handlers of the role's effects, by effect type.
    pub registry: &'a ExtensionRegistry<E>,
    /// What the handlers see.
    pub env: &'a E,
}

impl<R: Copy, E> Clone for EffectContext<'_, R, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: Copy, E> Copy for EffectContext<'_, R, E> {}

impl<R: Debug, E> Debug for EffectContext<'_, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EffectContext")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<'a, R: RoleId, E: Sync + 'static> EffectContext<'a, R, E> {
    /// The context of `role`'s effects, run by `registry` with `env`.
    pub fn new(role: R, registry: &'a ExtensionRegistry<E>, env: &'a E) -> Self {
        EffectContext {
            role,
            registry,
            env,
        }
    }

    /// Runs `effect` with its handler in the registry.
    pub async fn run(self, effect: &Extension) -> ExtOutcome {
        Ok(self.registry.handle(self.env, effect, &self.role).await?)
    }
}

/// The effect side of a running role: carries out extension effects, whole
/// (`ext`) or started in the background (`ext start`) and finished later
/// (`ext finish`).
///
/// [`Dispatch`] implements it with the role's registry. Middleware implements it by
/// wrapping another implementation; each method should call the wrapped one (or
/// decide on purpose not to, as a fault injector may).
///
/// # Example
/// A layer that only changes effects (here: counts them), stacked on the effect side
/// of a handler and leaving its transport alone:
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use stormchor_choreography::{Extension, RoleId};
/// use stormchor_runtime::{EffectContext, Effects, ExtOutcome, StartedRun};
///
/// struct Counted<E> { inner: E, count: Arc<AtomicU64> }
///
/// impl<R: RoleId, E: Effects<R>> Effects<R> for Counted<E> {
///     async fn extension<'a, Env: Sync + 'static>(
///         &'a mut self,
///         context: EffectContext<'a, R, Env>,
///         effect: &'a Extension,
///     ) -> ExtOutcome {
///         self.count.fetch_add(1, Ordering::Relaxed);
///         self.inner.extension(context, effect).await
///     }
///
///     fn start_extension<'s, Env: Sync + 'static>(
///         &mut self,
///         context: EffectContext<'s, R, Env>,
///         effect: &Extension,
///     ) -> StartedRun<'s> {
///         self.count.fetch_add(1, Ordering::Relaxed);
///         self.inner.start_extension(context, effect)
///     }
///
///     async fn finish_extension<'a>(&'a mut self, role: R, effect: &'a Extension, outcome: ExtOutcome) -> ExtOutcome {
///         self.inner.finish_extension(role, effect, outcome).await
///     }
///
///     fn fork(&mut self, parts: usize) -> Vec<Self> {
///         let count = self.count.clone();
///         self.inner.fork(parts).into_iter().map(|inner| Counted { inner, count: count.clone() }).collect()
///     }
/// }
///
/// let (mut handlers, _) = stormchor_runtime::memory_mesh::<&str, u8>(&["a"]);
/// let count = Arc::new(AtomicU64::new(0));
/// let counted = handlers.remove(0).map_effects(|inner| Counted { inner, count: count.clone() });
/// # let _ = counted;
/// ```
pub trait Effects<R: RoleId>: Send + Sized {
    /// Carries out an extension effect; returns the value to keep.
    fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> impl Future<Output = ExtOutcome> + Send + 'a;

    /// Starts an extension effect that runs in the background (`ext start`) while the
    /// role goes on: returns how to run it, which the role then polls alongside its
    /// program. The run must not borrow `self` (the role keeps going meanwhile), so a
    /// layer wraps the inner run with what it needs of its own state cloned in
    /// ([`StartedRun::map`]); it may call the run again to retry it.
    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s>;

    /// The finish of a started effect (`ext finish`): `outcome` is what its run ended
    /// with; returns what the role goes on with (a layer may record it, or fail it).
    fn finish_extension<'a>(
        &'a mut self,
        role: R,
        effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> impl Future<Output = ExtOutcome> + Send + 'a;

    /// The effect sides of `parts` concurrent parts of a `par` (the transport side
    /// splits alongside). Parts are dropped when the `par` ends: state a layer keeps
    /// across them (counters, logs) is shared, not joined back.
    fn fork(&mut self, parts: usize) -> Vec<Self>;
}

/// The effect side at the bottom of every stack: each effect runs with its handler in
/// the role's registry; with an [`Alarm`], a whole effect fails at once with the
/// peer's notice when the alarm rings (a peer died), and the effect is dropped.
///
/// # Example
/// ```
/// use stormchor_runtime::{Alarm, Dispatch};
///
/// let (_bell, alarm) = Alarm::new();
/// let dispatch = Dispatch::new().with_alarm(alarm);
/// assert!(dispatch.alarm().is_some());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Dispatch {
    alarm: Option<Alarm>,
}

impl Dispatch {
    /// Dispatch without an alarm.
    pub fn new() -> Self {
        Dispatch::default()
    }

    /// This dispatch, failing the whole effect it runs when `alarm` rings.
    pub fn with_alarm(mut self, alarm: Alarm) -> Self {
        self.alarm = Some(alarm);
        self
    }

    /// The alarm, if any.
    pub fn alarm(&self) -> Option<&Alarm> {
        self.alarm.as_ref()
    }
}

impl<R: RoleId> Effects<R> for Dispatch {
    /// The effect's handler, raced against the alarm (if any).
    async fn extension<'a, E: Sync + 'static>(
        &'a mut self,
        context: EffectContext<'a, R, E>,
        effect: &'a Extension,
    ) -> ExtOutcome {
        let Some(alarm) = self.alarm.as_mut() else {
            return context.run(effect).await;
        };
        let error = tokio::select! {
            biased;
            done = context.run(effect) => match done {
                Ok(value) => return Ok(value),
                Err(error) => error,
            },
            down = alarm.rung() => return Err(RunErrorKind::PeerFailed {
                peer: down.peer,
                reason: down.reason,
            }
            .into()),
        };
        // A peer that dies can take the effect down with it before its notice is in (a
        // load on the server of a node role that was killed loses its connection at the
        // same moment the node's does): the peer's death is then what the failure says.
        match tokio::time::timeout(CAUSE_GRACE, alarm.rung()).await {
            Ok(down) => Err(RunErrorKind::PeerFailed {
                peer: down.peer,
                reason: format!("{} (and the step failed with it: {error})", down.reason),
            }
            .into()),
            Err(_) => Err(error),
        }
    }

    fn start_extension<'s, E: Sync + 'static>(
        &mut self,
        context: EffectContext<'s, R, E>,
        effect: &Extension,
    ) -> StartedRun<'s> {
        let effect = effect.clone();
        StartedRun::new(move || {
            let effect = effect.clone();
            Box::pin(async move { context.run(&effect).await })
        })
    }

    fn finish_extension<'a>(
        &'a mut self,
        _role: R,
        _effect: &'a Extension,
        outcome: ExtOutcome,
    ) -> impl Future<Output = ExtOutcome> + Send + 'a {
        std::future::ready(outcome)
    }

    fn fork(&mut self, parts: usize) -> Vec<Self> {
        vec![self.clone(); parts]
    }
}

/// How to run a started extension effect ([`Effects::start_extension`]): a function
/// that makes one run of it (one attempt), owning or sharing everything it uses, so
/// that the role's handler stays free while the effect runs.
///
/// # Example
/// ```
/// use stormchor_runtime::StartedRun;
///
/// let run = StartedRun::new(|| Box::pin(async { Ok(None) }));
/// // A layer wraps it: here, it fails every run.
/// let failing = run.map(|attempt| {
///     Box::pin(async move {
///         attempt.await?;
///         Err(stormchor_runtime::RunErrorKind::Injected("no".into()).into())
///     })
/// });
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// assert!(rt.block_on(failing.run()).is_err());
/// ```
#[derive(Clone)]
pub struct StartedRun<'s>(Arc<dyn Fn() -> BoxFuture<'s, ExtOutcome> + Send + Sync + 's>);

impl<'s> StartedRun<'s> {
    /// The run made by `attempt`.
    pub fn new(attempt: impl Fn() -> BoxFuture<'s, ExtOutcome> + Send + Sync + 's) -> Self {
        StartedRun(Arc::new(attempt))
    }

    /// One run (attempt) of the effect.
    pub fn run(&self) -> BoxFuture<'s, ExtOutcome> {
        (self.0)()
    }

    /// This run with `layer` around every attempt.
    pub fn map(
        self,
        layer: impl Fn(BoxFuture<'s, ExtOutcome>) -> BoxFuture<'s, ExtOutcome> + Send + Sync + 's,
    ) -> Self {
        StartedRun::new(move || layer(self.run()))
    }
}

impl Debug for StartedRun<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StartedRun")
    }
}
