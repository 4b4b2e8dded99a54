//! The `stress` workload: the weighted random DDL/DML action mix on tracked metadata.

use std::sync::Arc;

use futures::future::BoxFuture;
use rand::rngs::SmallRng;
use tokio_postgres::Client;

use super::{Operation, Workload, WorkloadError, WorkloadInfo, WorkloadSession, known_keys};
use stormchor_postgres::{
    ActionContext, ActionErrorKind, ActionRegistry, Catalog, SqlError, SqlLog, SqlSession, validate,
};

/// The action mix of the PostgreSQL layer as a workload: each operation is one of the
/// registry's actions, with its weight; every client shares one schema catalog.
///
/// `setup` discovers what the database already holds, `cleanup` drops every table the
/// catalog knows. [`Stress::validate`] compares the catalog with the database.
///
/// Run by the load runner ([`run_load`](crate::run_load)) like any workload: a run's
/// figures are then per action ([`OperationMetrics`](crate::OperationMetrics)), its
/// errors by SQLSTATE or `connection`, `no target` (nothing suited the action),
/// `registry`, `raised` (a custom action raised).
///
/// # Example
/// ```no_run
/// use std::sync::Arc;
/// use stormchor_postgres::{ActionRegistry, Catalog};
/// use stormchor_workloads::{LoadConfig, Stress, Workload, WorkloadError, run_load, weights};
///
/// # async fn demo(catalog: Arc<Catalog>) -> Result<(), WorkloadError> {
/// let mix = Stress::new(ActionRegistry::default_actions(), catalog);
/// let weights = weights(&mix.info(), None)?;
/// let report = run_load(
///     Arc::new(mix),
///     "host=127.0.0.1 user=postgres",
///     &weights,
///     LoadConfig::operations_per_client(1, 100),
/// )
/// .await?;
/// assert_eq!(report.runs(), 100);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Stress {
    actions: ActionRegistry,
    catalog: Arc<Catalog>,
    log: SqlLog,
}

impl Default for Stress {
    fn default() -> Self {
        Stress::new(ActionRegistry::default_actions(), Arc::new(Catalog::new()))
    }
}

impl Stress {
    /// The actions of `actions` on `catalog` (shared with whoever else holds it: the
    /// other loads of a role, a verifier).
    pub fn new(actions: ActionRegistry, catalog: Arc<Catalog>) -> Self {
        Stress {
            actions,
            catalog,
            log: SqlLog::discard(),
        }
    }

    /// Logs every statement of its sessions, timed and with its outcome, to `log`.
    pub fn with_sql_log(mut self, log: SqlLog) -> Self {
        self.log = log;
        self
    }

    /// The shared catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The differences between the catalog and the database, as text.
    pub async fn validate(&self, client: &Client) -> Result<Vec<String>, WorkloadError> {
        let divergences = validate(client, "public", &self.catalog)
            .await
            .map_err(|error| WorkloadError::Config {
                workload: "stress".to_owned(),
                problem: format!("validation failed: {error}"),
            })?;
        Ok(divergences.iter().map(ToString::to_string).collect())
    }
}

struct StressSession {
    sql: SqlSession,
    actions: ActionRegistry,
    names: Vec<String>,
    catalog: Arc<Catalog>,
}

impl WorkloadSession for StressSession {
    fn run<'a>(
        &'a mut self,
        operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>> {
        Box::pin(async move {
            let Some(name) = self.names.get(operation) else {
                return Ok(());
            };
            let context = ActionContext {
                catalog: &self.catalog,
                rng,
                sql: &self.sql,
            };
            match self.actions.run(name, context).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    let message = error.to_string();
                    Err(match error.kind {
                        ActionErrorKind::Sql(sql) => sql,
                        ActionErrorKind::NoTarget(_) => SqlError {
                            sqlstate: Some("no target".to_owned()),
                            message,
                        },
                        ActionErrorKind::Registry(_) => SqlError {
                            sqlstate: Some("registry".to_owned()),
                            message,
                        },
                        ActionErrorKind::Raised(_) => SqlError {
                            sqlstate: Some("raised".to_owned()),
                            message,
                        },
                    })
                }
            }
        })
    }
}

impl Workload for Stress {
    fn info(&self) -> WorkloadInfo {
        WorkloadInfo {
            name: "stress".to_owned(),
            version: "1".to_owned(),
            description: "the weighted random DDL/DML action mix on a shared schema catalog"
                .to_owned(),
            operations: self
                .actions
                .list()
                .into_iter()
                .map(|(name, weight)| Operation {
                    name,
                    weight: u32::try_from(weight).unwrap_or(u32::MAX),
                })
                .collect(),
        }
    }

    fn configure(&mut self, section: &toml::Table) -> Result<(), WorkloadError> {
        known_keys("stress", section, &[])
    }

    fn custom_metrics(&self) -> Vec<(String, f64)> {
        vec![("catalog_tables".to_owned(), self.catalog.len() as f64)]
    }

    fn setup<'a>(&'a self, client: &'a mut Client) -> BoxFuture<'a, Result<(), WorkloadError>> {
        Box::pin(async move {
            // The session's schema: `public` on a throwaway cluster, the run's own
            // schema on a target (a user's tables are never the mix's to alter or drop).
            let schema: Option<String> = client
                .query_one("SELECT current_schema()", &[])
                .await
                .map_err(|error| WorkloadError::Sql {
                    workload: "stress".to_owned(),
                    what: "reading the current schema".to_owned(),
                    error: SqlError::from(error),
                })?
                .get(0);
            let schema = schema.ok_or_else(|| WorkloadError::Config {
                workload: "stress".to_owned(),
                problem: "no schema of the search path exists".to_owned(),
            })?;
            stormchor_postgres::discover_into(client, &schema, &self.catalog)
                .await
                .map(|_| ())
                .map_err(|error| WorkloadError::Config {
                    workload: "stress".to_owned(),
                    problem: format!("discovering the existing schema: {error}"),
                })
        })
    }

    fn cleanup<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), WorkloadError>> {
        Box::pin(async move {
            let names: Vec<String> = self
                .catalog
                .snapshot()
                .values()
                .filter(|t| !matches!(t.kind, stormchor_postgres::TableKind::PartitionOf(_)))
                .map(|t| t.name.clone())
                .collect();
            if !names.is_empty() {
                client
                    .batch_execute(&format!(
                        "DROP TABLE IF EXISTS {} CASCADE",
                        names.join(", ")
                    ))
                    .await
                    .map_err(|error| WorkloadError::Sql {
                        workload: "stress".to_owned(),
                        what: "dropping the tables".to_owned(),
                        error: SqlError::from(error),
                    })?;
            }
            self.catalog.clear();
            Ok(())
        })
    }

    fn session<'a>(
        &'a self,
        client: Client,
    ) -> BoxFuture<'a, Result<Box<dyn WorkloadSession>, WorkloadError>> {
        Box::pin(async move {
            Ok(Box::new(StressSession {
                sql: SqlSession::new(client, self.log.clone()),
                actions: self.actions.clone(),
                names: self
                    .actions
                    .list()
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect(),
                catalog: self.catalog.clone(),
            }) as Box<dyn WorkloadSession>)
        })
    }
}
