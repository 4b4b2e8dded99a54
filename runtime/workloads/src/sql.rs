//! The `sql` workload: a workload described in a TOML (or YAML) file (schema, bulk load,
//! parameterised operations with weights and random parameter generators), usable
//! without recompiling anything. docs/workloads.md documents every key and generator.
//!
//! ```toml
//! name = "orders"
//! description = "order lookups and inserts"
//! setup = "CREATE TABLE orders (id bigint PRIMARY KEY, amount double precision, note text)"
//! cleanup = "DROP TABLE IF EXISTS orders"
//!
//! [[load]]                       # bulk-loaded with COPY
//! table = "orders"
//! rows = 10000
//! columns = [{ type = "sequence" }, { type = "float", min = 1.0, max = 500.0 }, { type = "text", length = 12 }]
//!
//! [[operations]]
//! name = "lookup"
//! weight = 10
//! sql = "SELECT * FROM orders WHERE id = $1"
//! params = [{ type = "zipf", n = 10000, exponent = 1.1 }]
//!
//! [[operations]]
//! name = "checkout"
//! weight = 1
//! transaction = true
//! steps = [
//!   { sql = "UPDATE orders SET amount = amount + $1 WHERE id = $2", params = [{ type = "float", min = 1.0, max = 9.0 }, { type = "int", min = 1, max = 10000 }] },
//!   { sql = "SELECT sum(amount) FROM orders" },
//! ]
//! ```

use std::path::Path;

use futures::future::BoxFuture;
use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use serde::Deserialize;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::{
    Operation, Workload, WorkloadError, WorkloadInfo, WorkloadSession, copy_lines, known_keys,
};
use stormchor_postgres::SqlError;

/// A random value generator for a parameter or a loaded column.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Generator {
    /// A whole number in `[min, max]`.
    Int {
        /// Lowest value.
        min: i64,
        /// Highest value.
        max: i64,
    },
    /// A number in `[min, max)`.
    Float {
        /// Lowest value.
        min: f64,
        /// Highest value (excluded).
        max: f64,
    },
    /// Lowercase letters.
    Text {
        /// How many.
        length: usize,
    },
    /// `true` or `false`.
    Bool,
    /// One of these strings.
    Choice {
        /// The values.
        values: Vec<String>,
    },
    /// A whole number in `[1, n]`, Zipf-distributed: small numbers are much more
    /// frequent (skewed access to "popular" rows).
    Zipf {
        /// The largest value.
        n: u64,
        /// The skew; 1.0 and above is strongly skewed.
        exponent: f64,
    },
    /// 1, 2, 3, ... (for loaded key columns).
    Sequence,
}

/// A generated value.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// The longest text a `text` generator makes.
pub const MAX_TEXT_LENGTH: usize = 1 << 20;

impl Generator {
    /// The longest generated text, in characters.
    pub const MAX_TEXT_LENGTH: usize = MAX_TEXT_LENGTH;

    fn check(&self, place: &str) -> Result<(), String> {
        match self {
            Generator::Int { min, max } if min > max => {
                Err(format!("{place}: min {min} is above max {max}"))
            }
            Generator::Float { min, max } if !min.is_finite() || !max.is_finite() => Err(format!(
                "{place}: a float needs finite min and max, found min {min}, max {max}"
            )),
            Generator::Float { min, max } if min >= max => {
                Err(format!("{place}: min {min} is not below max {max}"))
            }
            Generator::Float { min, max } if !(max - min).is_finite() => Err(format!(
                "{place}: the range from {min} to {max} is too wide for a float"
            )),
            Generator::Text { length } if *length > Self::MAX_TEXT_LENGTH => Err(format!(
                "{place}: text length {length} is above the most, {}",
                Self::MAX_TEXT_LENGTH
            )),
            Generator::Choice { values } if values.is_empty() => {
                Err(format!("{place}: a choice needs at least one value"))
            }
            Generator::Zipf { n, exponent }
                if *n == 0 || *n > i64::MAX as u64 || !exponent.is_finite() || *exponent < 0.0 =>
            {
                Err(format!(
                    "{place}: zipf needs n from 1 to {} and a finite exponent >= 0, found n {n}, exponent {exponent}",
                    i64::MAX
                ))
            }
            _ => Ok(()),
        }
    }

    fn sql_type(&self) -> Type {
        match self {
            Generator::Int { .. } | Generator::Zipf { .. } | Generator::Sequence => Type::INT8,
            Generator::Float { .. } => Type::FLOAT8,
            Generator::Text { .. } | Generator::Choice { .. } => Type::TEXT,
            Generator::Bool => Type::BOOL,
        }
    }

    fn generate(&self, rng: &mut SmallRng, row: u64) -> Value {
        match self {
            Generator::Int { min, max } => Value::Int(rng.random_range(*min..=*max)),
            Generator::Float { min, max } => Value::Float(rng.random_range(*min..*max)),
            Generator::Text { length } => Value::Text(
                (0..*length)
                    .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                    .collect(),
            ),
            Generator::Bool => Value::Bool(rng.random_bool(0.5)),
            Generator::Choice { values } => {
                Value::Text(values[rng.random_range(0..values.len())].clone())
            }
            Generator::Zipf { n, exponent } => match Zipf::new(*n as f64, *exponent) {
                Ok(zipf) => Value::Int(zipf.sample(rng) as i64),
                Err(_) => Value::Int(1),
            },
            Generator::Sequence => Value::Int(row as i64),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    sql: String,
    #[serde(default)]
    params: Vec<Generator>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationSpec {
    name: String,
    #[serde(default = "one")]
    weight: u32,
    sql: Option<String>,
    #[serde(default)]
    params: Vec<Generator>,
    #[serde(default)]
    steps: Vec<Step>,
    #[serde(default)]
    transaction: bool,
}

fn one() -> u32 {
    1
}

/// The most rows a `[[load]]` loads.
pub const MAX_LOAD_ROWS: u64 = 1_000_000_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadSpec {
    table: String,
    rows: u64,
    columns: Vec<Generator>,
}

/// The parsed file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    setup: String,
    #[serde(default)]
    cleanup: String,
    #[serde(default)]
    load: Vec<LoadSpec>,
    operations: Vec<OperationSpec>,
}

/// A workload read from a TOML description.
///
/// # Example
/// ```
/// use stormchor_workloads::{SqlWorkload, Workload};
///
/// let workload = SqlWorkload::parse(r#"
///     name = "lookups"
///     setup = "CREATE TABLE t (id bigint)"
///     [[operations]]
///     name = "lookup"
///     weight = 3
///     sql = "SELECT * FROM t WHERE id = $1"
///     params = [{ type = "int", min = 1, max = 100 }]
/// "#, "inline").expect("valid");
/// assert_eq!(workload.info().operations[0].weight, 3);
///
/// let error = SqlWorkload::parse("name = \"x\"\noperations = []\nsetp = \"\"", "bad.toml").expect_err("typo");
/// assert!(error.to_string().contains("bad.toml"), "{error}");
/// assert!(error.to_string().contains("unknown field `setp`"), "{error}");
/// ```
#[derive(Clone, Debug)]
pub struct SqlWorkload {
    spec: Option<Spec>,
}

impl Default for SqlWorkload {
    /// An empty workload; `configure` with a `file` key loads one.
    fn default() -> Self {
        SqlWorkload { spec: None }
    }
}

fn config_error(problem: String) -> WorkloadError {
    WorkloadError::Config {
        workload: "sql".to_owned(),
        problem,
    }
}

impl SqlWorkload {
    /// Parses a description; `origin` names it in errors (a file name).
    pub fn parse(text: &str, origin: &str) -> Result<Self, WorkloadError> {
        let spec: Spec =
            toml::from_str(text).map_err(|e| config_error(format!("{origin}: {e}")))?;
        SqlWorkload::checked(spec, origin)
    }

    /// Parses a description written in YAML, with the same keys as the TOML form.
    /// Only `true` and `false` are booleans (YAML 1.2): under YAML 1.1's rules the key
    /// `n` of a zipf generator, or a choice value `no`, would be a boolean.
    pub fn parse_yaml(text: &str, origin: &str) -> Result<Self, WorkloadError> {
        let options = serde_saphyr::options! { strict_booleans: true };
        let spec: Spec = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| config_error(format!("{origin}: {e}")))?;
        SqlWorkload::checked(spec, origin)
    }

    fn checked(spec: Spec, origin: &str) -> Result<Self, WorkloadError> {
        if spec.operations.is_empty() {
            return Err(config_error(format!("{origin}: no [[operations]]")));
        }
        for (i, op) in spec.operations.iter().enumerate() {
            let place = format!("{origin}: operation {} ({})", i + 1, op.name);
            match (&op.sql, op.steps.is_empty()) {
                (Some(_), true) | (None, false) => {}
                (Some(_), false) => {
                    return Err(config_error(format!(
                        "{place}: give either `sql` or `steps`, not both"
                    )));
                }
                (None, true) => {
                    return Err(config_error(format!("{place}: give `sql` or `steps`")));
                }
            }
            if op.sql.is_none() && !op.params.is_empty() {
                return Err(config_error(format!(
                    "{place}: `params` belong to each step"
                )));
            }
            for (j, generator) in op
                .params
                .iter()
                .chain(op.steps.iter().flat_map(|s| &s.params))
                .enumerate()
            {
                generator
                    .check(&format!("{place}, parameter {}", j + 1))
                    .map_err(config_error)?;
            }
        }
        for load in &spec.load {
            if load.rows > MAX_LOAD_ROWS {
                return Err(config_error(format!(
                    "{origin}: load of {}: {} rows is above the most, {MAX_LOAD_ROWS}",
                    load.table, load.rows
                )));
            }
            for (j, generator) in load.columns.iter().enumerate() {
                generator
                    .check(&format!(
                        "{origin}: load of {}, column {}",
                        load.table,
                        j + 1
                    ))
                    .map_err(config_error)?;
            }
        }
        Ok(SqlWorkload { spec: Some(spec) })
    }

    /// Reads a description from a file: YAML for `.yaml`/`.yml`, TOML otherwise.
    pub fn from_file(path: &Path) -> Result<Self, WorkloadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))?;
        let origin = path.display().to_string();
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => SqlWorkload::parse_yaml(&text, &origin),
            _ => SqlWorkload::parse(&text, &origin),
        }
    }

    fn spec(&self) -> Result<&Spec, WorkloadError> {
        self.spec.as_ref().ok_or_else(|| {
            config_error("no description loaded: set `file` to a workload file".to_owned())
        })
    }
}

struct Prepared {
    statement: Statement,
    params: Vec<Generator>,
}

struct SqlSession {
    client: Client,
    operations: Vec<(bool, Vec<Prepared>)>,
}

fn bind(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| match v {
            Value::Int(n) => n as &(dyn ToSql + Sync),
            Value::Float(x) => x as &(dyn ToSql + Sync),
            Value::Text(t) => t as &(dyn ToSql + Sync),
            Value::Bool(b) => b as &(dyn ToSql + Sync),
        })
        .collect()
}

impl WorkloadSession for SqlSession {
    fn run<'a>(
        &'a mut self,
        operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>> {
        Box::pin(async move {
            let Some((transaction, steps)) = self.operations.get(operation) else {
                return Ok(());
            };
            let client = &self.client;
            let result = async {
                if *transaction {
                    client.batch_execute("BEGIN").await?;
                }
                for step in steps {
                    let values: Vec<Value> =
                        step.params.iter().map(|g| g.generate(rng, 0)).collect();
                    client.execute(&step.statement, &bind(&values)).await?;
                }
                if *transaction {
                    client.batch_execute("COMMIT").await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            }
            .await;
            if let Err(error) = result {
                if *transaction {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(SqlError::from(error));
            }
            Ok(())
        })
    }
}

fn copy_text(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Text(t) => t
            .replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n"),
        Value::Bool(b) => b.to_string(),
    }
}

impl Workload for SqlWorkload {
    fn info(&self) -> WorkloadInfo {
        match &self.spec {
            Some(spec) => WorkloadInfo {
                name: spec.name.clone(),
                version: "1".to_owned(),
                description: spec.description.clone(),
                operations: spec
                    .operations
                    .iter()
                    .map(|o| Operation {
                        name: o.name.clone(),
                        weight: o.weight,
                    })
                    .collect(),
            },
            None => WorkloadInfo {
                name: "sql".to_owned(),
                version: "1".to_owned(),
                description: "a workload described in a TOML file (set `file`)".to_owned(),
                operations: Vec::new(),
            },
        }
    }

    fn configure(&mut self, section: &toml::Table) -> Result<(), WorkloadError> {
        known_keys("sql", section, &["file"])?;
        match section.get("file") {
            Some(toml::Value::String(path)) => {
                *self = SqlWorkload::from_file(Path::new(path))?;
                Ok(())
            }
            Some(other) => Err(config_error(format!(
                "`file` must be a path, found {other}"
            ))),
            None => Ok(()),
        }
    }

    fn setup<'a>(&'a self, client: &'a mut Client) -> BoxFuture<'a, Result<(), WorkloadError>> {
        Box::pin(async move {
            let spec = self.spec()?;
            let fail = |what: String| {
                move |error: tokio_postgres::Error| WorkloadError::Sql {
                    workload: spec.name.clone(),
                    what,
                    error: SqlError::from(error),
                }
            };
            if !spec.setup.trim().is_empty() {
                client
                    .batch_execute(&spec.setup)
                    .await
                    .map_err(fail("running `setup`".to_owned()))?;
            }
            let mut rng = <SmallRng as rand::SeedableRng>::seed_from_u64(0);
            for load in &spec.load {
                let rng = &mut rng;
                let lines = (1..=load.rows).map(|row| {
                    let fields: Vec<String> = load
                        .columns
                        .iter()
                        .map(|g| copy_text(&g.generate(rng, row)))
                        .collect();
                    fields.join("\t") + "\n"
                });
                copy_lines(client, &spec.name, &load.table, lines).await?;
            }
            Ok(())
        })
    }

    fn cleanup<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), WorkloadError>> {
        Box::pin(async move {
            let spec = self.spec()?;
            if spec.cleanup.trim().is_empty() {
                return Ok(());
            }
            client
                .batch_execute(&spec.cleanup)
                .await
                .map_err(|error| WorkloadError::Sql {
                    workload: spec.name.clone(),
                    what: "running `cleanup`".to_owned(),
                    error: SqlError::from(error),
                })
        })
    }

    fn session<'a>(
        &'a self,
        client: Client,
    ) -> BoxFuture<'a, Result<Box<dyn WorkloadSession>, WorkloadError>> {
        Box::pin(async move {
            let spec = self.spec()?;
            let mut operations = Vec::new();
            for op in &spec.operations {
                let steps: Vec<(String, Vec<Generator>)> = match &op.sql {
                    Some(sql) => vec![(sql.clone(), op.params.clone())],
                    None => op
                        .steps
                        .iter()
                        .map(|s| (s.sql.clone(), s.params.clone()))
                        .collect(),
                };
                let mut prepared = Vec::new();
                for (sql, params) in steps {
                    let types: Vec<Type> = params.iter().map(Generator::sql_type).collect();
                    let statement = client.prepare_typed(&sql, &types).await.map_err(|error| {
                        WorkloadError::Sql {
                            workload: spec.name.clone(),
                            what: format!("preparing operation {}: `{sql}`", op.name),
                            error: SqlError::from(error),
                        }
                    })?;
                    prepared.push(Prepared { statement, params });
                }
                operations.push((op.transaction, prepared));
            }
            Ok(Box::new(SqlSession { client, operations }) as Box<dyn WorkloadSession>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use rand::SeedableRng;

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(f64::MIN),
            -10.0..10.0f64,
        ]
    }

    fn generator() -> impl Strategy<Value = Generator> {
        prop_oneof![
            (any::<i64>(), any::<i64>()).prop_map(|(min, max)| Generator::Int { min, max }),
            (float(), float()).prop_map(|(min, max)| Generator::Float { min, max }),
            prop_oneof![0..64usize, any::<usize>()].prop_map(|length| Generator::Text { length }),
            Just(Generator::Bool),
            prop::collection::vec(".{0,3}", 0..3).prop_map(|values| Generator::Choice { values }),
            (any::<u64>(), float()).prop_map(|(n, exponent)| Generator::Zipf { n, exponent }),
            Just(Generator::Sequence),
        ]
    }

    /// A generator the loader accepts makes values without a panic (and without an
    /// allocation the size of a hostile `length`).
    #[test]
    fn every_accepted_generator_generates() {
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 5000,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
        );
        let accepted = std::sync::atomic::AtomicU32::new(0);
        runner
            .run(&generator(), |generator| {
                if generator.check("fuzz").is_ok() {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut rng = SmallRng::seed_from_u64(1);
                    for row in 1..=3 {
                        let _ = generator.generate(&mut rng, row);
                    }
                }
                Ok(())
            })
            .expect("no panic");
        let accepted = accepted.into_inner();
        eprintln!("generators: 5000 inputs, {accepted} accepted and generated from, 0 panics");
        assert!(accepted > 1000, "{accepted}");
    }
}
