//! The weighted action registry and the built-in actions against a real PostgreSQL:
//! exact selection, layered copies, bad input, composites, custom SQL actions. The
//! workers that run them under load are tested in `stormchor-workloads` (worker.rs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use stormchor_postgres::{
    ActionContext, ActionErrorKind, ActionRegistry, Catalog, ClusterOptions, PgCluster, SqlAction,
    SqlLog, SqlSession, validate,
};

#[test]
fn selection_is_exactly_proportional_to_weight() {
    let mut registry = ActionRegistry::new();
    let weights = [("a", 1), ("b", 2), ("zero", 0), ("c", 3), ("d", 4)];
    for (name, weight) in weights {
        registry
            .insert(name, weight, Arc::new(SqlAction::new("SELECT 1")))
            .expect("insert");
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let draws = 200_000;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..draws {
        let (name, _) = registry.pick(&mut rng).expect("something to draw");
        *counts.entry(name.to_owned()).or_default() += 1;
    }
    assert!(!counts.contains_key("zero"), "weight 0 is never drawn");
    // Pearson's chi-square against w / total, 3 degrees of freedom: the 99.9% quantile is 16.27.
    let total: i64 = weights.iter().map(|(_, w)| w).sum();
    let chi2: f64 = weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(name, w)| {
            let expected = draws as f64 * *w as f64 / total as f64;
            let observed = counts.get(*name).copied().unwrap_or(0) as f64;
            (observed - expected).powi(2) / expected
        })
        .sum();
    assert!(chi2 < 16.27, "chi-square {chi2} for {counts:?}");
    // Everything at 0: nothing to draw.
    let mut silent = registry.clone();
    for (name, _) in weights {
        silent.set_weight(name, 0).expect("known");
    }
    assert!(silent.pick(&mut rng).is_none());
}

#[test]
fn layered_copies_change_independently() {
    let defaults = ActionRegistry::default_actions();
    assert_eq!(
        defaults
            .list()
            .iter()
            .map(|(n, w)| (n.as_str(), *w))
            .collect::<Vec<_>>(),
        vec![
            ("create_table", 100),
            ("create_partitioned_table", 100),
            ("drop_table", 100),
            ("alter_table", 100),
            ("rename_table", 100),
            ("create_index", 100),
            ("drop_index", 100),
            ("create_partition", 100),
            ("drop_partition", 100),
            ("insert_some_rows", 1000),
            ("update_one_row", 1000),
            ("delete_some_rows", 1000),
            ("select_query", 1000),
            ("transaction", 100),
        ]
    );
    let mut node = defaults.clone();
    node.set_weight("insert_some_rows", 5).expect("known");
    let mut worker = node.clone();
    worker.remove("drop_table").expect("known");
    worker
        .insert_table_sql("vacuum", 10, "VACUUM {table}")
        .expect("new");
    assert_eq!(defaults.weight("insert_some_rows"), Ok(1000));
    assert_eq!(node.weight("insert_some_rows"), Ok(5));
    assert!(node.weight("drop_table").is_ok() && worker.weight("drop_table").is_err());
    assert!(node.weight("vacuum").is_err() && worker.weight("vacuum") == Ok(10));
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let mut registry = ActionRegistry::default_actions();
    let unknown = registry
        .set_weight("drop_everything", 1)
        .expect_err("unknown");
    assert!(
        unknown
            .to_string()
            .starts_with("no action named drop_everything; known actions: create_table, "),
        "{unknown}"
    );
    let negative = registry.set_weight("drop_table", -5).expect_err("negative");
    assert_eq!(
        negative.to_string(),
        "action drop_table: weight -5 is negative; weights are 0 or more"
    );
    let duplicate = registry
        .insert_sql("drop_table", 1, "SELECT 1")
        .expect_err("taken");
    assert_eq!(
        duplicate.to_string(),
        "an action named drop_table is already registered"
    );
    let no_placeholder = registry
        .insert_table_sql("vacuum", 1, "VACUUM")
        .expect_err("no placeholder");
    assert!(
        no_placeholder
            .to_string()
            .contains("has no {table} placeholder")
    );

    // A {table} action with no table, on a real server.
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    registry
        .insert_table_sql("reindex", 1, "REINDEX TABLE {table}")
        .expect("added");
    let session = SqlSession::connect(&cluster.connection_string(), SqlLog::discard())
        .await
        .expect("connect");
    let catalog = Catalog::new();
    let mut rng = SmallRng::seed_from_u64(1);
    let error = registry
        .run(
            "reindex",
            ActionContext {
                catalog: &catalog,
                rng: &mut rng,
                sql: &session,
            },
        )
        .await
        .expect_err("no table");
    assert_eq!(
        error.to_string(),
        "action reindex: nothing to act on: no table for `REINDEX TABLE {table}`"
    );
    // A failing statement carries its SQLSTATE.
    registry
        .insert_sql("broken", 1, "SELECT * FROM no_such_table")
        .expect("added");
    let error = registry
        .run(
            "broken",
            ActionContext {
                catalog: &catalog,
                rng: &mut rng,
                sql: &session,
            },
        )
        .await
        .expect_err("fails");
    assert_eq!(error.sqlstate(), Some("42P01"));
    assert!(matches!(error.kind, ActionErrorKind::Sql(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composite_action_runs_its_parts_in_order() {
    use stormchor_postgres::{Composite, CreateTable, DropTable, InsertSomeRows};
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut registry = ActionRegistry::new();
    let parts: Vec<Arc<dyn stormchor_postgres::Action>> = vec![
        Arc::new(CreateTable),
        Arc::new(InsertSomeRows),
        Arc::new(CreateTable),
    ];
    registry
        .insert("create_two", 1, Arc::new(Composite::new(parts)))
        .expect("added");
    registry
        .insert(
            "drop_one",
            0,
            Arc::new(Composite::new(vec![Arc::new(DropTable)])),
        )
        .expect("added");
    let session = SqlSession::connect(&cluster.connection_string(), SqlLog::discard())
        .await
        .expect("connect");
    let catalog = Catalog::new();
    let mut rng = SmallRng::seed_from_u64(5);
    registry
        .run(
            "create_two",
            ActionContext {
                catalog: &catalog,
                rng: &mut rng,
                sql: &session,
            },
        )
        .await
        .expect("ran");
    assert_eq!(catalog.len(), 2);
    registry
        .run(
            "drop_one",
            ActionContext {
                catalog: &catalog,
                rng: &mut rng,
                sql: &session,
            },
        )
        .await
        .expect("ran");
    assert_eq!(catalog.len(), 1);
    assert!(
        validate(session.client(), "public", &catalog)
            .await
            .expect("validated")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_sql_actions_run_and_can_be_removed_at_run_time() {
    use stormchor_postgres::CreateTable;
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("custom.sql.log");
    let session = SqlSession::connect(
        &cluster.connection_string(),
        SqlLog::to_file(&log).expect("log"),
    )
    .await
    .expect("connect");
    let catalog = Catalog::new();
    let mut rng = SmallRng::seed_from_u64(9);
    let mut registry = ActionRegistry::new();
    registry
        .insert("create_table", 1, Arc::new(CreateTable))
        .expect("added");
    registry
        .insert_table_sql("vacuum_table", 1, "VACUUM (ANALYZE) {table}")
        .expect("added");
    registry
        .insert_sql("checkpoint", 1, "CHECKPOINT")
        .expect("added");
    for name in ["create_table", "vacuum_table", "checkpoint"] {
        registry
            .run(
                name,
                ActionContext {
                    catalog: &catalog,
                    rng: &mut rng,
                    sql: &session,
                },
            )
            .await
            .expect(name);
    }
    let table = catalog
        .snapshot()
        .values()
        .next()
        .expect("a table")
        .name
        .clone();
    let analyzed: i64 = session
        .client()
        .query_one("SELECT count(*) FROM pg_stat_user_tables WHERE relname = $1 AND last_analyze IS NOT NULL", &[&table])
        .await
        .expect("stats")
        .get(0);
    assert_eq!(analyzed, 1, "VACUUM (ANALYZE) ran on {table}");
    registry.remove("vacuum_table").expect("removed");
    assert!(
        registry
            .run(
                "vacuum_table",
                ActionContext {
                    catalog: &catalog,
                    rng: &mut rng,
                    sql: &session
                }
            )
            .await
            .is_err()
    );
    drop(session);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged
            .lines()
            .any(|l| l.contains(" ok ") && l.ends_with(&format!("| VACUUM (ANALYZE) {table}"))),
        "{logged}"
    );
    assert!(
        logged.lines().any(|l| l.ends_with("| CHECKPOINT")),
        "{logged}"
    );
}

#[tokio::test]
async fn dropping_a_column_drops_its_foreign_key_from_the_catalog_too() {
    use stormchor_postgres::{AlterTable, discover_into};
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let session = SqlSession::connect(&cluster.connection_string(), SqlLog::discard())
        .await
        .expect("connect");
    session
        .run(
            "CREATE TABLE parent (id int PRIMARY KEY); \
             CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id))",
        )
        .await
        .expect("schema");
    let catalog = Catalog::new();
    discover_into(session.client(), "public", &catalog)
        .await
        .expect("discovered");
    let mut registry = ActionRegistry::new();
    registry
        .insert("alter", 1, Arc::new(AlterTable))
        .expect("added");
    let mut rng = SmallRng::seed_from_u64(11);
    let has_parent_id = |catalog: &Catalog| {
        catalog
            .by_name("child")
            .is_some_and(|t| t.column("parent_id").is_some())
    };
    let mut alters = 0;
    while has_parent_id(&catalog) && alters < 500 {
        let _ = registry
            .run(
                "alter",
                ActionContext {
                    catalog: &catalog,
                    rng: &mut rng,
                    sql: &session,
                },
            )
            .await;
        alters += 1;
    }
    assert!(
        !has_parent_id(&catalog),
        "no DROP COLUMN parent_id in {alters} alterations"
    );
    let child = catalog.by_name("child").expect("child");
    assert!(child.foreign_keys.is_empty(), "{:?}", child.foreign_keys);
    let divergences = validate(session.client(), "public", &catalog)
        .await
        .expect("validated");
    assert!(divergences.is_empty(), "{divergences:?}");
}
