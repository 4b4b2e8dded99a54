//! Running every role of a program in one process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stormchor_choreography::{Message, Program, ProjectionError, RoleId, project_all};
use tokio::task::JoinSet;

use crate::effects::Effects;
use crate::handler::{Handler, RunError, RunErrorKind};
use crate::interpreter::{Event, Interpreter, RoleFailure};
use crate::layer::Layer;
use crate::registry::ExtensionRegistry;
use crate::state::{RoleLogic, RoleState};
use crate::transport::{MemoryHandler, PeerDown, Transport, memory_mesh};

/// Settings of a run.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_runtime::RunConfig;
///
/// let config = RunConfig::default().with_deadline(Duration::from_secs(30)).with_trace(false);
/// assert_eq!(config.deadline, Duration::from_secs(30));
/// ```
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The longest a role may run; past it the role fails as timed out.
    pub deadline: Duration,
    /// Whether roles record a trace of events.
    pub trace: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            deadline: Duration::from_secs(300),
            trace: true,
        }
    }
}

impl RunConfig {
    /// Sets the longest a role may run.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Turns traces on or off.
    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }
}

/// What a role starts with: its data and its extension registry.
pub struct RoleSetup<R, M, S> {
    /// The role's own data.
    pub data: S,
    /// The handlers of the extension effects the role carries out.
    pub registry: Arc<ExtensionRegistry<RoleState<R, M, S>>>,
}

impl<R: RoleId, M: Message, S: Send + Sync + 'static> RoleSetup<R, M, S> {
    /// A role with `data` and no extension handler.
    pub fn new(data: S) -> Self {
        RoleSetup {
            data,
            registry: Arc::new(ExtensionRegistry::new()),
        }
    }

    /// A role with `data` and the extension handlers of `registry`.
    pub fn with_registry(data: S, registry: Arc<ExtensionRegistry<RoleState<R, M, S>>>) -> Self {
        RoleSetup { data, registry }
    }
}

/// How one role's run ended.
#[derive(Debug)]
pub struct RoleOutcome<R, M, S> {
    /// Completed, or failed (timed out included) with where and why.
    pub result: Result<(), RoleFailure>,
    /// What the role did, in order.
    pub trace: Vec<Event<R>>,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its final state (absent if the role panicked).
    pub state: Option<RoleState<R, M, S>>,
    /// A role that completed although a peer died or fell silent (over TCP: once its
    /// own part was over, while it waited for its peers to end): the first such
    /// notice. `None` otherwise; a role that failed because of a peer names it in its
    /// failure.
    pub peer_down: Option<PeerDown>,
}

impl<R: RoleId, M, S> RoleOutcome<R, M, S> {
    /// The outcome of a role whose task ended without one (`reason`: it panicked, it
    /// was cancelled): failed, with no trace and no state.
    pub fn lost(role: R, reason: &str) -> Self {
        RoleOutcome {
            result: Err(RoleFailure {
                role: format!("{role:?}"),
                path: Vec::new(),
                effect: "the whole program".to_owned(),
                place: None,
                error: RunError::from(RunErrorKind::PeerFailed {
                    peer: format!("{role:?}"),
                    reason: reason.to_owned(),
                }),
            }),
            trace: Vec::new(),
            elapsed: Duration::ZERO,
            state: None,
            peer_down: None,
        }
    }
}

/// How every role of a run ended.
#[derive(Debug)]
pub struct RunReport<R, M, S> {
    /// The outcome of each role.
    pub outcomes: BTreeMap<R, RoleOutcome<R, M, S>>,
}

impl<R: RoleId, M, S> RunReport<R, M, S> {
    /// Whether every role completed.
    pub fn is_success(&self) -> bool {
        self.outcomes.values().all(|o| o.result.is_ok())
    }

    /// The failures, by role.
    pub fn failures(&self) -> impl Iterator<Item = (&R, &RoleFailure)> {
        self.outcomes
            .iter()
            .filter_map(|(role, outcome)| outcome.result.as_ref().err().map(|f| (role, f)))
    }

    /// The final state of `role`.
    pub fn state(&self, role: &R) -> Option<&RoleState<R, M, S>> {
        self.outcomes.get(role).and_then(|o| o.state.as_ref())
    }
}

/// Projects `program` and runs every role in this process, each in its own task,
/// connected by in-memory channels.
///
/// `setup` gives each role its data and registry. When a role fails (an error, a
/// panic, its deadline), every other role still waiting is told at once and ends with
/// an error naming it; no task outlives the call.
///
/// # Example
/// ```
/// use stormchor_choreography::Program;
/// use stormchor_runtime::{run_all, RoleSetup, RunConfig};
///
/// let program: Program<&str, u64> = Program::new().send("a", "b", 1).send("b", "a", 2);
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
/// let report = rt
///     .block_on(run_all(&program, |_| RoleSetup::new(()), RunConfig::default()))
///     .expect("sound program");
/// assert!(report.is_success());
/// assert_eq!(report.state(&"a").and_then(|s| s.latest_from(&"b")), Some(2));
/// ```
pub async fn run_all<R, M, S>(
    program: &Program<R, M>,
    setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
) -> Result<RunReport<R, M, S>, ProjectionError>
where
    R: RoleId,
    M: Message,
    S: RoleLogic<R, M>,
{
    run_all_with(program, setup, config, |_, handler| handler).await
}

/// [`run_all`], with every role's handler wrapped in `layers` (a [`Layers`](crate::Layers)
/// stack, the same that [`run_all_over_tcp_layered`](crate::tcp::run_all_over_tcp_layered)
/// takes).
pub async fn run_all_layered<R, M, S, L, T, E>(
    program: &Program<R, M>,
    setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
    layers: &L,
) -> Result<RunReport<R, M, S>, ProjectionError>
where
    R: RoleId,
    M: Message,
    S: RoleLogic<R, M>,
    L: Layer<R, MemoryHandler<R, M>, Handler = Handler<T, E>>,
    T: Transport<R, M> + 'static,
    E: Effects<R> + 'static,
{
    run_all_with(program, setup, config, |role, handler| {
        layers.layer(role, handler)
    })
    .await
}

/// [`run_all`], with every role's handler wrapped by `wrap` (middleware on either
/// side, or both).
///
/// # Example
/// ```
/// use stormchor_choreography::Program;
/// use stormchor_runtime::{run_all_with, Metered, Metrics, RoleSetup, RunConfig};
///
/// let program: Program<&str, u64> = Program::new().send("a", "b", 1).send("b", "a", 2);
/// let metrics = Metrics::new();
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
/// let report = rt
///     .block_on(run_all_with(&program, |_| RoleSetup::new(()), RunConfig::default(), |_, handler| {
///         handler.map_transport(|transport| Metered::new(transport, metrics.clone()))
///     }))
///     .expect("sound program");
/// assert!(report.is_success());
/// assert_eq!(metrics.snapshot()["send"].count, 2);
/// ```
pub async fn run_all_with<R, M, S, T, E>(
    program: &Program<R, M>,
    mut setup: impl FnMut(R) -> RoleSetup<R, M, S>,
    config: RunConfig,
    mut wrap: impl FnMut(R, MemoryHandler<R, M>) -> Handler<T, E>,
) -> Result<RunReport<R, M, S>, ProjectionError>
where
    R: RoleId,
    M: Message,
    S: RoleLogic<R, M>,
    T: Transport<R, M> + 'static,
    E: Effects<R> + 'static,
{
    let locals = project_all(program)?;
    let roles: Vec<R> = locals.keys().copied().collect();
    let (handlers, notifier) = memory_mesh::<R, M>(&roles);
    let mut tasks = JoinSet::new();
    let mut task_roles = BTreeMap::new();
    for (local, handler) in locals.into_values().zip(handlers) {
        let role = *local.role();
        let mut handler = wrap(role, handler);
        let RoleSetup { data, registry } = setup(role);
        let state = RoleState::new(role, roles.iter().copied(), data);
        let config = config.clone();
        let handle = tasks.spawn(async move {
            let started = Instant::now();
            let interpreter = Interpreter::new(&state, &registry).with_trace(config.trace);
            let (result, trace) = interpreter
                .run_within(&local, &mut handler, config.deadline)
                .await;
            let elapsed = started.elapsed();
            (role, result, trace, elapsed, state)
        });
        task_roles.insert(handle.id(), role);
    }

    let mut outcomes = BTreeMap::new();
    let index_of = |role: &R| roles.binary_search(role).ok();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, (role, result, trace, elapsed, state))) => {
                if let Err(failure) = &result {
                    // Tell the others; a role that failed because a peer did has nothing new to say.
                    if !matches!(failure.error.kind(), RunErrorKind::PeerFailed { .. }) {
                        let down = PeerDown {
                            peer: format!("{role:?}"),
                            reason: failure.error.to_string(),
                        };
                        notifier.notify_all(index_of(&role), &down);
                    }
                }
                outcomes.insert(
                    role,
                    RoleOutcome {
                        result,
                        trace,
                        elapsed,
                        state: Some(state),
                        peer_down: None,
                    },
                );
            }
            Err(error) => {
                let Some(role) = task_roles.get(&error.id()).copied() else {
                    continue;
                };
                let reason = if error.is_panic() {
                    "it panicked"
                } else {
                    "it was cancelled"
                };
                let down = PeerDown {
                    peer: format!("{role:?}"),
                    reason: reason.to_owned(),
                };
                notifier.notify_dead(index_of(&role), &down);
                outcomes.insert(role, RoleOutcome::lost(role, reason));
            }
        }
    }
    Ok(RunReport { outcomes })
}
