//! A schema of the run's own on a server that is not ours: everything a workload
//! creates goes there, and the cleanup drops that schema only.

use super::cluster::PgError;
use super::connection::{connect, redact};
use super::verify::quote_ident;

/// How the name of every run's own schema begins.
pub const PREFIX: &str = "stormchor_run_";

/// A schema made for one run on a user's server, with a connection string whose
/// connections see only it: every connection opened with
/// [`connection_string`](RunSchema::connection_string) has `search_path` set to the
/// schema alone (through the startup `options`), so unqualified names are created,
/// found and dropped there and nowhere else (`public` is not on the path: a
/// `DROP TABLE IF EXISTS pgbench_accounts` cannot reach the user's table).
///
/// The name is `stormchor_run_<pid>_<random>`: two runs at once never share one.
///
/// # Example
/// ```no_run
/// use stormchor_postgres::RunSchema;
///
/// # async fn demo() -> Result<(), stormchor_postgres::PgError> {
/// let schema = RunSchema::create("host=db user=me").await?;
/// let client = stormchor_postgres::connect(schema.connection_string()).await?;
/// client.batch_execute("CREATE TABLE t (id int)").await.expect("in the run's schema");
/// schema.drop_schema().await?; // t goes with it; nothing else is touched
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RunSchema {
    name: String,
    base: String,
    connection_string: String,
}

impl RunSchema {
    /// Creates a new schema on the server of `connection_string`.
    pub async fn create(connection_string: &str) -> Result<RunSchema, PgError> {
        use rand::{Rng, SeedableRng};
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let suffix: u32 = rand::rngs::SmallRng::seed_from_u64(seed).random();
        let name = format!("{PREFIX}{}_{suffix:08x}", std::process::id());
        let client = connect(connection_string).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&name)))
            .await
            .map_err(|source| PgError::Sql {
                what: format!(
                    "creating the run's schema {name} on `{}`",
                    redact(connection_string)
                ),
                source,
            })?;
        Ok(RunSchema {
            connection_string: with_search_path(connection_string, &name)?,
            base: connection_string.to_owned(),
            name,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection string whose connections have `search_path` set to this schema.
    pub fn connection_string(&self) -> &str {
        &self.connection_string
    }

    /// Drops the schema and everything in it (`DROP SCHEMA ... CASCADE`); nothing
    /// outside it is touched.
    pub async fn drop_schema(&self) -> Result<(), PgError> {
        let client = connect(&self.base).await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(&self.name)
            ))
            .await
            .map_err(|source| PgError::Sql {
                what: format!("dropping the run's schema {}", self.name),
                source,
            })
    }
}

/// `connection_string` with `-c search_path=<schema>` added to its startup options
/// (after any options it has; a later `options` key replaces an earlier one, so the
/// whole value is repeated). `schema` must be a plain lower-case identifier.
pub fn with_search_path(connection_string: &str, schema: &str) -> Result<String, PgError> {
    let invalid = |problem: String| PgError::State {
        state: "misconfigured",
        operation: problem,
    };
    if schema.is_empty()
        || !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(format!(
            "use {schema:?} as a search path (a plain lower-case identifier is needed)"
        )));
    }
    let config: tokio_postgres::Config =
        connection_string.parse().map_err(|source| PgError::Sql {
            what: format!(
                "reading the connection string `{}`",
                redact(connection_string)
            ),
            source,
        })?;
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => {
            format!("{existing} -c search_path={schema}")
        }
        _ => format!("-c search_path={schema}"),
    };
    let text = connection_string.trim();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let encoded: String = options
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let separator = if text.contains('?') { '&' } else { '?' };
        Ok(format!("{text}{separator}options={encoded}"))
    } else {
        let quoted = options.replace('\\', "\\\\").replace('\'', "\\'");
        Ok(format!("{text} options='{quoted}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::with_search_path;

    fn options_of(connection_string: &str) -> String {
        connection_string
            .parse::<tokio_postgres::Config>()
            .expect("parses")
            .get_options()
            .expect("options")
            .to_owned()
    }

    #[test]
    fn the_search_path_joins_the_startup_options_in_both_forms() {
        for (input, expected) in [
            ("host=h user=u", "-c search_path=s_1"),
            (
                "host=h options='-c work_mem=64MB' user=u",
                "-c work_mem=64MB -c search_path=s_1",
            ),
            ("postgres://u@h/db", "-c search_path=s_1"),
            ("postgresql://u@h/db?sslmode=disable", "-c search_path=s_1"),
            (
                "postgres://u@h/db?options=-c%20geqo%3Doff",
                "-c geqo=off -c search_path=s_1",
            ),
        ] {
            let out = with_search_path(input, "s_1").expect("adds");
            assert_eq!(options_of(&out), expected, "{input} -> {out}");
        }
    }

    #[test]
    fn only_plain_schema_names_are_accepted() {
        for bad in ["", "Public", "a b", "x;drop", "s'"] {
            assert!(with_search_path("host=h", bad).is_err(), "{bad:?}");
        }
    }
}
