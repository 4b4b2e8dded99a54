//! The stormchor runtime: runs projected choreographies.
//!
//! - [`ExtensionRegistry`]: async handlers for extension effects, by effect type;
//! - [`ChoreoHandler`]: the transport side of a running role (send, receive, choose,
//!   offer), implemented by [`Endpoint`] and wrapped by middleware;
//! - [`Interpreter`]: runs one role's local program;
//! - [`run_all`]: runs every role of a program in one process;
//! - [`RoleState`] / [`RoleLogic`]: the values a role receives and keeps, and the
//!   decisions it makes from them;
//! - middleware: [`Traced`], [`Retry`], [`Metered`], [`Faulty`], [`Recording`];
//! - [`tcp`]: one role per process (or host), over TCP;
//! - [`postgres`]: throwaway clusters, the schema catalog, weighted actions, workers,
//!   schema discovery;
//! - [`workload`]: workload plugins (tpcb, read-only, ecommerce, stress, sql files) and
//!   the load runner.
//!
//! The database effects that choreographies compose are in the database kit
//! (`stormchor-kit`).
#![deny(missing_docs)]

mod background;
mod handler;
mod interpreter;
mod middleware;
pub mod postgres;
mod registry;
mod runner;
mod state;
pub mod tcp;
mod transport;
pub mod workload;

pub use background::StartSignal;
pub use handler::{Channels, ChoreoHandler, ExtOutcome, RunError, RunErrorKind, StartedRun};
pub use interpreter::{Event, EventKind, Interpreter, RoleFailure};
pub use middleware::{
    Fault, FaultPlan, Faulty, Metered, Metrics, OpStats, Recorded, Recording, Retry, RetryPolicy,
    Traced,
};
pub use registry::{
    BoxError, EffectFailure, ExtValue, ExtensionError, ExtensionRegistry, RegistryError,
};
pub use runner::{RoleOutcome, RoleSetup, RunConfig, RunReport, run_all, run_all_with};
pub use state::{Labels, RoleLogic, RoleState};
pub use stormchor_choreography as choreography;
pub use transport::{
    Endpoint, Frame, FrameSink, Incoming, MemoryEndpoint, MemorySink, Notifier, PeerDown,
    memory_mesh,
};
