//! The bridge between choreographies and the database: ready extension effects for
//! database work, and one function that registers their handlers.
//!
//! A scenario author puts these effects in a global program; the roles that carry
//! them out need role data implementing [`DatabaseRole`], which gives the handlers
//! the server, the shared catalog, the action mix and the run's seed.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use stormchor_choreography::{Message, RoleId};
use stormchor_macros::ExtensionEffect;

use crate::postgres::{
    ActionRegistry, Catalog, Divergence, WorkLimit, WorkerConfig, WorkerReport, discover_into,
    run_worker, validate,
};
use crate::registry::{EffectFailure, ExtensionRegistry, RegistryError};
use crate::state::RoleState;

/// What the database effects of a role work with.
#[derive(Debug)]
pub struct DatabaseContext {
    /// Where to connect.
    pub connection_string: String,
    /// The schema catalog shared by every role of the run.
    pub catalog: Arc<Catalog>,
    /// The action mix of this role's workers.
    pub actions: ActionRegistry,
    /// The run's seed.
    pub seed: u64,
    /// The reports of the workloads this role ran.
    pub reports: Mutex<Vec<WorkerReport>>,
    /// The differences the last validation found.
    pub divergences: Mutex<Vec<Divergence>>,
    /// Set it to end running workloads early (each worker finishes its action).
    pub stop: Arc<AtomicBool>,
}

impl DatabaseContext {
    /// A context for `connection_string`, sharing `catalog`, with the default action mix.
    pub fn new(connection_string: impl Into<String>, catalog: Arc<Catalog>, seed: u64) -> Self {
        DatabaseContext {
            connection_string: connection_string.into(),
            catalog,
            actions: ActionRegistry::default_actions(),
            seed,
            reports: Mutex::new(Vec::new()),
            divergences: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The workload reports so far.
    pub fn reports(&self) -> Vec<WorkerReport> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The differences the last validation found.
    pub fn divergences(&self) -> Vec<Divergence> {
        self.divergences
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Role data that can carry out database effects.
pub trait DatabaseRole: Send + Sync + 'static {
    /// The role's database context.
    fn database(&self) -> &DatabaseContext;
}

impl DatabaseRole for DatabaseContext {
    fn database(&self) -> &DatabaseContext {
        self
    }
}

/// Runs the role's action mix for a while as a worker; the result is the number of
/// actions run (a `u64`), the report goes to the role's [`DatabaseContext`].
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RunStressMix<R> {
    /// The role that carries it out.
    #[participant]
    pub role: R,
    /// How long.
    pub duration: Duration,
}

/// Rediscovers the live schema and fails, listing every difference, unless it
/// matches the shared catalog; the result is the number of tables checked (`u64`).
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct ValidateCatalog<R> {
    /// The role that carries it out.
    #[participant]
    pub role: R,
}

/// Reads the existing schema into the shared catalog (see
/// [`discover_into`]); the result is the number of
/// tables found (`u64`).
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct DiscoverSchema<R> {
    /// The role that carries it out.
    #[participant]
    pub role: R,
}

/// Runs `work` on a new connection to the role's server, then closes it.
async fn with_client<T>(
    db: &DatabaseContext,
    work: impl AsyncFnOnce(&tokio_postgres::Client) -> T,
) -> Result<T, EffectFailure> {
    let (client, connection) =
        tokio_postgres::connect(&db.connection_string, tokio_postgres::NoTls)
            .await
            .map_err(EffectFailure::transient)?;
    let driver = tokio::spawn(connection);
    let result = work(&client).await;
    drop(client);
    let _ = driver.await;
    Ok(result)
}

/// Registers the handlers of the bridge's effects.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use stormchor_runtime::bridge::{register_database_effects, DatabaseContext, RunStressMix};
/// use stormchor_runtime::{ExtensionRegistry, RoleState};
///
/// let mut registry: ExtensionRegistry<RoleState<u8, u8, DatabaseContext>> = ExtensionRegistry::new();
/// register_database_effects(&mut registry).expect("first registration");
/// assert!(registry.handles::<RunStressMix<u8>>());
/// ```
pub fn register_database_effects<R, M, S>(
    registry: &mut ExtensionRegistry<RoleState<R, M, S>>,
) -> Result<(), RegistryError>
where
    R: RoleId,
    M: Message,
    S: DatabaseRole,
{
    registry.register::<RunStressMix<R>, u64, _>(|state, effect| {
        Box::pin(async move {
            let db = state.data().database();
            let mut config = WorkerConfig::new(
                format!("{:?}", effect.role),
                db.seed,
                db.connection_string.clone(),
                WorkLimit::Duration(effect.duration),
            );
            config.stop = db.stop.clone();
            let report = run_worker(config, db.actions.clone(), db.catalog.clone())
                .await
                .map_err(EffectFailure::transient)?;
            let runs = report.runs();
            db.reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(report);
            Ok(runs)
        })
    })?;
    registry.register::<DiscoverSchema<R>, u64, _>(|state, _| {
        Box::pin(async move {
            let db = state.data().database();
            let found = with_client(db, async |client| {
                discover_into(client, "public", &db.catalog).await
            })
            .await?;
            Ok(found.map_err(EffectFailure::permanent)? as u64)
        })
    })?;
    registry.register::<ValidateCatalog<R>, u64, _>(|state, _| {
        Box::pin(async move {
            let db = state.data().database();
            let divergences = with_client(db, async |client| {
                validate(client, "public", &db.catalog).await
            })
            .await?
            .map_err(EffectFailure::transient)?;
            *db.divergences
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = divergences.clone();
            if divergences.is_empty() {
                Ok(db.catalog.len() as u64)
            } else {
                let list: Vec<String> = divergences.iter().map(ToString::to_string).collect();
                Err(EffectFailure::permanent(format!(
                    "{} differences between the catalog and the database: {}",
                    list.len(),
                    list.join("; ")
                )))
            }
        })
    })?;
    Ok(())
}
