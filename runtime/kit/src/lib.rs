//! The stormchor database kit: one public, typed vocabulary of database effects that
//! test authors compose into their own multi-party choreographies.
//!
//! - [`DbEffect`]: an effect with a typed output and an async `run` on the role's
//!   [`Node`]; [`Kit`] registers every kit effect (and an author's own) with one call
//!   each;
//! - [`effects`]: the effects, one module per family (servers, backups, WAL and
//!   recovery goals, replication, verification, load, schema, SQL steps, faults);
//! - [`Slot`] / [`Carry`]: typed values between roles: an effect's output becomes a
//!   slot's value with [`DbEffect::into_slot`], a message `SLOT.carry()` takes it to
//!   another role, which reads it typed; [`slots`] holds the kit's own;
//! - [`Node`]: what one role owns (its server, backups, restored clusters, catalog,
//!   ledger, SQL session, journal, values); nothing is shared between roles;
//! - [`Decisions`]: a role's run-time decisions, recorded by an effect, taken by the
//!   choice or decided loop that follows;
//! - [`Journal`] / [`ScenarioReport`]: what each role records, merged into the report,
//!   whose JSON form is its `Serialize` under a [`VersionedReport`] header;
//! - [`Scenario`] / [`KitScenario`] / [`ScenarioRegistry`]: named scenarios with their
//!   faults and defaults, and [`run_program`], the in-process runner;
//! - [`kit_layers`]: the middleware every role runs with, in one process or in its own;
//! - [`process`]: every role in a process of its own: the peers file, one role of a
//!   scenario over TCP ([`process::run_role`]), the launcher ([`process::launch`]);
//! - [`interrupt`]: the process's Ctrl-C / SIGTERM request that ends load early.
//!
//! # Example
//! A backup node backs the primary up and restores it; the coordinator compares.
//! ```
//! use stormchor_kit::effects::{
//!     CompareChecksums, Phase, RecordPoint, Restore, RestoreTo, StartServer, TableChecksums,
//!     TakeBackup, Goal,
//! };
//! use stormchor_kit::slots::{CHECKSUMS, POINT, PRIMARY, RESTORED};
//! use stormchor_kit::{Carry, DbEffect, KitRole, Program, project_all};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
//! enum Role { Primary, Backup, Coordinator }
//! impl KitRole for Role {}
//! use Role::*;
//!
//! let program: Program<Role, Carry> = Program::new()
//!     .with_roles([Primary, Backup, Coordinator])
//!     .ext(Phase("setup"))
//!     .ext(stormchor_choreography::At::new(StartServer::throwaway().archiving().into_slot(PRIMARY), [Primary]))
//!     .send(Primary, Backup, PRIMARY.carry())
//!     .send(Primary, Coordinator, PRIMARY.carry())
//!     .ext(stormchor_choreography::At::new(TakeBackup { of: PRIMARY }, [Backup]))
//!     .send(Backup, Coordinator, Carry::signal("backed up"))
//!     .ext(stormchor_choreography::At::new(RecordPoint { on: PRIMARY }.into_slot(POINT), [Coordinator]))
//!     .send(Coordinator, Backup, POINT.carry())
//!     .ext(stormchor_choreography::At::new(
//!         Restore { from: PRIMARY, to: RestoreTo::Goal(Goal::AtPoint(POINT)), name: "restored" }.into_slot(RESTORED),
//!         [Backup],
//!     ))
//!     .ext(stormchor_choreography::At::new(TableChecksums { of: RESTORED }.into_slot(CHECKSUMS), [Backup]))
//!     .send(Backup, Coordinator, CHECKSUMS.carry())
//!     .ext(stormchor_choreography::At::new(CompareChecksums { expected: POINT, found: CHECKSUMS, in_order: false }, [Coordinator]));
//! assert!(project_all(&program).is_ok());
//! ```
#![deny(missing_docs)]

mod decision;
mod effect;
pub mod effects;
pub mod interrupt;
mod journal;
mod node;
pub mod process;
mod report;
mod scenario;
mod seconds;
pub mod slots;
mod value;

pub use decision::Decisions;
pub use effect::{DbEffect, Kit, Produce, register};
pub use journal::{
    ActionRecord, CheckRecord, Entries, EventKind, EventRecord, Figure, Journal, LoadSecond,
    PhaseRecord, StressRecord,
};
pub use node::{KitRole, KitState, Node};
pub use report::{
    REPORT_REVISION, REPORT_SCHEMA, Recovery, RoleRecord, RoleResult, ScenarioReport,
    VersionedReport,
};
pub use scenario::{
    Defaults, Fault, KitLayers, KitScenario, RoleFuture, RunFuture, Scenario, ScenarioError,
    ScenarioOptions, ScenarioRegistry, check_options, kit_layers, run_deadline, run_program,
    run_program_within,
};
pub use stormchor_choreography::{Program, project_all};
pub use value::{Carry, Slot, Value, ValueError, Values, encode};

/// The name in `names` closest to `name` (by edit distance, at most a third of its
/// length away), for "did you mean" hints.
///
/// # Example
/// ```
/// assert_eq!(stormchor_kit::closest("backup-restor", &["pitr", "backup-restore"]), Some("backup-restore"));
/// assert_eq!(stormchor_kit::closest("zzz", &["pitr"]), None);
/// ```
pub fn closest<'a>(name: &str, names: &[&'a str]) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut previous = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let current = row[j + 1];
                row[j + 1] = (previous + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(current + 1);
                previous = current;
            }
        }
        row[b.len()]
    };
    names
        .iter()
        .map(|candidate| (distance(name, candidate), *candidate))
        .filter(|(d, _)| *d <= name.chars().count().max(3) / 3)
        .min()
        .map(|(_, candidate)| candidate)
}
