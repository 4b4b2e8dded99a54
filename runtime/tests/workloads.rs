//! The pgbench workloads against a real PostgreSQL, and their config errors.

use std::sync::Arc;
use std::time::Duration;

use stormchor_runtime::postgres::{ClusterOptions, PgCluster};
use stormchor_runtime::workload::{LoadConfig, Workload, WorkloadRegistry, run_load, weights};

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
    let report = run_load(
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
    let report = run_load(
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

/// A workload whose 20th operation on each connection stalls for 300 ms.
struct Stalling;

struct StallingSession {
    calls: u32,
    _client: tokio_postgres::Client,
}

impl stormchor_runtime::workload::WorkloadSession for StallingSession {
    fn run<'a>(
        &'a mut self,
        _operation: usize,
        _rng: &'a mut rand::rngs::SmallRng,
    ) -> futures::future::BoxFuture<'a, Result<(), stormchor_runtime::postgres::SqlError>> {
        Box::pin(async move {
            self.calls += 1;
            if self.calls == 20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(())
        })
    }
}

impl Workload for Stalling {
    fn info(&self) -> stormchor_runtime::workload::WorkloadInfo {
        stormchor_runtime::workload::WorkloadInfo {
            name: "stalling".into(),
            version: "1".into(),
            description: "stalls once".into(),
            operations: vec![stormchor_runtime::workload::Operation {
                name: "op".into(),
                weight: 1,
            }],
        }
    }
    fn configure(
        &mut self,
        _: &toml::Table,
    ) -> Result<(), stormchor_runtime::workload::WorkloadError> {
        Ok(())
    }
    fn setup<'a>(
        &'a self,
        _: &'a mut tokio_postgres::Client,
    ) -> futures::future::BoxFuture<'a, Result<(), stormchor_runtime::workload::WorkloadError>>
    {
        Box::pin(async { Ok(()) })
    }
    fn cleanup<'a>(
        &'a self,
        _: &'a tokio_postgres::Client,
    ) -> futures::future::BoxFuture<'a, Result<(), stormchor_runtime::workload::WorkloadError>>
    {
        Box::pin(async { Ok(()) })
    }
    fn session<'a>(
        &'a self,
        client: tokio_postgres::Client,
    ) -> futures::future::BoxFuture<
        'a,
        Result<
            Box<dyn stormchor_runtime::workload::WorkloadSession>,
            stormchor_runtime::workload::WorkloadError,
        >,
    > {
        Box::pin(async move {
            Ok(Box::new(StallingSession {
                calls: 0,
                _client: client,
            })
                as Box<dyn stormchor_runtime::workload::WorkloadSession>)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_counts_latency_from_the_due_time() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let stalling: Arc<dyn Workload> = Arc::new(Stalling);
    let slow = |report: &stormchor_runtime::workload::LoadReport| {
        report.operations["op"]
            .latency
            .count_between(50_000, u64::MAX)
    };
    // Open loop, 100 operations a second: everything due during the stall waits behind it.
    let open = run_load(
        stalling.clone(),
        &cluster.connection_string(),
        &[1],
        LoadConfig::new(1, Duration::from_secs(2)).at_rate(100.0),
    )
    .await
    .expect("ran");
    assert!(
        open.successes() <= 200,
        "never more than the schedule: {}",
        open.successes()
    );
    assert!(open.successes() >= 150, "{}", open.successes());
    assert!(
        slow(&open) >= 20,
        "the operations queued behind the stall are slow too: {}",
        slow(&open)
    );
    // Closed loop: the stall is one slow operation; those after it start late but count as fast.
    let closed = run_load(
        stalling,
        &cluster.connection_string(),
        &[1],
        LoadConfig::new(1, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    assert_eq!(slow(&closed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_reports_each_step() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let workload = WorkloadRegistry::with_builtins()
        .create("read-only")
        .expect("built in");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("loaded");
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let steps = stormchor_runtime::workload::run_ramp(
        workload,
        &cluster.connection_string(),
        &[1],
        &[1, 2],
        Duration::from_millis(500),
        1,
    )
    .await
    .expect("ran");
    assert_eq!(
        steps
            .iter()
            .map(|(clients, _)| *clients)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        steps
            .iter()
            .all(|(_, report)| report.successes() > 0 && report.failures() == 0)
    );
    assert_eq!(steps[1].1.per_client.len(), 2);
}
