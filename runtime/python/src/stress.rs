//! The stress mix inside a kit program with an action registry from Python: the
//! kit's `StressLoad`, except that the actions come from the registry given (each
//! run on a fresh copy of it) instead of the node's default mix.

use std::any::{Any, TypeId};
use std::fmt;
use std::time::Duration;

use stormchor_choreography::ExtensionEffect;
use stormchor_kit::effects::ServerInfo;
use stormchor_kit::{ActionRecord, DbEffect, Node, Slot};
use stormchor_postgres::ActionRegistry;
use stormchor_runtime::EffectFailure;
use stormchor_workloads::{WorkLimit, WorkerConfig, run_worker};

/// Runs the actions of `registry` for `duration` on the server in `on`, on this
/// role's catalog; the output is the number of actions run.
#[derive(Clone)]
pub(crate) struct StressWith {
    pub(crate) on: Slot<ServerInfo>,
    pub(crate) duration: Duration,
    pub(crate) registry: ActionRegistry,
}

impl fmt::Debug for StressWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StressLoad {{ on: {:?}, duration: {:?}, actions: {:?} }}",
            self.on, self.duration, self.registry
        )
    }
}

impl PartialEq for StressWith {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

impl ExtensionEffect for StressWith {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "StressLoad"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        Vec::new()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn ExtensionEffect> {
        Box::new(self.clone())
    }
}

impl DbEffect for StressWith {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        let server = node.value(self.on)?;
        let load = node
            .journal()
            .counts()
            .get("stress_loads")
            .copied()
            .unwrap_or(0);
        node.journal().count("stress_loads", 1);
        let mut config = WorkerConfig::new(
            format!("{}#{load}", node.role()),
            node.options().seed,
            server.connection,
            WorkLimit::Duration(self.duration),
        );
        config.stop = stormchor_kit::interrupt::flag();
        config.sql_log = node.sql_log_path();
        let report = run_worker(config, self.registry.clone(), node.catalog().clone())
            .await
            .map_err(|e| EffectFailure::permanent(e.to_string()))?;
        let runs = report.runs();
        node.journal().count("stress_actions", runs);
        for (name, stats) in &report.actions {
            node.journal().action(
                name,
                &ActionRecord {
                    runs: stats.runs(),
                    ok: stats.ok,
                    errors: stats.errors.clone(),
                    p50_us: stats.latency.value_at_quantile(0.5),
                    p99_us: stats.latency.value_at_quantile(0.99),
                },
            );
        }
        Ok(runs)
    }
}
