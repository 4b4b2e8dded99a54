//! Load: the stress mix of DDL/DML on a role's share of the schema, and the ledger
//! writer whose every transaction's outcome is known.

use std::time::Duration;

use stormchor_macros::ExtensionEffect;
use stormchor_runtime::EffectFailure;
use stormchor_runtime::postgres::{
    Ledger, LedgerTarget, WorkLimit, WorkerConfig, run_worker, write_ledger,
};

use super::failed;
use super::server::ServerInfo;
use crate::effect::DbEffect;
use crate::node::{Node, lock};
use crate::value::Slot;

/// Runs the action mix for `duration` on the server in `on`, on this role's catalog
/// (discover it first with [`Discover`](super::Discover)); the output is the number of
/// actions run. Ends early on an interrupt.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StressLoad {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// How long.
    pub duration: Duration,
}

impl DbEffect for StressLoad {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        let server = node.value(self.on)?;
        let mut config = WorkerConfig::new(
            node.role(),
            node.options().seed,
            server.connection,
            WorkLimit::Duration(self.duration),
        );
        config.stop = crate::interrupt::flag();
        config.sql_log = node.sql_log_path();
        let report = run_worker(config, node.actions.clone(), node.catalog().clone())
            .await
            .map_err(failed)?;
        let runs = report.runs();
        node.journal().count("stress_actions", runs);
        for (name, stats) in &report.actions {
            node.journal().action(
                name,
                &crate::journal::ActionRecord {
                    runs: stats.runs(),
                    ok: stats.ok,
                    errors: stats.errors.clone(),
                    p50_us: stats.latency.value_at_quantile(0.5),
                    p99_us: stats.latency.value_at_quantile(0.99),
                },
            );
        }
        lock(&node.stress).push(report);
        Ok(runs)
    }
}

/// Writes ledger transactions (3 rows each) to the server in `on` for `duration`,
/// reconnecting through crashes; the output is this role's ledger so far (kept across
/// rounds), to send to the verifier. Only members of a family write (their index is
/// the writer's number).
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct WriteLedger {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// How long.
    pub duration: Duration,
}

impl DbEffect for WriteLedger {
    type Output = Ledger;

    async fn run(&self, node: &Node) -> Result<Ledger, EffectFailure> {
        let server = node.value(self.on)?;
        let mut ledger = std::mem::take(&mut *lock(&node.ledger));
        if ledger.rows_per_tx == 0 {
            let Some(k) = node.member() else {
                return Err(EffectFailure::permanent(format!(
                    "{} is no member of a family: only members write the ledger",
                    node.role()
                )));
            };
            ledger = Ledger::new(i32::from(k), 3);
        }
        let target = LedgerTarget::new(server.connection);
        write_ledger(
            &mut ledger,
            &target,
            self.duration,
            &crate::interrupt::flag(),
        )
        .await;
        *lock(&node.ledger) = ledger.clone();
        Ok(ledger)
    }
}
