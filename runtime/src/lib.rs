//! The stormchor runtime: runs projected choreographies.
//!
//! - [`ExtensionRegistry`]: async handlers for extension effects, by effect type;
//! - [`Handler`]: what a role runs with, a pair of two sides that middleware wraps
//!   apart:
//!   - [`Transport`]: the transport side (send, receive, choose, offer, split for a
//!     `par`), implemented by [`Endpoint`];
//!   - [`Effects`]: the effect side (whole, started and finished extension effects),
//!     implemented by [`Dispatch`] (the registry, raced against the [`Alarm`]);
//! - [`Interpreter`]: runs one role's local program with a [`Handler`];
//! - [`run_all`]: runs every role of a program in one process;
//! - [`Alarm`]: rings when a peer is down, so a role inside a long effect learns it;
//! - [`RoleState`] / [`RoleLogic`]: the values a role receives and keeps, and the
//!   decisions it makes from them;
//! - middleware: [`Traced`], [`Metered`], [`Faulty`], [`Recording`] (both sides),
//!   [`Retry`] (effects);
//! - [`Layer`] / [`Layers`]: middleware stacked the same way for every runner;
//! - [`tcp`]: one role per process (or host), over TCP.
//!
//! It knows nothing of PostgreSQL: the PostgreSQL layer is `stormchor-postgres`, the
//! workloads and the load runner are `stormchor-workloads`, and the database effects
//! that choreographies compose are in the database kit (`stormchor-kit`).
#![deny(missing_docs)]

mod background;
mod effects;
mod handler;
mod interpreter;
mod layer;
mod middleware;
mod registry;
mod runner;
mod state;
mod sync;
pub mod tcp;
mod transport;

pub use background::StartSignal;
pub use effects::{Dispatch, EffectContext, Effects, ExtOutcome, StartedRun};
pub use handler::{Handler, RunError, RunErrorKind};
pub use interpreter::{Event, EventKind, Interpreter, RoleFailure};
pub use layer::{Identity, Layer, Layers, Stack};
pub use middleware::{
    Fault, FaultLayer, FaultPlan, Faulty, Metered, Metrics, MetricsLayer, OpStats, Recorded,
    Recording, Retry, RetryLayer, RetryPolicy, TraceLayer, Traced,
};
pub use registry::{
    BoxError, EffectFailure, ExtValue, ExtensionError, ExtensionRegistry, RegistryError,
};
pub use runner::{
    RoleOutcome, RoleSetup, RunConfig, RunReport, run_all, run_all_layered, run_all_with,
};
pub use state::{Labels, RoleLogic, RoleState};
pub use stormchor_choreography as choreography;
pub use transport::{
    Alarm, Bell, Channels, Endpoint, Frame, FrameSink, Incoming, MemoryEndpoint, MemoryHandler,
    MemorySink, Notifier, PeerDown, Transport, memory_mesh,
};
