//! A user's server is not ours to empty: workloads run with `--target` create
//! everything in a schema of the run's own and drop only that. A throwaway cluster
//! plays the user's server; its tables (names our workloads use among them) must have
//! the same checksums after every run, two runs at once included.

use std::collections::BTreeSet;
use std::process::Command;

use stormchor::postgres::{Checksums, ClusterOptions, PgCluster, connect, table_checksums};

fn stormchor(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(args)
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The user's data: tables in `public`, some with the names our workloads create.
const USER_DATA: &str = "
    CREATE TABLE keepme (id int PRIMARY KEY, note text);
    INSERT INTO keepme VALUES (1, 'made before the run'), (2, 'mine');
    CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
    INSERT INTO pgbench_accounts SELECT i, 1, i * 7, 'user' FROM generate_series(1, 50) AS i;
    CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
    INSERT INTO pgbench_history VALUES (1, 1, 1, 5, '2026-01-01', 'user');
    CREATE TABLE shop_products (id bigint PRIMARY KEY, name text);
    INSERT INTO shop_products VALUES (1, 'user product');
    CREATE TABLE orders (id bigint PRIMARY KEY, amount double precision, note text);
    INSERT INTO orders VALUES (1, 9.5, 'user order');
";

/// A workload file whose tables have the names of the user's tables.
const WORKLOAD_FILE: &str = r#"
name = "orders"
description = "lookups on a table named like the user's"
setup = "DROP TABLE IF EXISTS orders; CREATE TABLE orders (id bigint PRIMARY KEY, amount double precision, note text)"
cleanup = "DROP TABLE IF EXISTS orders, keepme"

[[load]]
table = "orders"
rows = 100
columns = [{ type = "sequence" }, { type = "float", min = 1.0, max = 5.0 }, { type = "text", length = 8 }]

[[operations]]
name = "lookup"
weight = 1
sql = "SELECT * FROM orders WHERE id = $1"
params = [{ type = "int", min = 1, max = 100 }]
"#;

/// The user's tables with their checksums, and every schema of the database.
async fn state(cluster: &PgCluster) -> (Checksums, BTreeSet<String>) {
    let client = connect(&cluster.connection_string())
        .await
        .expect("connect");
    let checksums = table_checksums(&client, "public").await.expect("checksums");
    let schemas = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'",
            &[],
        )
        .await
        .expect("schemas")
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect();
    (checksums, schemas)
}

async fn user_server() -> (PgCluster, Checksums, BTreeSet<String>) {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    connect(&cluster.connection_string())
        .await
        .expect("connect")
        .batch_execute(USER_DATA)
        .await
        .expect("the user's data");
    let (checksums, schemas) = state(&cluster).await;
    assert_eq!(checksums.len(), 5, "{checksums:?}");
    assert_eq!(checksums["pgbench_accounts"].rows, 50);
    (cluster, checksums, schemas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_on_a_target_leaves_the_users_tables_as_they_were() {
    let (cluster, before, schemas) = user_server().await;
    let target = cluster.connection_string();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("orders.toml");
    std::fs::write(&file, WORKLOAD_FILE).expect("workload file");
    let file = file.display().to_string();
    for workload in ["tpcb", "read-only", "ecommerce", "stress", file.as_str()] {
        let (code, output) = tokio::task::spawn_blocking({
            let (target, workload) = (target.clone(), workload.to_owned());
            move || {
                stormchor(&[
                    "run",
                    &workload,
                    "--target",
                    &target,
                    "--duration",
                    "2",
                    "--workers",
                    "2",
                ])
            }
        })
        .await
        .expect("joined");
        assert_eq!(code, 0, "{workload}:\n{output}");
        assert!(
            output.contains("Working in schema stormchor_run_"),
            "{workload}:\n{output}"
        );
        let (after, schemas_after) = state(&cluster).await;
        assert_eq!(
            after, before,
            "{workload} changed the user's tables:\n{output}"
        );
        assert_eq!(schemas_after, schemas, "{workload} left a schema behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_on_one_target_both_succeed_and_touch_nothing_else() {
    let (cluster, before, schemas) = user_server().await;
    let target = cluster.connection_string();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let target = target.clone();
            std::thread::spawn(move || {
                stormchor(&[
                    "run",
                    "tpcb",
                    "--target",
                    &target,
                    "--duration",
                    "3",
                    "--workers",
                    "2",
                ])
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for run in runs {
        let (code, output) = run.join().expect("joined");
        assert_eq!(code, 0, "{output}");
        let schema = output
            .split_whitespace()
            .find(|word| word.starts_with("stormchor_run_"))
            .expect("the run names its schema")
            .to_owned();
        seen.insert(schema);
        // Every transaction of each run succeeded: the other run's cleanup did not pull
        // its tables away.
        let tpcb = output
            .lines()
            .find(|line| line.starts_with("| tpcb |"))
            .expect("tpcb's line");
        let cells: Vec<&str> = tpcb.split('|').map(str::trim).collect();
        assert_eq!(cells[3], "0", "failed transactions: {tpcb}\n{output}");
    }
    assert_eq!(seen.len(), 2, "both runs used one schema: {seen:?}");
    let (after, schemas_after) = state(&cluster).await;
    assert_eq!(after, before);
    assert_eq!(schemas_after, schemas);
}

/// `/dev/full` passes the up-front check (it opens for writing) and then refuses every
/// write: the report fails after the run, and the run's schema must be dropped anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_cannot_be_written_still_leaves_the_target_clean() {
    let (cluster, before, schemas) = user_server().await;
    let target = cluster.connection_string();
    for (what, args) in [
        (
            "tpcb",
            vec!["run", "tpcb", "--duration", "1", "--workers", "2"],
        ),
        ("isolation", vec!["run", "isolation"]),
    ] {
        let (code, output) = tokio::task::spawn_blocking({
            let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            args.extend(["--target", &target, "--json", "/dev/full"].map(str::to_owned));
            move || stormchor(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("joined");
        assert_ne!(
            code, 0,
            "{what}: a report that was not written is a failure:\n{output}"
        );
        assert!(
            output.contains("cannot write the JSON report to /dev/full"),
            "{what}:\n{output}"
        );
        let (after, schemas_after) = state(&cluster).await;
        assert_eq!(after, before, "{what} changed the user's tables:\n{output}");
        assert_eq!(
            schemas_after, schemas,
            "{what} left a schema behind:\n{output}"
        );
    }
}
