//! Every database effect of the kit, one module per family, each effect beside its
//! handler (its [`DbEffect::run`](crate::DbEffect::run)).
//!
//! | family | effects |
//! |---|---|
//! | [`phase`] | [`Phase`] (unordered bookkeeping) |
//! | [`server`] | [`StartServer`], [`StopServer`], [`KillServer`], [`RestartServer`], [`Crash`], [`ServerAddress`], [`ResetXidEpoch`] |
//! | [`backup`] | [`TakeBackup`], [`VerifyBackup`], [`Restore`], [`RemoveRestored`] |
//! | [`backup`] (in the background) | [`BackgroundBackup`] (`ext start` it: started once it streams; its finish says how it ended: [`BackupOutcome`]); the older pair [`StartBackup`] (returns once it streams), [`FinishBackup`] |
//! | [`wal`] | [`RecordPoint`], [`RecordGoal`] (an LSN, a time, a transaction id, a named restore point), [`SwitchWal`] (switch and wait for the archiver) |
//! | [`replication`] | [`StartReplica`] (of a primary or, cascading, of a standby), [`PrepareReplica`] and [`StartPrepared`], [`Promote`], [`RestartAsStandby`], [`Follow`] (a new upstream), [`WaitForReplay`] |
//! | [`query`] | [`Query`] (a value, as `psql -At` prints it), [`PollUntil`], [`Refuses`] (a SQLSTATE: a standby refuses writes), [`CheckValue`], [`ConnectsTo`] (`target_session_attrs`) |
//! | [`verify`] | [`TableChecksums`], [`CompareChecksums`], [`VerifyLedger`], [`Amcheck`], [`AmcheckAfterCrash`], [`ValidateCatalog`] |
//! | [`load`] | [`StressLoad`], [`WriteLedger`], [`RunWorkload`] (any registered workload) |
//! | [`schema`] | [`Discover`], [`CreateLedger`], [`RunSql`] |
//! | [`sql`] | [`Sql`], [`Finish`], [`SessionPid`], [`Case`], [`Verdict`]: SQL steps of transaction roles with their expected outcomes (a value, a row count, a SQLSTATE, waiting for a given role's lock) |
//! | [`fault`] | [`FaultPoint`] |

pub mod backup;
pub mod fault;
pub mod load;
pub mod phase;
pub mod query;
pub mod replication;
pub mod schema;
pub mod server;
pub mod sql;
pub mod verify;
pub mod wal;

pub use backup::{BackgroundBackup, BackupOutcome, FinishBackup, StartBackup};
pub use backup::{RemoveRestored, Restore, RestoreTo, TakeBackup, VerifyBackup};
pub use fault::FaultPoint;
pub use load::{RunWorkload, StressLoad, WorkloadSummary, WriteLedger};
pub use phase::Phase;
pub use query::{CheckValue, ConnectsTo, PollUntil, Query, Refuses, Wanted};
pub use replication::{
    Follow, PrepareReplica, Promote, RestartAsStandby, StartPrepared, StartReplica, WaitForReplay,
};
pub use schema::{CreateLedger, Discover, RunSql};
pub use server::{
    Crash, KillServer, ResetXidEpoch, RestartServer, ServerAddress, ServerInfo, StartServer,
    StopServer,
};
pub use sql::{Case, Expect, Finish, Level, SessionPid, Sql, Verdict};
/// How [`StopServer`] stops (`Smart`, `Fast`, `Immediate`), here so that a scenario
/// needs no import from the runtime's PostgreSQL layer.
pub use stormchor_postgres::StopMode;
pub use verify::{
    Amcheck, AmcheckAfterCrash, CompareChecksums, TableChecksums, ValidateCatalog, VerifyLedger,
};
pub use wal::{Goal, GoalKind, Point, RecordGoal, RecordPoint, RecoveryGoal, SwitchWal};

use stormchor_runtime::{EffectFailure, ExtensionRegistry, RegistryError};

use crate::effect::register;
use crate::node::{KitRole, KitState};

/// Registers every kit effect.
pub(crate) fn register_all<R: KitRole>(
    registry: &mut ExtensionRegistry<KitState<R>>,
) -> Result<(), RegistryError> {
    register::<Phase, R>(registry)?;
    register::<StartServer, R>(registry)?;
    register::<StopServer, R>(registry)?;
    register::<KillServer, R>(registry)?;
    register::<RestartServer, R>(registry)?;
    register::<Crash, R>(registry)?;
    register::<ServerAddress, R>(registry)?;
    register::<ResetXidEpoch, R>(registry)?;
    register::<TakeBackup, R>(registry)?;
    register::<VerifyBackup, R>(registry)?;
    register::<Restore, R>(registry)?;
    register::<RemoveRestored, R>(registry)?;
    register::<StartBackup, R>(registry)?;
    register::<FinishBackup, R>(registry)?;
    register::<BackgroundBackup, R>(registry)?;
    register::<RecordPoint, R>(registry)?;
    register::<RecordGoal, R>(registry)?;
    register::<SwitchWal, R>(registry)?;
    register::<StartReplica, R>(registry)?;
    register::<Promote, R>(registry)?;
    register::<WaitForReplay, R>(registry)?;
    register::<Follow, R>(registry)?;
    register::<PrepareReplica, R>(registry)?;
    register::<StartPrepared, R>(registry)?;
    register::<RestartAsStandby, R>(registry)?;
    register::<Query, R>(registry)?;
    register::<PollUntil, R>(registry)?;
    register::<Refuses, R>(registry)?;
    register::<CheckValue, R>(registry)?;
    register::<ConnectsTo, R>(registry)?;
    register::<TableChecksums, R>(registry)?;
    register::<CompareChecksums, R>(registry)?;
    register::<VerifyLedger, R>(registry)?;
    register::<Amcheck, R>(registry)?;
    register::<AmcheckAfterCrash, R>(registry)?;
    register::<ValidateCatalog, R>(registry)?;
    register::<StressLoad, R>(registry)?;
    register::<WriteLedger, R>(registry)?;
    register::<RunWorkload, R>(registry)?;
    register::<SessionPid, R>(registry)?;
    register::<Discover, R>(registry)?;
    register::<CreateLedger, R>(registry)?;
    register::<RunSql, R>(registry)?;
    register::<Sql, R>(registry)?;
    register::<Finish, R>(registry)?;
    register::<Case, R>(registry)?;
    register::<Verdict, R>(registry)?;
    register::<FaultPoint, R>(registry)?;
    Ok(())
}

/// An effect failure from any error.
pub(crate) fn failed(error: impl std::fmt::Display) -> EffectFailure {
    EffectFailure::permanent(error.to_string())
}

/// Connects to a server ([`stormchor_postgres::connect`]: bounded by the connection
/// string's `connect_timeout`, 30 s unless it says otherwise).
pub(crate) async fn connect(connection: &str) -> Result<tokio_postgres::Client, EffectFailure> {
    stormchor_postgres::connect(connection)
        .await
        .map_err(failed)
}
