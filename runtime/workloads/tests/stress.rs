//! The stress mix (the `stress` workload on the load runner) against a real
//! PostgreSQL: a closed port, a replayable single client, concurrent clients with no
//! catalog divergence, reconnection after a crash, the mix over two schemas, and names
//! that look like SQL.

use std::sync::Arc;
use std::time::Duration;

use stormchor_postgres::{
    ActionRegistry, Catalog, ClusterOptions, PgCluster, Schemas, SqlLog, discover_schemas,
    validate, validate_schemas,
};
use stormchor_workloads::{
    LoadConfig, LoadReport, Stress, Workload, WorkloadError, run_load, stream_seed, weights,
};

/// The default mix on `catalog` at `connection`, drawing the stream `name` of run
/// `seed` (the streams the stress worker these tests were written for drew).
async fn mix(
    connection: &str,
    catalog: &Arc<Catalog>,
    (seed, name): (u64, &str),
    config: LoadConfig,
) -> Result<LoadReport, WorkloadError> {
    mix_logged(connection, catalog, (seed, name), config, SqlLog::discard()).await
}

/// The same, every statement logged to `log`.
async fn mix_logged(
    connection: &str,
    catalog: &Arc<Catalog>,
    (seed, name): (u64, &str),
    mut config: LoadConfig,
    log: SqlLog,
) -> Result<LoadReport, WorkloadError> {
    let stress = Stress::new(ActionRegistry::default_actions(), catalog.clone()).with_sql_log(log);
    let weights = weights(&stress.info(), None)?;
    config.seed = stream_seed(seed, name);
    run_load(Arc::new(stress), connection, &weights, config).await
}

/// Actions that ran, by name.
fn ran(report: &LoadReport) -> Vec<&str> {
    report
        .operations
        .iter()
        .filter(|(_, m)| m.runs() > 0)
        .map(|(name, _)| name.as_str())
        .collect()
}

#[tokio::test]
async fn a_mix_that_cannot_connect_names_the_server_and_the_attempts() {
    // Bound but not listening: connections are refused, and nothing else can take
    // the port while the test runs.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let target = format!("host=127.0.0.1 port={port} user=postgres");
    let catalog = Arc::new(Catalog::new());
    let mut config = LoadConfig::operations_per_client(1, 1);
    config.reconnect_attempts = Some(1);
    let error = mix(&target, &catalog, (1, "w"), config)
        .await
        .expect_err("nothing listens");
    assert!(
        error.to_string().contains(&format!(
            "workload stress: connecting client 0 to `{target}` after 2 attempts"
        )),
        "{error}"
    );
    // Unbounded reconnection still needs a first connection: it fails at once.
    let error = mix(
        &target,
        &catalog,
        (1, "w"),
        LoadConfig::new(1, Duration::from_secs(60)),
    )
    .await
    .expect_err("nothing listens");
    assert!(
        error.to_string().contains(&format!(
            "workload stress: connecting client 0 to `{target}`: "
        )),
        "{error}"
    );
}

/// The statements of a SQL log, without their timestamps and durations.
fn statements(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .expect("log")
        .lines()
        .map(|line| {
            line.split_once(" | ")
                .map(|(_, sql)| sql.to_owned())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_client_replays_exactly_and_keeps_the_catalog_true() {
    let dir = tempfile::tempdir().expect("dir");
    let mut logs = Vec::new();
    for run in 0..2 {
        let cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("start");
        let catalog = Arc::new(Catalog::new());
        let log = dir.path().join(format!("run{run}.sql.log"));
        let report = mix_logged(
            &cluster.connection_string(),
            &catalog,
            (42, "worker-1"),
            LoadConfig::operations_per_client(1, 400),
            SqlLog::to_file(&log).expect("log"),
        )
        .await
        .expect("ran");
        assert_eq!(report.runs(), 400);
        // Every built-in action ran.
        assert_eq!(ran(&report).len(), 14, "{:?}", ran(&report));
        let client = cluster.connect().await.expect("connect");
        let divergences = validate(&client, "public", &catalog)
            .await
            .expect("validated");
        assert!(
            divergences.is_empty(),
            "{}",
            divergences
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // the log thread flushes
        logs.push(statements(&log));
    }
    assert!(logs[0].len() > 400);
    assert_eq!(logs[0], logs[1], "the same seed runs the same statements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_leave_no_divergence() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let catalog = Arc::new(Catalog::new());
    let report = mix(
        &cluster.connection_string(),
        &catalog,
        (7, "workers"),
        LoadConfig::operations_per_client(4, 300),
    )
    .await
    .expect("ran");
    assert_eq!(report.runs(), 1200);
    assert_eq!(report.per_client.len(), 4);
    let client = cluster.connect().await.expect("connect");
    let divergences = validate(&client, "public", &catalog)
        .await
        .expect("validated");
    assert!(
        divergences.is_empty(),
        "{}",
        divergences
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mix_reconnects_after_the_server_is_killed() {
    let mut cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let catalog = Arc::new(Catalog::new());
    let connection = cluster.connection_string();
    let mut config = LoadConfig::new(1, Duration::from_secs(4));
    config.reconnect_attempts = Some(50);
    let (report, ()) = tokio::join!(mix(&connection, &catalog, (3, "survivor"), config), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.kill().await.expect("kill -9");
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.restart().await.expect("recovered");
    });
    let report = report.expect("kept going");
    assert!(report.reconnects >= 1, "{report:?}");
    // The crash shows as a lost connection, or, for a backend that outlived the
    // postmaster for a moment, as SQLSTATE class 57 (operator intervention) or 08
    // (connection exception).
    let crash_errors: u64 = report
        .operations
        .values()
        .flat_map(|s| s.errors.iter())
        .filter(|(code, _)| {
            code.as_str() == "connection" || code.starts_with("57") || code.starts_with("08")
        })
        .map(|(_, n)| n)
        .sum();
    let errors: Vec<_> = report.operations.values().map(|s| &s.errors).collect();
    assert!(crash_errors >= 1, "{errors:?}");
    assert!(report.successes() > 10);
}

/// The long run: 8 clients x 60 s of the default mix, then no divergence.
/// `cargo test -p stormchor-workloads --test stress -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute long; run on purpose"]
async fn eight_clients_for_a_minute_leave_no_divergence() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let catalog = Arc::new(Catalog::new());
    let total = mix(
        &cluster.connection_string(),
        &catalog,
        (11, "workers"),
        LoadConfig::new(8, Duration::from_secs(60)),
    )
    .await
    .expect("ran")
    .runs();
    let client = cluster.connect().await.expect("connect");
    let divergences = validate(&client, "public", &catalog)
        .await
        .expect("validated");
    println!(
        "8 workers x 60 s: {total} actions, {} tables, {} divergences",
        catalog.len(),
        divergences.len()
    );
    assert!(
        divergences.is_empty(),
        "{}",
        divergences
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Two schemas with links across them (the same file as the discovery tests').
const TWO_SCHEMAS: &str = include_str!("../../postgres/tests/fixtures/two_schemas.sql");

async fn two_schemas() -> (PgCluster, tokio_postgres::Client) {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = cluster.connect().await.expect("connect");
    client.batch_execute(TWO_SCHEMAS).await.expect("schemas");
    (cluster, client)
}

fn names(catalog: &Catalog) -> Vec<String> {
    let mut names: Vec<String> = catalog
        .snapshot()
        .values()
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stress_mix_keeps_a_catalog_of_two_schemas_true() {
    let (cluster, client) = two_schemas().await;
    // More tables in `sales` than in `public`, so that most actions land there.
    client
        .batch_execute(
            "CREATE TABLE sales.items (id int PRIMARY KEY, label text, price double precision);
             CREATE TABLE sales.notes (id int, body text);
             INSERT INTO sales.items SELECT g, 'x', g FROM generate_series(1, 50) g;",
        )
        .await
        .expect("more tables");
    let selection = Schemas::Named(vec!["public".into(), "sales".into()]);
    let catalog = Arc::new(Catalog::new());
    discover_schemas(&client, &selection, &catalog)
        .await
        .expect("discovered");
    let report = mix(
        &cluster.connection_string(),
        &catalog,
        (5, "worker-1"),
        LoadConfig::operations_per_client(1, 300),
    )
    .await
    .expect("ran");
    assert_eq!(report.runs(), 300);
    let divergences = validate_schemas(&client, &selection, &catalog)
        .await
        .expect("validated");
    assert!(
        divergences.is_empty(),
        "{}",
        divergences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "after the mix: {:?}; actions {:?}",
        names(&catalog),
        ran(&report)
    );
    // The mix did work in `sales`: tables there were renamed, partitioned or altered.
    let touched: Vec<String> = names(&catalog)
        .into_iter()
        .filter(|n| {
            n.starts_with("sales.")
                && ![
                    "sales.events",
                    "sales.events_1",
                    "sales.orders",
                    "sales.items",
                    "sales.notes",
                ]
                .contains(&n.as_str())
        })
        .collect();
    let altered = catalog
        .snapshot()
        .values()
        .any(|t| t.name.starts_with("sales.") && (t.indexes.len() > 1 || t.columns.len() > 3));
    assert!(
        !touched.is_empty() || altered,
        "nothing in sales changed: {:?}",
        names(&catalog)
    );
}

/// Names are identifiers, never SQL: tables and columns named like statements, in
/// mixed case or with spaces, go through the whole stress mix as the objects they
/// name. A table named `t; DROP TABLE victim.keep; --` must not drop `victim.keep`,
/// and a table named `victim.keep` (one name with a dot) is not `victim`'s table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_identifiers_and_the_mix_never_runs_them_as_sql() {
    use stormchor_postgres::{discover_into, table_checksums};
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = cluster.connect().await.expect("connect");
    client
        .batch_execute(
            r#"CREATE SCHEMA victim;
               CREATE TABLE victim.keep (id int PRIMARY KEY, note text);
               INSERT INTO victim.keep SELECT g, 'mine' FROM generate_series(1, 20) g;
               CREATE TABLE public."t; DROP TABLE victim.keep; --" (id int PRIMARY KEY, "v; DROP TABLE victim.keep; --" text);
               INSERT INTO public."t; DROP TABLE victim.keep; --" SELECT g, 'x' FROM generate_series(1, 30) g;
               CREATE TABLE public."victim.keep" (id int PRIMARY KEY, "Odd Col" int);
               INSERT INTO public."victim.keep" SELECT g, g FROM generate_series(1, 30) g;
               CREATE TABLE public."Mixed Case" ("Id" int PRIMARY KEY, "Some Text" text);
               CREATE INDEX "Weird Index" ON public."Mixed Case" ("Some Text");
               INSERT INTO public."Mixed Case" SELECT g, 'y' FROM generate_series(1, 30) g;"#,
        )
        .await
        .expect("hostile names");
    let before = table_checksums(&client, "victim").await.expect("checksums");
    let catalog = Arc::new(Catalog::new());
    discover_into(&client, "public", &catalog)
        .await
        .expect("discovered");
    let names: Vec<String> = catalog
        .snapshot()
        .values()
        .map(|t| t.name.clone())
        .collect();
    assert!(
        names.contains(&"\"t; DROP TABLE victim.keep; --\"".to_owned()),
        "{names:?}"
    );
    let report = mix(
        &cluster.connection_string(),
        &catalog,
        (11, "worker-1"),
        LoadConfig::operations_per_client(1, 400),
    )
    .await
    .expect("ran");
    // No statement of the mix broke on a name: a syntax error would be 42601.
    for (action, stats) in &report.operations {
        assert!(
            !stats.errors.contains_key("42601"),
            "{action} sent SQL that does not parse: {:?}",
            stats.errors
        );
    }
    assert!(report.successes() > 100, "{report:?}");
    let after = table_checksums(&client, "victim").await.expect("checksums");
    assert_eq!(after, before, "the table of the other schema was touched");
    let divergences = validate(&client, "public", &catalog)
        .await
        .expect("validated");
    assert!(
        divergences.is_empty(),
        "{}",
        divergences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
