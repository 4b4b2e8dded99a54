//! A role's handler: the pair of its transport side ([`Transport`]: how frames
//! travel) and its effect side ([`Effects`]: how extension effects run), and the
//! errors a role fails with.

use std::time::Duration;

use stormchor_choreography::{Message, RoleId};
use thiserror::Error;

use crate::effects::Effects;
use crate::registry::ExtensionError;
use crate::transport::{Channels, Transport};

/// Why a role could not go on. Boxed, so that results stay small on the hot path;
/// [`kind`](RunError::kind) tells what happened.
///
/// # Example
/// ```
/// use stormchor_runtime::{RunError, RunErrorKind};
///
/// let error = RunError::from(RunErrorKind::NoChannel { peer: "Backup".into() });
/// assert!(matches!(error.kind(), RunErrorKind::NoChannel { .. }));
/// assert_eq!(error.to_string(), "no channel to Backup");
/// ```
#[derive(Debug, Error)]
#[error(transparent)]
pub struct RunError(Box<RunErrorKind>);

impl RunError {
    /// What happened.
    pub fn kind(&self) -> &RunErrorKind {
        &self.0
    }
}

impl From<RunErrorKind> for RunError {
    fn from(kind: RunErrorKind) -> Self {
        RunError(Box::new(kind))
    }
}

impl From<ExtensionError> for RunError {
    fn from(error: ExtensionError) -> Self {
        RunErrorKind::Extension(error).into()
    }
}

/// The kinds of [`RunError`].
#[derive(Debug, Error)]
pub enum RunErrorKind {
    /// A peer failed, crashed or disconnected.
    #[error("peer {peer} failed: {reason}")]
    PeerFailed {
        /// The peer.
        peer: String,
        /// What happened to it.
        reason: String,
    },
    /// Sending to a peer failed.
    #[error("the link to {peer} broke: {reason}")]
    Link {
        /// The peer.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// The role has no channel to this peer (or a parallel part holds it).
    #[error("no channel to {peer}")]
    NoChannel {
        /// The peer.
        peer: String,
    },
    /// A frame of another kind than the program expects arrived.
    #[error("expected {expected} from {from}, but received {received}")]
    UnexpectedFrame {
        /// The sender.
        from: String,
        /// What the program expects.
        expected: String,
        /// What arrived.
        received: String,
    },
    /// A branch label that the choice does not have arrived.
    #[error("{from} sent branch #{index}, but the choice has {count} branches")]
    UnknownLabel {
        /// The sender.
        from: String,
        /// The index received.
        index: u32,
        /// How many branches there are.
        count: usize,
    },
    /// The chooser's logic picked a branch that does not exist.
    #[error("the role logic chose branch #{index}, but the choice has {count} branches")]
    BadChoice {
        /// The index chosen.
        index: usize,
        /// How many branches there are.
        count: usize,
    },
    /// An extension effect failed.
    #[error(transparent)]
    Extension(ExtensionError),
    /// A deadline passed.
    #[error("timed out after {limit:?}")]
    TimedOut {
        /// The deadline that passed.
        limit: Duration,
    },
    /// A finish of an effect the role has not started (a local program not made by
    /// projection).
    #[error("no effect started as `{handle}` runs at this role")]
    NotStarted {
        /// The handle.
        handle: String,
    },
    /// A fault injected on purpose.
    #[error("injected fault: {0}")]
    Injected(String),
}

/// What the interpreter runs a role with: its transport side (how frames travel,
/// [`Transport`]) and its effect side (how extension effects run, [`Effects`]).
///
/// Middleware wraps one side or both: a [`Layer`](crate::Layer) makes one handler out
/// of another, and one that changes only effects ([`Retry`](crate::Retry)) leaves the
/// transport as it is. A `par` splits both sides together.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, Metered, Metrics, Retry, RetryPolicy, Transport};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
///     let mut b = handlers.pop().expect("b");
///     let metrics = Metrics::new();
///     // Measure a's transport, retry its effects.
///     let mut a = handlers
///         .pop()
///         .expect("a")
///         .map_transport(|transport| Metered::new(transport, metrics.clone()))
///         .map_effects(|effects| Retry::new(effects, RetryPolicy::default()));
///     a.transport.send("b", 7).await.expect("sent");
///     assert_eq!(b.transport.recv("a").await.expect("received"), 7);
///     assert_eq!(metrics.snapshot()["send"].count, 1);
/// });
/// ```
#[derive(Debug)]
pub struct Handler<T, E> {
    /// The transport side.
    pub transport: T,
    /// The effect side.
    pub effects: E,
}

impl<T, E> Handler<T, E> {
    /// The handler of `transport` and `effects`.
    pub fn new(transport: T, effects: E) -> Self {
        Handler { transport, effects }
    }

    /// This handler with its transport side wrapped by `wrap`.
    pub fn map_transport<U>(self, wrap: impl FnOnce(T) -> U) -> Handler<U, E> {
        Handler {
            transport: wrap(self.transport),
            effects: self.effects,
        }
    }

    /// This handler with its effect side wrapped by `wrap`.
    pub fn map_effects<F>(self, wrap: impl FnOnce(E) -> F) -> Handler<T, F> {
        Handler {
            transport: self.transport,
            effects: wrap(self.effects),
        }
    }

    /// Handlers of their own for parts that run concurrently: the transport splits
    /// along `parts`, then the effects fork (in that order: a layer on both sides may
    /// pair its parts up by it).
    pub(crate) fn split<R: RoleId, M: Message>(
        &mut self,
        parts: &[Channels<R>],
    ) -> Result<Vec<Self>, RunError>
    where
        T: Transport<R, M>,
        E: Effects<R>,
    {
        let transports = self.transport.split(parts)?;
        let effects = self.effects.fork(transports.len());
        Ok(transports
            .into_iter()
            .zip(effects)
            .map(|(transport, effects)| Handler { transport, effects })
            .collect())
    }

    /// Takes back the channels of handlers made by `split`.
    pub(crate) fn join<R: RoleId, M: Message>(&mut self, parts: Vec<Self>)
    where
        T: Transport<R, M>,
    {
        self.transport
            .join(parts.into_iter().map(|part| part.transport).collect());
    }
}
