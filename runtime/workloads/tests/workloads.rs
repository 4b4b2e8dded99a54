//! The pgbench workloads against a real PostgreSQL, and their config errors.

use std::sync::Arc;
use std::time::Duration;

use stormchor_postgres::{ClusterOptions, PgCluster};
use stormchor_workloads::{LoadConfig, Workload, WorkloadRegistry, run_load, weights};

/// A throwaway cluster with the built-in workload `name` set up on it.
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
    let (cluster, _client, workload) = loaded("read-only").await;
    let live = Arc::new(stormchor_workloads::Live::default());
    let mut config = LoadConfig::new(2, Duration::from_secs(2));
    config.live = Some(live.clone());
    let report = run_load(workload, &cluster.connection_string(), &[1], config)
        .await
        .expect("ran");
    assert!(report.successes() > 500, "{}", report.successes());
    assert_eq!(report.failures(), 0);
    // The live figures, for the progress line, followed the run.
    assert_eq!(
        live.successes.load(std::sync::atomic::Ordering::Relaxed),
        report.successes()
    );
    assert!(
        !live.take_recent().is_empty(),
        "the first full second's latencies were published"
    );
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
        "no workload named tpcc; known workloads: ecommerce, read-only, sql, stress, tpcb"
    );
}

/// A workload whose 20th operation on each connection stalls for 300 ms, or (`every`)
/// whose every operation takes 50 ms.
struct Stalling {
    every: bool,
}

struct StallingSession {
    calls: u32,
    every: bool,
    _client: tokio_postgres::Client,
}

impl stormchor_workloads::WorkloadSession for StallingSession {
    fn run<'a>(
        &'a mut self,
        _operation: usize,
        _rng: &'a mut rand::rngs::SmallRng,
    ) -> futures::future::BoxFuture<'a, Result<(), stormchor_postgres::SqlError>> {
        Box::pin(async move {
            self.calls += 1;
            if self.every {
                tokio::time::sleep(Duration::from_millis(50)).await;
            } else if self.calls == 20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(())
        })
    }
}

impl Workload for Stalling {
    fn info(&self) -> stormchor_workloads::WorkloadInfo {
        stormchor_workloads::WorkloadInfo {
            name: "stalling".into(),
            version: "1".into(),
            description: "stalls once".into(),
            operations: vec![stormchor_workloads::Operation {
                name: "op".into(),
                weight: 1,
            }],
        }
    }
    fn configure(&mut self, _: &toml::Table) -> Result<(), stormchor_workloads::WorkloadError> {
        Ok(())
    }
    fn setup<'a>(
        &'a self,
        _: &'a mut tokio_postgres::Client,
    ) -> futures::future::BoxFuture<'a, Result<(), stormchor_workloads::WorkloadError>> {
        Box::pin(async { Ok(()) })
    }
    fn cleanup<'a>(
        &'a self,
        _: &'a tokio_postgres::Client,
    ) -> futures::future::BoxFuture<'a, Result<(), stormchor_workloads::WorkloadError>> {
        Box::pin(async { Ok(()) })
    }
    fn session<'a>(
        &'a self,
        client: tokio_postgres::Client,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Box<dyn stormchor_workloads::WorkloadSession>, stormchor_workloads::WorkloadError>,
    > {
        Box::pin(async move {
            Ok(Box::new(StallingSession {
                calls: 0,
                every: self.every,
                _client: client,
            })
                as Box<dyn stormchor_workloads::WorkloadSession>)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_counts_latency_from_the_due_time() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let stalling: Arc<dyn Workload> = Arc::new(Stalling { every: false });
    let slow = |report: &stormchor_workloads::LoadReport| {
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
    // Every operation due in the 2 s ran or was counted missed (a busy machine misses
    // more; none is lost or run late).
    let accounted = open.successes() + open.failures() + open.missed;
    assert!(
        (199..=201).contains(&accounted),
        "{} ran, {} failed, {} missed",
        open.successes(),
        open.failures(),
        open.missed
    );
    assert!(open.successes() > 0);
    assert!(
        slow(&open) >= 20,
        "the operations queued behind the stall are slow too: {}",
        slow(&open)
    );
    // Closed loop: the stall is one slow operation; those after it start late but count
    // as fast. (As long as the stall itself: a busy machine makes other operations
    // slower than 50 ms, hardly one as slow as the 300 ms stall.)
    let stalled = |report: &stormchor_workloads::LoadReport| {
        report.operations["op"]
            .latency
            .count_between(290_000, u64::MAX)
    };
    assert!(
        stalled(&open) >= 2,
        "in the open loop, the operation due behind the stall waited as long: {}",
        stalled(&open)
    );
    let closed = run_load(
        stalling,
        &cluster.connection_string(),
        &[1],
        LoadConfig::new(1, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    assert!(
        (1..=2).contains(&stalled(&closed)),
        "one operation stalled: {}",
        stalled(&closed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_above_the_servers_pace_stops_at_its_duration_and_counts_the_missed() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    // 1000 operations a second for 1 s, each taking 50 ms: at most ~20 can run.
    let slow: Arc<dyn Workload> = Arc::new(Stalling { every: true });
    let started = std::time::Instant::now();
    let report = run_load(
        slow.clone(),
        &cluster.connection_string(),
        &[1],
        LoadConfig::new(1, Duration::from_secs(1)).at_rate(1000.0),
    )
    .await
    .expect("ran");
    // It ends at its duration (plus the operation in flight and the connect), not
    // after running the thousand scheduled operations (50 s).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(report.successes() <= 25, "{}", report.successes());
    // Every operation due before the end either ran or is counted as missed.
    assert_eq!(
        report.successes() + report.failures() + report.missed,
        1000,
        "ran {} + failed {} + missed {}",
        report.successes(),
        report.failures(),
        report.missed
    );
    assert!(report.missed >= 975, "{}", report.missed);
    // A server that keeps up misses nothing.
    let fast = run_load(
        Arc::new(Stalling { every: false }),
        &cluster.connection_string(),
        &[1],
        LoadConfig::new(1, Duration::from_secs(1)).at_rate(50.0),
    )
    .await
    .expect("ran");
    assert_eq!(fast.successes() + fast.missed, 50);
    assert!(fast.successes() >= 45, "{} ran", fast.successes());
    // Rates and durations no clock can hold are errors, not panics or endless runs.
    for (rate, duration) in [
        (f64::INFINITY, 1),
        (0.0, 1),
        (-5.0, 1),
        (f64::NAN, 1),
        (1e-300, 1),
        (10.0, u64::MAX),
    ] {
        let error = run_load(
            slow.clone(),
            &cluster.connection_string(),
            &[1],
            LoadConfig::new(1, Duration::from_secs(duration)).at_rate(rate),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(error, stormchor_workloads::WorkloadError::Config { .. }),
            "{rate} {duration}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_reports_each_step() {
    let (cluster, _client, workload) = loaded("read-only").await;
    let steps = stormchor_workloads::run_ramp(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecommerce_runs_every_operation() {
    let (cluster, client, workload) = loaded("ecommerce").await;
    let products: i64 = client
        .query_one("SELECT count(*) FROM shop_products", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(products, 20_000);
    let weights = weights(&workload.info(), None).expect("weights");
    // On a busy machine two seconds may hold few operations: run on (at most 10 times)
    // until a checkout met a filled cart.
    let mut report = None;
    for _ in 0..10 {
        let run = run_load(
            workload.clone(),
            &cluster.connection_string(),
            &weights,
            LoadConfig::new(2, Duration::from_secs(2)),
        )
        .await
        .expect("ran");
        let lines: i64 = client
            .query_one("SELECT count(*) FROM shop_order_lines", &[])
            .await
            .expect("count")
            .get(0);
        let every_op = ["search", "browse", "add_to_cart", "checkout"]
            .iter()
            .all(|op| run.operations.get(*op).is_some_and(|m| m.count > 0));
        let done = lines > 0 && every_op;
        report = Some(run);
        if done {
            break;
        }
    }
    let report = report.expect("ran once");
    for op in ["search", "browse", "add_to_cart", "checkout"] {
        assert!(report.operations[op].count > 0, "{op}: {report:?}");
        assert!(
            report.operations[op].errors.is_empty(),
            "{op}: {:?}",
            report.operations[op].errors
        );
    }
    // Checkouts turned carts into order lines.
    let lines: i64 = client
        .query_one("SELECT count(*) FROM shop_order_lines", &[])
        .await
        .expect("count")
        .get(0);
    assert!(lines > 0);
    workload.cleanup(&client).await.expect("cleaned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_workload_file_runs_without_recompiling() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("counters.toml");
    std::fs::write(
        &file,
        r#"
name = "counters"
setup = "CREATE TABLE counters (id bigint PRIMARY KEY, hits bigint NOT NULL)"
cleanup = "DROP TABLE counters"

[[load]]
table = "counters"
rows = 100
columns = [{ type = "sequence" }, { type = "int", min = 0, max = 0 }]

[[operations]]
name = "hit"
weight = 3
sql = "UPDATE counters SET hits = hits + 1 WHERE id = $1"
params = [{ type = "zipf", n = 100, exponent = 1.5 }]

[[operations]]
name = "read"
sql = "SELECT hits FROM counters WHERE id = $1"
params = [{ type = "int", min = 1, max = 100 }]
"#,
    )
    .expect("written");
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut workload = WorkloadRegistry::with_builtins()
        .create("sql")
        .expect("built in");
    let mut section = toml::Table::new();
    section.insert(
        "file".into(),
        toml::Value::String(file.display().to_string()),
    );
    workload.configure(&section).expect("loaded the file");
    assert_eq!(workload.info().name, "counters");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("set up");
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let weights = weights(&workload.info(), None).expect("weights");
    let report = run_load(
        workload,
        &cluster.connection_string(),
        &weights,
        LoadConfig::new(1, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    let hits: i64 = client
        .query_one("SELECT sum(hits)::bigint FROM counters", &[])
        .await
        .expect("sum")
        .get(0);
    assert_eq!(hits as u64, report.operations["hit"].count);
    // Zipf: id 1 is the most popular.
    let top: i64 = client
        .query_one("SELECT id FROM counters ORDER BY hits DESC LIMIT 1", &[])
        .await
        .expect("top")
        .get(0);
    assert_eq!(top, 1);
}

#[test]
fn bad_sql_workload_files_name_the_problem_and_the_place() {
    use stormchor_workloads::SqlWorkload;
    let error = SqlWorkload::parse(
        "name = \"x\"\n[[operations]]\nname = \"a\"\nsql = \"SELECT 1\"\nwieght = 2\n",
        "w.toml",
    )
    .expect_err("typo");
    let text = error.to_string();
    assert!(
        text.contains("w.toml")
            && text.contains("unknown field `wieght`")
            && text.contains("line 5"),
        "{text}"
    );
    let error = SqlWorkload::parse(
        "name = \"x\"\n[[operations]]\nname = \"a\"\nsql = \"SELECT $1\"\nparams = [{ type = \"int\", min = 5, max = 1 }]\n",
        "w.toml",
    )
    .expect_err("bad range");
    assert_eq!(
        error.to_string(),
        "workload sql: w.toml: operation 1 (a), parameter 1: min 5 is above max 1"
    );
    let error = SqlWorkload::parse("name = \"x\"\n[[operations]]\nname = \"a\"\n", "w.toml")
        .expect_err("no sql");
    assert!(
        error
            .to_string()
            .ends_with("operation 1 (a): give `sql` or `steps`")
    );
    let error = SqlWorkload::from_file(std::path::Path::new("/nonexistent/w.toml"))
        .expect_err("missing file");
    assert!(
        error
            .to_string()
            .contains("cannot read /nonexistent/w.toml")
    );
}

#[test]
fn generators_that_would_panic_or_exhaust_memory_are_refused_at_load() {
    use stormchor_workloads::SqlWorkload;
    let operation = |param: &str| {
        format!(
            "name = \"x\"\n[[operations]]\nname = \"a\"\nsql = \"SELECT $1\"\nparams = [{param}]\n"
        )
    };
    for (param, expected) in [
        (
            "{ type = \"float\", min = -inf, max = 1.0 }",
            "parameter 1: a float needs finite min and max, found min -inf, max 1",
        ),
        (
            "{ type = \"float\", min = nan, max = 1.0 }",
            "parameter 1: a float needs finite min and max, found min NaN, max 1",
        ),
        (
            "{ type = \"float\", min = 0.0, max = inf }",
            "a float needs finite min and max",
        ),
        (
            "{ type = \"float\", min = -1.7e308, max = 1.7e308 }",
            "the range from -170000000000000000000000000000",
        ),
        (
            "{ type = \"float\", min = 2.0, max = 2.0 }",
            "min 2 is not below max 2",
        ),
        (
            "{ type = \"text\", length = 9223372036854775807 }",
            "text length 9223372036854775807 is above the most, 1048576",
        ),
        (
            "{ type = \"zipf\", n = 10, exponent = nan }",
            "zipf needs n from 1 to 9223372036854775807 and a finite exponent >= 0, found n 10, exponent NaN",
        ),
        ("{ type = \"zipf\", n = 10, exponent = -1.0 }", "zipf needs"),
        ("{ type = \"zipf\", n = 0, exponent = 1.0 }", "zipf needs"),
        (
            "{ type = \"choice\", values = [] }",
            "a choice needs at least one value",
        ),
    ] {
        let text = operation(param);
        let error = SqlWorkload::parse(&text, "w.toml")
            .expect_err(param)
            .to_string();
        assert!(
            error.starts_with("workload sql: w.toml: operation 1 (a), parameter 1: ")
                && error.contains(expected),
            "{param}: {error}"
        );
    }
    // The same checks for loaded columns, in YAML too, and the number of rows.
    let error = SqlWorkload::parse_yaml(
        "name: x\noperations: [{ name: a, sql: SELECT 1 }]\nload: [{ table: t, rows: 3, columns: [{ type: float, min: 5.0, max: 1.0 }] }]\n",
        "w.yaml",
    )
    .expect_err("empty range")
    .to_string();
    assert!(
        error.contains("w.yaml: load of t, column 1: min 5 is not below max 1"),
        "{error}"
    );
    let error = SqlWorkload::parse(
        "name = \"x\"\n[[operations]]\nname = \"a\"\nsql = \"SELECT 1\"\n[[load]]\ntable = \"t\"\nrows = 9223372036854775807\ncolumns = [{ type = \"sequence\" }]\n",
        "w.toml",
    )
    .expect_err("too many rows")
    .to_string();
    assert!(
        error.contains("load of t: 9223372036854775807 rows is above the most, 1000000000"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stress_workload_keeps_its_catalog_true_and_cleans_up() {
    use stormchor_workloads::Stress;
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut client = cluster.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE existing (id int PRIMARY KEY, note text)")
        .await
        .expect("an existing table");
    let stress = Arc::new(Stress::default());
    stress.setup(&mut client).await.expect("discovered");
    assert_eq!(stress.catalog().len(), 1);
    let workload: Arc<dyn Workload> = stress.clone();
    let weights = weights(&workload.info(), None).expect("weights");
    assert_eq!(weights.len(), 14);
    let report = run_load(
        workload,
        &cluster.connection_string(),
        &weights,
        LoadConfig::new(2, Duration::from_secs(2)),
    )
    .await
    .expect("ran");
    assert!(report.successes() > 100, "{}", report.successes());
    assert!(report.operations["create_table"].count > 0);
    assert_eq!(
        stress.validate(&client).await.expect("validated"),
        Vec::<String>::new()
    );
    stress.cleanup(&client).await.expect("cleaned");
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_workload_file_runs_too() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("notes.yaml");
    std::fs::write(
        &file,
        r#"
name: notes
setup: "CREATE TABLE notes (id bigint, body text, flag boolean)"
cleanup: "DROP TABLE notes"
operations:
  - name: write
    weight: 2
    sql: "INSERT INTO notes VALUES ($1, $2, $3)"
    params:
      - { type: sequence }
      - { type: text, length: 8 }
      - { type: bool }
  - name: count
    sql: "SELECT count(*) FROM notes"
"#,
    )
    .expect("written");
    let workload = stormchor_workloads::SqlWorkload::from_file(&file).expect("parsed");
    assert_eq!(
        workload
            .info()
            .operations
            .iter()
            .map(|o| o.weight)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("set up");
    let workload: Arc<dyn Workload> = Arc::new(workload);
    let report = run_load(
        workload,
        &cluster.connection_string(),
        &[2, 1],
        LoadConfig::new(1, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows as u64, report.operations["write"].count);

    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "name: x\noperations:\n  - name: a\n    sql: SELECT 1\n    wieght: 3\n",
    )
    .expect("written");
    let error = stormchor_workloads::SqlWorkload::from_file(&bad)
        .expect_err("typo")
        .to_string();
    assert!(
        error.contains("bad.yml")
            && error.contains("line 5")
            && error.contains("unknown field `wieght`"),
        "{error}"
    );
}

#[test]
fn a_crate_registers_its_own_workload_by_name() {
    let mut registry = WorkloadRegistry::with_builtins();
    registry.register(
        "stalling",
        Arc::new(|| Box::new(Stalling { every: false }) as Box<dyn Workload>),
    );
    assert!(registry.names().contains(&"stalling".to_owned()));
    let workload = registry.create("stalling").expect("registered");
    assert_eq!(workload.info().operations[0].name, "op");
}

#[test]
fn yaml_workload_files_read_n_and_no_as_text_not_booleans() {
    use stormchor_workloads::SqlWorkload;
    // Under YAML 1.1's rules `n` (zipf's key) and `no` are booleans: the file was
    // refused with "invalid type: boolean `false`, expected field identifier".
    let workload = SqlWorkload::parse_yaml(
        "name: z\noperations:\n  - name: pick\n    sql: SELECT $1, $2\n    params:\n      - { type: zipf, n: 10, exponent: 1.1 }\n      - { type: choice, values: [yes, no] }\n",
        "z.yaml",
    )
    .expect("n is a key, yes and no are text");
    assert_eq!(workload.info().operations[0].name, "pick");
    // Booleans are `true` and `false` only.
    let flag = |value: &str| {
        SqlWorkload::parse_yaml(
            &format!(
                "name: b\noperations:\n  - name: one\n    transaction: {value}\n    steps: [{{ sql: SELECT 1 }}]\n"
            ),
            "b.yaml",
        )
    };
    assert!(flag("true").is_ok());
    let error = flag("no").expect_err("`no` is not a boolean");
    assert!(error.to_string().contains("b.yaml"), "{error}");
}

#[test]
fn generators_found_by_fuzzing_are_refused_at_load() {
    use stormchor_workloads::SqlWorkload;
    // Each of these loaded before, and then panicked a client (`NonFinite`) or aborted
    // on an allocation the size of `length`.
    for (generator, problem) in [
        (
            "{ type = \"float\", min = -inf, max = 0.0 }",
            "needs finite min and max",
        ),
        (
            "{ type = \"float\", min = 0.0, max = nan }",
            "needs finite min and max",
        ),
        (
            "{ type = \"float\", min = -1e308, max = 1e308 }",
            "too wide for a float",
        ),
        (
            "{ type = \"text\", length = 9223372036854775807 }",
            "is above the most, 1048576",
        ),
        (
            "{ type = \"zipf\", n = 10, exponent = inf }",
            "finite exponent",
        ),
        (
            "{ type = \"zipf\", n = 10, exponent = nan }",
            "finite exponent",
        ),
    ] {
        let text = format!(
            "name = \"g\"\n[[operations]]\nname = \"op\"\nsql = \"SELECT $1\"\nparams = [{generator}]\n"
        );
        let error = SqlWorkload::parse(&text, "g.toml").expect_err(generator);
        let message = error.to_string();
        assert!(
            message.contains("g.toml: operation 1 (op), parameter 1") && message.contains(problem),
            "{generator}: {message}"
        );
    }
}
