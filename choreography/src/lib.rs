//! The choreography algebra of stormchor.
//!
//! A *choreography* describes a multi-party test once, for all of its parties: who
//! sends what to whom, who chooses, what loops, what runs in parallel, and which
//! database actions (extension effects) each party carries out. This crate holds the
//! pure part, with no I/O and no async runtime:
//!
//! - [`Program`]: the global program and its builder;
//! - [`ExtensionEffect`]: the object-safe trait of domain effects;
//! - [`project`] / [`project_all`]: sound projection onto local programs, which fails
//!   with a [`ProjectionError`] instead of letting a test hang;
//! - [`check`]: a pure executor that runs all local programs together over FIFO queues
//!   and reports deadlocks, orphan messages and unexpected labels;
//! - [`to_mermaid`] / [`to_svg`]: a sequence diagram of a global program, as mermaid
//!   source or as self-contained SVG (both drawn from the same rows);
//! - [`primitives`]: reusable choreographies (scatter/gather, barrier, round-robin,
//!   two-phase commit).
//!
//! # Example
//! ```
//! use stormchor_choreography::{check, project_all, Family, Program, SeededPolicy};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
//! enum Role { Coordinator, Worker(u16) }
//!
//! let workers = Family::indexed("Worker", 2, Role::Worker);
//! let program = Program::new()
//!     .broadcast(Role::Coordinator, &workers, "go")
//!     .loop_until(Role::Coordinator, Program::new().gather(&workers, Role::Coordinator, "rows"));
//!
//! let locals = project_all(&program).expect("sound");
//! let report = check(&locals, &mut SeededPolicy::new(7)).expect("runs to completion");
//! assert!(report.messages >= 2);
//! ```
#![deny(missing_docs)]

mod background;
mod check;
mod diagram;
mod extension;
mod label;
mod local;
mod mermaid;
mod order;
pub mod primitives;
mod program;
mod project;
mod role;
mod svg;
mod witness;

pub use background::{Handle, Stage};
pub use check::{CheckError, CheckReport, DecisionPolicy, SeededPolicy, check};
pub use extension::{At, Extension, ExtensionEffect, OrderTag, Participation, Place};
pub use label::{Label, Path, Step};
pub use local::{Local, LocalProgram, LoopControl, Origin};
pub use mermaid::to_mermaid;
pub use order::{OrderFrames, order_frames};
pub use program::{EffectCounts, Global, LoopKind, Message, Program};
pub use project::{ProjectionError, Projections, project, project_all};
pub use role::{Family, RoleId};
pub use svg::to_svg;
