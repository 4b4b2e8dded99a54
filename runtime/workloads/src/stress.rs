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
#[derive(Clone, Debug)]
pub struct Stress {
    actions: ActionRegistry,
    catalog: Arc<Catalog>,
}

impl Default for Stress {
    fn default() -> Self {
        Stress {
            actions: ActionRegistry::default_actions(),
            catalog: Arc::new(Catalog::new()),
        }
    }
}

impl Stress {
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
                sql: SqlSession::new(client, SqlLog::discard()),
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
