//! Database effects inside a choreography, on a real cluster: workers run the stress
//! mix and report how many actions they ran; the coordinator validates the catalog.
//! A table dropped behind the catalog's back must make the validation fail.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use stormchor_choreography::{ExtensionEffect, Family, Program};
use stormchor_runtime::bridge::{
    DatabaseContext, DatabaseRole, RunStressMix, ValidateCatalog, register_database_effects,
};
use stormchor_runtime::postgres::{Catalog, ClusterOptions, PgCluster};
use stormchor_runtime::{
    EffectFailure, ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, RunErrorKind,
    run_all,
};

struct Node {
    db: DatabaseContext,
}

impl DatabaseRole for Node {
    fn database(&self) -> &DatabaseContext {
        &self.db
    }
}

impl RoleLogic<Role, Msg> for Node {
    fn message(state: &RoleState<Role, Msg, Self>, _to: Role, template: &Msg) -> Msg {
        match template {
            Msg::Rows(_) => Msg::Rows(state.result::<RunStressMix<Role>, u64>().map_or(0, |n| *n)),
            other => other.clone(),
        }
    }
}

/// Drops a table without telling the catalog.
#[derive(Clone, Debug)]
struct DropBehindTheBack(Role);

impl ExtensionEffect for DropBehindTheBack {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "DropBehindTheBack"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        vec![Box::new(self.0)]
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

fn scenario(sabotage: bool) -> Program<Role, Msg> {
    let workers = Family::indexed("Worker", 2, Worker);
    let mut program = Program::new().role(Coordinator).family(&workers).broadcast(
        Coordinator,
        &workers,
        Msg::Start,
    );
    for i in 0..2 {
        program = program.ext(RunStressMix {
            role: Worker(i),
            duration: Duration::from_secs(2),
        });
    }
    program = program.gather(&workers, Coordinator, Msg::Rows(0));
    if sabotage {
        program = program.ext(DropBehindTheBack(Coordinator));
    }
    program.ext(ValidateCatalog { role: Coordinator })
}

async fn run(sabotage: bool) -> stormchor_runtime::RunReport<Role, Msg, Node> {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let catalog = Arc::new(Catalog::new());
    let mut registry = ExtensionRegistry::new();
    register_database_effects(&mut registry).expect("registered");
    registry
        .register::<DropBehindTheBack, (), _>(|state: &RoleState<Role, Msg, Node>, _| {
            Box::pin(async move {
                let db = state.data().database();
                let table = db
                    .catalog
                    .snapshot()
                    .values()
                    .find(|t| matches!(t.kind, stormchor_runtime::postgres::TableKind::Normal))
                    .cloned();
                let table = table.ok_or_else(|| EffectFailure::permanent("no table to drop"))?;
                let (client, connection) =
                    tokio_postgres::connect(&db.connection_string, tokio_postgres::NoTls)
                        .await
                        .map_err(EffectFailure::permanent)?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP TABLE {} CASCADE", table.name))
                    .await
                    .map_err(EffectFailure::permanent)?;
                Ok(())
            })
        })
        .expect("registered");
    let registry = Arc::new(registry);
    let connection = cluster.connection_string();
    run_all(
        &scenario(sabotage),
        |_| {
            RoleSetup::with_registry(
                Node {
                    db: DatabaseContext::new(connection.clone(), catalog.clone(), 17),
                },
                registry.clone(),
            )
        },
        RunConfig::default().with_deadline(Duration::from_secs(60)),
    )
    .await
    .expect("sound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_the_mix_and_the_coordinator_validates() {
    let report = run(false).await;
    assert!(
        report.is_success(),
        "{:?}",
        report
            .failures()
            .map(|(_, f)| f.to_string())
            .collect::<Vec<_>>()
    );
    for i in 0..2 {
        let worker = report.state(&Worker(i)).expect("state");
        let runs = worker.data().db.reports()[0].runs();
        assert!(runs > 10);
        assert_eq!(
            report
                .state(&Coordinator)
                .and_then(|s| s.latest_from(&Worker(i))),
            Some(Msg::Rows(runs))
        );
    }
    assert!(
        report
            .state(&Coordinator)
            .expect("state")
            .data()
            .db
            .divergences()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_dropped_behind_the_catalogs_back_fails_validation() {
    let report = run(true).await;
    let failure = report.outcomes[&Coordinator]
        .result
        .as_ref()
        .expect_err("validation fails");
    assert!(
        matches!(failure.error.kind(), RunErrorKind::Extension(_)),
        "{failure}"
    );
    assert!(
        failure
            .to_string()
            .contains("extension effect ValidateCatalog failed"),
        "{failure}"
    );
    assert!(
        failure
            .to_string()
            .contains("in the catalog but not in the database"),
        "{failure}"
    );
    let divergences = report
        .state(&Coordinator)
        .expect("state")
        .data()
        .db
        .divergences();
    assert!(!divergences.is_empty());
}
