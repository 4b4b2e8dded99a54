//! docs/workloads.md cannot rot: every example it shows is an excerpt of a file here
//! (the workload files of `examples/workloads/`, this file's plugin), and this test
//! loads and runs each of them: the TOML and YAML forms of one workload describe the
//! same operations and run on a real cluster, the example config's sections configure
//! their workloads, and the plugin below runs under the load runner.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

// ---- the plugin of docs/workloads.md, "Writing a workload in Rust" ----
use rand::Rng;
use rand::rngs::SmallRng;
use stormchor::postgres::SqlError;
use stormchor::workloads::{
    Operation, Workload, WorkloadError, WorkloadInfo, WorkloadRegistry, WorkloadSession,
};
use tokio_postgres::{Client, Statement};

/// What `setup`, `cleanup` and `session` return: a boxed future that is `Send`.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Counters hit at random: `hit` adds one to a counter, `read` reads one.
struct Counters {
    rows: i64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters { rows: 100 }
    }
}

fn config_error(problem: String) -> WorkloadError {
    WorkloadError::Config {
        workload: "counters".to_owned(),
        problem,
    }
}

impl Workload for Counters {
    fn info(&self) -> WorkloadInfo {
        WorkloadInfo {
            name: "counters".to_owned(),
            version: "1".to_owned(),
            description: "counters hit and read at random".to_owned(),
            // The operations, in the order `WorkloadSession::run` numbers them.
            operations: vec![
                Operation {
                    name: "hit".to_owned(),
                    weight: 3,
                },
                Operation {
                    name: "read".to_owned(),
                    weight: 1,
                },
            ],
        }
    }

    // The `[workload.counters]` section, without its `weights` table.
    fn configure(&mut self, section: &toml::Table) -> Result<(), WorkloadError> {
        for (key, value) in section {
            match (key.as_str(), value.as_integer()) {
                ("rows", Some(rows)) if rows >= 1 => self.rows = rows,
                ("rows", _) => {
                    return Err(config_error(format!(
                        "`rows` must be a whole number of at least 1, found {value}"
                    )));
                }
                _ => {
                    return Err(config_error(format!(
                        "unknown key `{key}` (known keys: rows)"
                    )));
                }
            }
        }
        Ok(())
    }

    fn setup<'a>(&'a self, client: &'a mut Client) -> Boxed<'a, Result<(), WorkloadError>> {
        Box::pin(async move {
            let sql = format!(
                "CREATE TABLE counters (id bigint PRIMARY KEY, hits bigint NOT NULL);
                 INSERT INTO counters SELECT g, 0 FROM generate_series(1, {}) g",
                self.rows
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(|error| WorkloadError::Sql {
                    workload: "counters".to_owned(),
                    what: "creating the counters".to_owned(),
                    error: SqlError::from(error),
                })
        })
    }

    fn cleanup<'a>(&'a self, client: &'a Client) -> Boxed<'a, Result<(), WorkloadError>> {
        Box::pin(async move {
            client
                .batch_execute("DROP TABLE IF EXISTS counters")
                .await
                .map_err(|error| WorkloadError::Sql {
                    workload: "counters".to_owned(),
                    what: "dropping the counters".to_owned(),
                    error: SqlError::from(error),
                })
        })
    }

    // One session per client connection: prepare the statements once.
    fn session<'a>(
        &'a self,
        client: Client,
    ) -> Boxed<'a, Result<Box<dyn WorkloadSession>, WorkloadError>> {
        Box::pin(async move {
            let prepare = async |sql: &str| {
                client
                    .prepare(sql)
                    .await
                    .map_err(|error| WorkloadError::Sql {
                        workload: "counters".to_owned(),
                        what: format!("preparing `{sql}`"),
                        error: SqlError::from(error),
                    })
            };
            let hit = prepare("UPDATE counters SET hits = hits + 1 WHERE id = $1").await?;
            let read = prepare("SELECT hits FROM counters WHERE id = $1").await?;
            Ok(Box::new(CountersSession {
                client,
                rows: self.rows,
                hit,
                read,
            }) as Box<dyn WorkloadSession>)
        })
    }

    fn custom_metrics(&self) -> Vec<(String, f64)> {
        vec![("counters".to_owned(), self.rows as f64)]
    }
}

struct CountersSession {
    client: Client,
    rows: i64,
    hit: Statement,
    read: Statement,
}

impl WorkloadSession for CountersSession {
    // `operation` indexes `info().operations`; `rng` is this client's seeded generator.
    fn run<'a>(
        &'a mut self,
        operation: usize,
        rng: &'a mut SmallRng,
    ) -> Boxed<'a, Result<(), SqlError>> {
        Box::pin(async move {
            let id = rng.random_range(1..=self.rows);
            let statement = if operation == 0 {
                &self.hit
            } else {
                &self.read
            };
            self.client
                .execute(statement, &[&id])
                .await
                .map(|_| ())
                .map_err(SqlError::from)
        })
    }
}
// ---- end of the plugin ----

use stormchor::config::FileConfig;
use stormchor::postgres::{ClusterOptions, PgCluster};
use stormchor::workloads::{LoadConfig, SqlWorkload, run_load, weights};

/// Every fenced block of docs/workloads.md but the shell ones names its file on its
/// first line (`# examples/workloads/orders.toml`, `// tests/workload_docs.rs`); its
/// lines must appear in that file, in order and together.
#[test]
fn every_example_of_the_docs_is_an_excerpt_of_a_tested_file() {
    let docs = std::fs::read_to_string("docs/workloads.md").expect("docs/workloads.md");
    let mut blocks = Vec::new();
    let mut lines = docs.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if !lang.is_empty() && lang != "sh" && lang != "text" {
            blocks.push((lang.to_owned(), body));
        }
    }
    assert!(blocks.len() >= 6, "{} examples", blocks.len());
    let mut files = std::collections::BTreeSet::new();
    for (lang, body) in &blocks {
        let first = body.first().copied().unwrap_or_default();
        let path = first
            .strip_prefix("# ")
            .or_else(|| first.strip_prefix("// "))
            .and_then(|rest| rest.split(&[':', ' '][..]).next())
            .filter(|p| Path::new(p).is_file())
            .unwrap_or_else(|| panic!("a {lang} block does not name its file: {first:?}"));
        let file = std::fs::read_to_string(path).expect("the file");
        let excerpt = body[1..].join("\n");
        assert!(
            file.contains(&excerpt),
            "the {lang} block of {path} is not in the file:\n{excerpt}"
        );
        files.insert(path.to_owned());
    }
    for path in [
        "examples/workloads/orders.toml",
        "examples/workloads/orders.yaml",
        "examples/workloads/stormchor.toml",
        "tests/workload_docs.rs",
    ] {
        assert!(
            files.contains(path),
            "docs/workloads.md quotes nothing of {path}"
        );
    }
}

#[test]
fn the_toml_and_yaml_forms_describe_the_same_workload() {
    let toml = SqlWorkload::from_file(Path::new("examples/workloads/orders.toml")).expect("toml");
    let yaml = SqlWorkload::from_file(Path::new("examples/workloads/orders.yaml")).expect("yaml");
    assert_eq!(toml.info(), yaml.info());
    assert_eq!(
        toml.info()
            .operations
            .iter()
            .map(|o| (o.name.as_str(), o.weight))
            .collect::<Vec<_>>(),
        [("lookup", 10), ("by_status", 3), ("checkout", 1)]
    );
}

async fn runs_every_operation(workload: Box<dyn Workload>, cluster: &PgCluster) {
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("set up");
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let weights = weights(&workload.info(), None).expect("weights");
    let report = run_load(
        workload.clone(),
        &cluster.connection_string(),
        &weights,
        LoadConfig::new(2, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    for (name, metrics) in &report.operations {
        assert!(metrics.count > 0, "{name} never ran");
        assert!(metrics.errors.is_empty(), "{name}: {:?}", metrics.errors);
    }
    workload.cleanup(&client).await.expect("cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_workload_files_run_on_a_real_cluster() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    for file in [
        "examples/workloads/orders.toml",
        "examples/workloads/orders.yaml",
    ] {
        let workload = SqlWorkload::from_file(Path::new(file)).expect("parsed");
        runs_every_operation(Box::new(workload), &cluster).await;
        let client = cluster.connect().await.expect("connect");
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(left, 0, "{file}: cleanup left tables");
    }
}

#[test]
fn the_example_config_configures_its_workloads() {
    let file = FileConfig::load(Path::new("examples/workloads/stormchor.toml")).expect("loaded");
    assert_eq!(
        (file.workers, file.duration, file.seed),
        (Some(4), Some(30), Some(7))
    );
    let registry = WorkloadRegistry::with_builtins();
    assert_eq!(file.workload.len(), 3);
    for (name, section) in &file.workload {
        let mut section = section.clone();
        let overrides = section.remove("weights").map(|w| match w {
            toml::Value::Table(table) => table,
            other => panic!("[workload.{name}].weights is {other}"),
        });
        let mut workload = registry.create(name).expect("a built-in");
        workload.configure(&section).expect("configured");
        let weights = weights(&workload.info(), overrides.as_ref()).expect("weights");
        if name == "sql" {
            assert_eq!(workload.info().name, "orders");
            assert_eq!(weights, [5, 0, 1]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_of_the_docs_runs_under_the_load_runner() {
    let mut registry = WorkloadRegistry::with_builtins();
    registry.register(
        "counters",
        Arc::new(|| Box::new(Counters::default()) as Box<dyn Workload>),
    );
    let mut workload = registry.create("counters").expect("registered");
    let bad: toml::Table = "row = 5".parse().expect("toml");
    let error = workload.configure(&bad).expect_err("a typo");
    assert!(error.to_string().contains("unknown key `row`"), "{error}");
    workload
        .configure(&"rows = 50".parse().expect("toml"))
        .expect("configured");
    assert_eq!(workload.custom_metrics(), [("counters".to_owned(), 50.0)]);
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut client = cluster.connect().await.expect("connect");
    workload.setup(&mut client).await.expect("set up");
    let workload: Arc<dyn Workload> = Arc::from(workload);
    let weights = weights(&workload.info(), None).expect("weights");
    let report = run_load(
        workload.clone(),
        &cluster.connection_string(),
        &weights,
        LoadConfig::new(2, Duration::from_secs(1)),
    )
    .await
    .expect("ran");
    let hits: i64 = client
        .query_one("SELECT sum(hits)::bigint FROM counters", &[])
        .await
        .expect("sum")
        .get(0);
    assert_eq!(hits as u64, report.operations["hit"].count);
    assert!(report.operations["read"].count > 0);
    workload.cleanup(&client).await.expect("cleaned up");
}
