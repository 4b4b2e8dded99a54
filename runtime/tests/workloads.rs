//! The pgbench workloads against a real PostgreSQL, and their config errors.

use std::sync::Arc;
use std::time::Duration;

use stormchor_runtime::postgres::{ClusterOptions, PgCluster};
use stormchor_runtime::workload::{
    LoadConfig, Workload, WorkloadRegistry, run_closed_loop, weights,
};

fn section(text: &str) -> toml::Table {
    text.parse().expect("toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpcb_keeps_every_balance_consistent() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut workload = WorkloadRegistry::with_builtins()
        .create("tpcb")
        .expect("built in");
    workload.configure(&section("scale = 1")).expect("valid");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("loaded");
    let accounts: i64 = client
        .query_one("SELECT count(*) FROM pgbench_accounts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(accounts, 100_000);
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let weights = weights(&workload.info(), None).expect("weights");
    let report = run_closed_loop(
        workload.clone(),
        &cluster.connection_string(),
        &weights,
        LoadConfig::new(2, Duration::from_secs(2)),
    )
    .await
    .expect("ran");
    assert!(report.successes() > 50, "{report:?}");
    assert_eq!(report.failures(), 0);
    assert_eq!(report.per_client.len(), 2);
    assert_eq!(report.per_second.iter().sum::<u64>(), report.successes());
    assert_eq!(report.operations["tpcb"].latency.len(), report.successes());
    // Every transaction moved the same delta through account, teller, branch and history.
    let row = client
        .query_one(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
                    (SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(delta) FROM pgbench_history),
                    (SELECT count(*) FROM pgbench_history)",
            &[],
        )
        .await
        .expect("sums");
    let sums: Vec<i64> = (0..4).map(|i| row.get(i)).collect();
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "{sums:?}");
    assert_eq!(row.get::<_, i64>(4) as u64, report.successes());
    workload.cleanup(&client).await.expect("cleaned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_reads_without_errors() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let workload = WorkloadRegistry::with_builtins()
        .create("read-only")
        .expect("built in");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("loaded");
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let report = run_closed_loop(
        workload,
        &cluster.connection_string(),
        &[1],
        LoadConfig::new(2, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    assert!(report.successes() > 500, "{}", report.successes());
    assert_eq!(report.failures(), 0);
}

#[test]
fn bad_config_is_an_error_naming_the_key() {
    let registry = WorkloadRegistry::with_builtins();
    let mut tpcb = registry.create("tpcb").expect("built in");
    let error = tpcb
        .configure(&section("scales = 3"))
        .expect_err("unknown key");
    assert_eq!(
        error.to_string(),
        "workload tpcb: unknown key `scales` (known keys: scale)"
    );
    let error = tpcb
        .configure(&section("scale = \"big\""))
        .expect_err("wrong type");
    assert_eq!(
        error.to_string(),
        "workload tpcb: `scale` must be a whole number of at least 1, found \"big\""
    );
    let error = tpcb
        .configure(&section("scale = 0"))
        .expect_err("too small");
    assert!(error.to_string().contains("at least 1, found 0"));
    let info = tpcb.info();
    let error = weights(&info, Some(&section("transfer = 3"))).expect_err("unknown operation");
    assert_eq!(
        error.to_string(),
        "workload tpcb: weights: unknown operation `transfer` (operations: tpcb)"
    );
    let error = weights(&info, Some(&section("tpcb = -1"))).expect_err("negative");
    assert_eq!(
        error.to_string(),
        "workload tpcb: weights.tpcb: expected a whole number of 0 or more, found -1"
    );
    let error = weights(&info, Some(&section("tpcb = 0"))).expect_err("nothing to run");
    assert!(
        error
            .to_string()
            .ends_with("every operation has weight 0: nothing to run")
    );
    let error = registry.create("tpcc").err().expect("unknown workload");
    assert_eq!(
        error.to_string(),
        "no workload named tpcc; known workloads: read-only, tpcb"
    );
}
