//! The pgbench workloads' statement path: pipelined transactions, a missing row, and a
//! run refused when its workload cannot pipeline.

use std::sync::Arc;
use std::time::Duration;

use stormchor_postgres::{ClusterOptions, PgCluster};
use stormchor_workloads::{LoadConfig, Workload, WorkloadRegistry, run_load};

async fn loaded(name: &str) -> (PgCluster, tokio_postgres::Client, Arc<dyn Workload>) {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let workload = WorkloadRegistry::with_builtins()
        .create(name)
        .expect("built in");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("loaded");
    (cluster, client, Arc::from(workload))
}

/// The sums of the balances and the deltas, and the history's rows.
async fn ledger(client: &tokio_postgres::Client) -> (Vec<i64>, u64) {
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts)::int8,
                    (SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers)::int8,
                    (SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches)::int8,
                    (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::int8,
                    (SELECT count(*) FROM pgbench_history)",
            &[],
        )
        .await
        .expect("sums");
    (
        (0..4).map(|i| row.get(i)).collect(),
        row.get::<_, i64>(4) as u64,
    )
}

fn config(clients: usize, seconds: u64, pipeline: bool) -> LoadConfig {
    let mut config = LoadConfig::new(clients, Duration::from_secs(seconds));
    config.pipeline = pipeline;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_tpcb_transaction_runs_every_statement() {
    let (cluster, client, workload) = loaded("tpcb").await;
    let report = run_load(
        workload,
        &cluster.connection_string(),
        &[1],
        config(2, 2, true),
    )
    .await
    .expect("ran");
    assert!(report.successes() > 20, "{report:?}");
    assert_eq!(report.failures(), 0, "{report:?}");
    let (sums, history) = ledger(&client).await;
    // Every transaction moved its delta through account, teller, branch and history.
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "{sums:?}");
    assert_eq!(history, report.successes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_account_is_an_error_and_the_unpipelined_transaction_rolls_back() {
    let (cluster, client, workload) = loaded("tpcb").await;
    // Nine accounts in ten are gone: their transactions read no row.
    client
        .batch_execute("DELETE FROM pgbench_accounts WHERE aid % 10 <> 0")
        .await
        .expect("deleted");
    let mut committed = 0;
    for pipeline in [false, true] {
        let report = run_load(
            workload.clone(),
            &cluster.connection_string(),
            &[1],
            config(1, 1, pipeline),
        )
        .await
        .expect("ran");
        let errors = &report.operations["tpcb"].errors;
        assert!(report.failures() > 0, "pipeline {pipeline}: {report:?}");
        // A statement error (no_data_found), not a lost connection: no reconnect.
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["P0002"],
            "pipeline {pipeline}"
        );
        let (sums, history) = ledger(&client).await;
        if pipeline {
            // The pipelined transaction was sent with its END: it committed, without an
            // account row to update; the teller, branch and history moved together.
            assert!(sums[1..].windows(2).all(|w| w[0] == w[1]), "{sums:?}");
            assert_eq!(history - committed, report.successes() + report.failures());
        } else {
            // Stopped at the read and rolled back: only the committed ones left a trace.
            assert!(
                sums.windows(2).all(|w| w[0] == w[1]),
                "a failed transaction left a trace: {sums:?}"
            );
            assert_eq!(history, report.successes());
        }
        committed = history;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_only_reports_a_missing_account() {
    let (cluster, client, workload) = loaded("read-only").await;
    client
        .batch_execute("DELETE FROM pgbench_accounts WHERE aid % 2 = 0")
        .await
        .expect("deleted");
    let report = run_load(
        workload,
        &cluster.connection_string(),
        &[1],
        config(1, 1, false),
    )
    .await
    .expect("ran");
    assert!(
        report.successes() > 0 && report.failures() > 0,
        "{report:?}"
    );
    assert_eq!(
        report.operations["select"]
            .errors
            .keys()
            .collect::<Vec<_>>(),
        ["P0002"]
    );
}

#[tokio::test]
async fn a_workload_that_cannot_pipeline_is_refused() {
    let workload: Arc<dyn Workload> = Arc::from(
        WorkloadRegistry::with_builtins()
            .create("stress")
            .expect("built in"),
    );
    let weights = stormchor_workloads::weights(&workload.info(), None).expect("weights");
    // Refused before it connects: the address is never used.
    let error = run_load(
        workload,
        "host=127.0.0.1 port=1 user=nobody",
        &weights,
        config(1, 1, true),
    )
    .await
    .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("stress") && text.contains("pipeline"),
        "{text}"
    );
}
