//! # stormchor
//!
//! Multi-party PostgreSQL test scenarios written as *choreographies*: one global
//! program for all parties of a test (a coordinator, N workers, a backup node),
//! projected onto each party so that the parties cannot deadlock, a mismatched
//! send/receive being an error before anything runs.
//!
//! This facade re-exports the workspace crates:
//! - [`choreography`]: the pure algebra (programs, projection, checking, diagrams);
//! - [`runtime`]: handlers, transports, interpreter (the protocol runtime);
//! - [`postgres`]: the PostgreSQL layer: throwaway clusters, the schema catalog,
//!   weighted actions, discovery, verification;
//! - [`workloads`]: workload plugins, the load runner, the stress worker;
//! - [`kit`]: the database kit: typed database effects, typed values between roles,
//!   scenarios and their registry;
//! - [`macros`]: the DSL and derives;
//! - [`config`]: the run settings' precedence (flags > `STORMCHOR_*` variables >
//!   config file > defaults), shared by the command and the Python package;
//! - [`isolation_suite`]: `stormchor isolation-suite`, PostgreSQL's isolation specs run
//!   on a server (with `stormchor_isolation`);
//! - [`report`]: the typed report of a workload run, and the HTML pages of workload and
//!   scenario reports, drawn from the typed reports their JSON is serialized from.
//!
//! Most code only needs the [`prelude`].
//!
//! # Example
//! ```
//! use stormchor::prelude::*;
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
//! enum Role { Coordinator, Worker(u16) }
//!
//! let workers = Family::indexed("Worker", 4, Role::Worker);
//! let program: Program<Role, &str> =
//!     primitives::barrier(Role::Coordinator, &workers, "arrived", "release");
//! let locals = project_all(&program).expect("sound");
//! assert_eq!(locals.len(), 5);
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod isolation_suite;
pub mod report;
pub mod scenarios;

pub use stormchor_choreography as choreography;
pub use stormchor_kit as kit;
pub use stormchor_macros as macros;
pub use stormchor_postgres as postgres;
pub use stormchor_workloads as workloads;

/// The protocol runtime (`stormchor-runtime`), and, under the paths they had before
/// they became crates of their own, the PostgreSQL layer and the workloads.
pub mod runtime {
    pub use stormchor_runtime::*;

    /// The PostgreSQL layer ([`stormchor::postgres`](crate::postgres)), where it was
    /// before. The stress mix it ran is the `stress` workload of
    /// [`stormchor::workloads`](crate::workloads) now, run by the load runner.
    pub mod postgres {
        pub use stormchor_postgres::*;
    }

    /// The workloads ([`stormchor::workloads`](crate::workloads)), where they were
    /// before.
    pub use stormchor_workloads as workload;
}

/// The names most choreographies need.
pub mod prelude {
    pub use stormchor_choreography::primitives;
    pub use stormchor_choreography::{
        At, CheckError, CheckReport, DecisionPolicy, Extension, ExtensionEffect, Family, Global,
        Label, Local, LocalProgram, LoopControl, LoopKind, Message, OrderFrames, Participation,
        Path, Program, ProjectionError, Projections, RoleId, SeededPolicy, check, order_frames,
        project, project_all, to_mermaid,
    };
    pub use stormchor_macros::{ExtensionEffect, choreography};
}

/// The README's code, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
