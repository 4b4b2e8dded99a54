//! The stormchor runtime: runs projected choreographies.
//!
//! - [`ExtensionRegistry`]: async handlers for extension effects, by effect type;
//! - [`ChoreoHandler`]: the transport side of a running role (send, receive, choose,
//!   offer), implemented by [`Endpoint`] and wrapped by middleware;
//! - [`Interpreter`]: runs one role's local program;
//! - [`run_all`]: runs every role of a program in one process;
//! - [`Alarm`]: rings when a peer is down, so a role inside a long effect learns it;
//! - [`RoleState`] / [`RoleLogic`]: the values a role receives and keeps, and the
//!   decisions it makes from them;
//! - middleware: [`Traced`], [`Retry`], [`Metered`], [`Faulty`], [`Recording`];
//! - [`Layer`] / [`Layers`]: middleware stacked the same way for every runner;
//! - [`tcp`]: one role per process (or host), over TCP.
//!
//! It knows nothing of PostgreSQL: the PostgreSQL layer is `stormchor-postgres`, the
//! workloads and the load runner are `stormchor-workloads`, and the database effects
//! that choreographies compose are in the database kit (`stormchor-kit`).
#![deny(missing_docs)]

mod background;
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
pub use handler::{Channels, ChoreoHandler, ExtOutcome, RunError, RunErrorKind, StartedRun};
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
    Alarm, Bell, Endpoint, Frame, FrameSink, Incoming, MemoryEndpoint, MemorySink, Notifier,
    PeerDown, memory_mesh,
};
