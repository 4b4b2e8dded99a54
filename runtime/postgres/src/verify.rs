//! Verifiers: per-table checksums, a ledger of acknowledged writes, and `pg_amcheck`.
//!
//! - [`table_checksums`] reads a row count and an order-independent hash of every row
//!   of every table of a schema; [`compare_checksums`] lists every table that differs.
//! - [`write_ledger`] writes transactions of several rows and remembers which commits
//!   the server acknowledged, which it never saw, and which are in doubt (the
//!   connection died while the commit was on its way); [`verify_ledger`] then checks
//!   that every acknowledged transaction is whole, that no transaction is half there,
//!   and that nothing the workers never committed appears.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::cluster::PgError;
use super::connection::connect;

/// The row count and row hash of one table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableChecksum {
    /// Rows.
    pub rows: i64,
    /// The sum of a 64-bit hash of every row's text, as a decimal (order-independent).
    pub hash: String,
}

impl fmt::Display for TableChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows, hash {}", self.rows, self.hash)
    }
}

/// The checksums of a schema's tables, by table name.
pub type Checksums = BTreeMap<String, TableChecksum>;

/// A table whose checksum differs between two sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChecksumDifference {
    /// On the expected side only.
    Missing {
        /// The table.
        table: String,
    },
    /// On the found side only.
    Extra {
        /// The table.
        table: String,
    },
    /// On both sides, with different contents.
    Differs {
        /// The table.
        table: String,
        /// What the expected side has.
        expected: TableChecksum,
        /// What the found side has.
        found: TableChecksum,
    },
}

impl fmt::Display for ChecksumDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChecksumDifference::Missing { table } => write!(f, "table {table} is missing"),
            ChecksumDifference::Extra { table } => write!(f, "table {table} should not exist"),
            ChecksumDifference::Differs {
                table,
                expected,
                found,
            } => write!(f, "table {table}: expected {expected}, found {found}"),
        }
    }
}

fn sql(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    let what = what.into();
    move |source| PgError::Sql { what, source }
}

/// The checksums of every ordinary table (partitions included, partitioned parents
/// not, so no row counts twice) of `schema`, read in one repeatable-read snapshot.
///
/// # Example
/// ```no_run
/// # async fn demo(client: &tokio_postgres::Client) -> Result<(), stormchor_postgres::PgError> {
/// use stormchor_postgres::{compare_checksums, table_checksums};
///
/// let before = table_checksums(client, "public").await?;
/// let after = table_checksums(client, "public").await?;
/// assert!(compare_checksums(&before, &after).is_empty());
/// # Ok(()) }
/// ```
pub async fn table_checksums(client: &Client, schema: &str) -> Result<Checksums, PgError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(sql("starting the checksum snapshot"))?;
    let result = read_checksums(client, schema).await;
    let _ = client.batch_execute("COMMIT").await;
    result
}

async fn read_checksums(client: &Client, schema: &str) -> Result<Checksums, PgError> {
    let tables = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname",
            &[&schema],
        )
        .await
        .map_err(sql(format!("listing the tables of schema {schema}")))?;
    let mut checksums = Checksums::new();
    for row in tables {
        let table: String = row.get(0);
        let query = format!(
            "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text \
             FROM {}.{} t",
            quote_ident(schema),
            quote_ident(&table)
        );
        let row = client
            .query_one(&query, &[])
            .await
            .map_err(sql(format!("reading the checksum of table {table}")))?;
        checksums.insert(
            table,
            TableChecksum {
                rows: row.get(0),
                hash: row.get(1),
            },
        );
    }
    Ok(checksums)
}

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table whose checksum differs between `expected` and `found`, by table name.
pub fn compare_checksums(expected: &Checksums, found: &Checksums) -> Vec<ChecksumDifference> {
    let mut differences = Vec::new();
    for (table, want) in expected {
        match found.get(table) {
            None => differences.push(ChecksumDifference::Missing {
                table: table.clone(),
            }),
            Some(got) if got != want => differences.push(ChecksumDifference::Differs {
                table: table.clone(),
                expected: want.clone(),
                found: got.clone(),
            }),
            Some(_) => {}
        }
    }
    for table in found.keys() {
        if !expected.contains_key(table) {
            differences.push(ChecksumDifference::Extra {
                table: table.clone(),
            });
        }
    }
    differences
}

/// The table the ledger writers write to.
pub const LEDGER_TABLE: &str = "stormchor_ledger";

/// Creates the ledger table if it is not there.
pub async fn create_ledger(client: &Client) -> Result<(), PgError> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (\
             worker int NOT NULL, tx bigint NOT NULL, item int NOT NULL, payload text NOT NULL, \
             PRIMARY KEY (worker, tx, item))"
        ))
        .await
        .map_err(sql("creating the ledger table"))
}

/// What one ledger writer knows about its transactions, kept across rounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// The writer's number.
    pub worker: i32,
    /// Rows per transaction.
    pub rows_per_tx: i32,
    /// Transactions whose commit the server acknowledged.
    pub acknowledged: Vec<i64>,
    /// Transactions whose commit was sent but never answered: each is either whole or
    /// absent, never half there.
    pub in_doubt: Vec<i64>,
    /// Transactions that failed before their commit was sent: none of their rows may exist.
    pub aborted: Vec<i64>,
    /// The next transaction number; none at or above it was attempted.
    pub next_tx: i64,
    /// How many times the writer reconnected.
    pub reconnects: u64,
}

impl Ledger {
    /// An empty ledger of writer `worker`, writing `rows_per_tx` rows per transaction.
    pub fn new(worker: i32, rows_per_tx: i32) -> Self {
        Ledger {
            worker,
            rows_per_tx: rows_per_tx.max(1),
            ..Ledger::default()
        }
    }

    /// An empty ledger that goes on where this one ends: same writer, next
    /// transaction number, nothing recorded yet. A writer that reports in rounds
    /// writes each round into one of these and sends only that.
    pub fn continuation(&self) -> Self {
        Ledger {
            worker: self.worker,
            rows_per_tx: self.rows_per_tx,
            next_tx: self.next_tx,
            ..Ledger::default()
        }
    }

    /// Adds `later` (a continuation of this ledger, as the writer sent it) to this one.
    ///
    /// # Example
    /// ```
    /// use stormchor_postgres::Ledger;
    ///
    /// let mut whole = Ledger::new(0, 3);
    /// whole.acknowledged.push(0);
    /// whole.next_tx = 1;
    /// let mut round = whole.continuation();
    /// round.acknowledged.push(1);
    /// round.next_tx = 2;
    /// whole.absorb(round);
    /// assert_eq!((whole.acknowledged, whole.next_tx), (vec![0, 1], 2));
    /// ```
    pub fn absorb(&mut self, later: Ledger) {
        self.acknowledged.extend(later.acknowledged);
        self.in_doubt.extend(later.in_doubt);
        self.aborted.extend(later.aborted);
        self.next_tx = self.next_tx.max(later.next_tx);
        self.reconnects += later.reconnects;
    }
}

/// Where a ledger writer connects: a connection string that a failover may change
/// while the writer runs.
#[derive(Clone, Debug)]
pub struct LedgerTarget(Arc<RwLock<String>>);

impl LedgerTarget {
    /// A target pointing at `connection_string`.
    pub fn new(connection_string: impl Into<String>) -> Self {
        LedgerTarget(Arc::new(RwLock::new(connection_string.into())))
    }

    /// The connection string now.
    pub fn get(&self) -> String {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Points every writer at `connection_string` from their next connection on.
    pub fn set(&self, connection_string: impl Into<String>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = connection_string.into();
    }
}

/// Writes ledger transactions for `duration` (or until `stop`), reconnecting whenever
/// the server goes away, and records each transaction's outcome in `ledger`.
///
/// A transaction is `BEGIN`, one `INSERT` per row, `COMMIT`, each its own round trip,
/// so that a crash can fall between any two of them.
pub async fn write_ledger(
    ledger: &mut Ledger,
    target: &LedgerTarget,
    duration: Duration,
    stop: &AtomicBool,
) {
    write_ledger_observed(ledger, target, duration, stop, |_| {}).await;
}

/// How one ledger transaction ended, as [`write_ledger_observed`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Its number.
    pub tx: i64,
    /// The server acknowledged its commit.
    pub acknowledged: bool,
    /// From `BEGIN` to the commit's answer (or to the failure).
    pub latency: Duration,
    /// It is the first transaction on a connection made after the last one was lost.
    pub after_reconnect: bool,
}

/// [`write_ledger`], calling `observe` after each transaction (for per-second load
/// figures and the moment commits resume after a crash).
pub async fn write_ledger_observed(
    ledger: &mut Ledger,
    target: &LedgerTarget,
    duration: Duration,
    stop: &AtomicBool,
    mut observe: impl FnMut(Commit) + Send,
) {
    let deadline = Instant::now() + duration;
    let mut client: Option<Client> = None;
    let mut reconnected = false;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let current = match client.take() {
            Some(current) if !current.is_closed() => current,
            previous => {
                if previous.is_some() {
                    ledger.reconnects += 1;
                    reconnected = true;
                }
                match tokio::time::timeout(Duration::from_secs(2), connect(&target.get())).await {
                    Ok(Ok(fresh)) => fresh,
                    _ => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
        };
        let tx = ledger.next_tx;
        ledger.next_tx += 1;
        let began = Instant::now();
        let outcome = write_one(&current, ledger.worker, tx, ledger.rows_per_tx).await;
        let acknowledged = matches!(outcome, Outcome::Acknowledged);
        match outcome {
            Outcome::Acknowledged => ledger.acknowledged.push(tx),
            Outcome::InDoubt => ledger.in_doubt.push(tx),
            Outcome::Aborted => ledger.aborted.push(tx),
        }
        observe(Commit {
            tx,
            acknowledged,
            latency: began.elapsed(),
            after_reconnect: std::mem::take(&mut reconnected),
        });
        client = Some(current);
    }
}

enum Outcome {
    Acknowledged,
    InDoubt,
    Aborted,
}

async fn write_one(client: &Client, worker: i32, tx: i64, rows: i32) -> Outcome {
    // Every wait is bounded: a server that stops answering makes the outcome unknown.
    let bound = Duration::from_secs(10);
    let before_commit = async {
        client.batch_execute("BEGIN").await?;
        for item in 0..rows {
            client
                .execute(
                    "INSERT INTO stormchor_ledger (worker, tx, item, payload) VALUES ($1, $2, $3, $4)",
                    &[&worker, &tx, &item, &format!("w{worker}-t{tx}-i{item}")],
                )
                .await?;
        }
        Ok::<(), tokio_postgres::Error>(())
    };
    match tokio::time::timeout(bound, before_commit).await {
        Ok(Ok(())) => {}
        // The commit was never sent: the server rolls the transaction back.
        _ => {
            let _ = tokio::time::timeout(bound, client.batch_execute("ROLLBACK")).await;
            return Outcome::Aborted;
        }
    }
    match tokio::time::timeout(bound, client.batch_execute("COMMIT")).await {
        Ok(Ok(())) => Outcome::Acknowledged,
        _ => Outcome::InDoubt,
    }
}

/// What [`verify_ledger`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerVerdict {
    /// Acknowledged transactions checked.
    pub acknowledged: u64,
    /// Acknowledged transactions found whole.
    pub found: u64,
    /// Acknowledged transactions with rows missing: (worker, tx, rows found).
    pub missing: Vec<(i32, i64, i64)>,
    /// Transactions neither whole nor absent: (worker, tx, rows found).
    pub partial: Vec<(i32, i64, i64)>,
    /// Transactions that must not exist (aborted or never attempted) but do:
    /// (worker, tx, rows found).
    pub phantom: Vec<(i32, i64, i64)>,
    /// In-doubt transactions that turned out committed, and absent.
    pub in_doubt_committed: u64,
    /// In-doubt transactions that turned out absent.
    pub in_doubt_absent: u64,
}

impl LedgerVerdict {
    /// Whether nothing was lost, half-written or invented.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.partial.is_empty() && self.phantom.is_empty()
    }

    /// The problems, one line each, at most `limit` per kind.
    pub fn evidence(&self, limit: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut list = |kind: &str, items: &[(i32, i64, i64)], present: &str| {
            for (worker, tx, found) in items.iter().take(limit) {
                lines.push(format!(
                    "{kind}: worker {worker} transaction {tx}: {found} {present}"
                ));
            }
            if items.len() > limit {
                lines.push(format!("{kind}: ... {} more", items.len() - limit));
            }
        };
        list("missing acknowledged", &self.missing, "of its rows present");
        list("half there", &self.partial, "of its rows present");
        list(
            "must not exist",
            &self.phantom,
            "rows present, none expected",
        );
        lines
    }
}

/// Checks the ledger table against what the writers know.
pub async fn verify_ledger(client: &Client, ledgers: &[Ledger]) -> Result<LedgerVerdict, PgError> {
    let rows = client
        .query(
            "SELECT worker, tx, count(*) FROM stormchor_ledger GROUP BY worker, tx",
            &[],
        )
        .await
        .map_err(sql("reading the ledger"))?;
    let mut present: BTreeMap<(i32, i64), i64> = rows
        .iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect();
    let mut verdict = LedgerVerdict::default();
    for ledger in ledgers {
        let whole = i64::from(ledger.rows_per_tx);
        for &tx in &ledger.acknowledged {
            verdict.acknowledged += 1;
            let found = present.remove(&(ledger.worker, tx)).unwrap_or(0);
            if found == whole {
                verdict.found += 1;
            } else {
                verdict.missing.push((ledger.worker, tx, found));
            }
        }
        for &tx in &ledger.in_doubt {
            match present.remove(&(ledger.worker, tx)).unwrap_or(0) {
                0 => verdict.in_doubt_absent += 1,
                found if found == whole => verdict.in_doubt_committed += 1,
                found => verdict.partial.push((ledger.worker, tx, found)),
            }
        }
    }
    // What is left was aborted, never attempted, or written by nobody we know.
    for ((worker, tx), found) in present {
        let known = ledgers.iter().find(|l| l.worker == worker);
        match known {
            Some(ledger) if found != i64::from(ledger.rows_per_tx) && found != 0 => {
                verdict.partial.push((worker, tx, found));
            }
            _ => verdict.phantom.push((worker, tx, found)),
        }
    }
    Ok(verdict)
}

/// Runs `pg_amcheck` (installing the `amcheck` extension where it is missing) on every
/// database of `cluster`, tables and indexes; fails with its report when it finds
/// corruption.
pub async fn amcheck(cluster: &super::PgCluster) -> Result<String, PgError> {
    let mut args = cluster.client_args();
    args.extend(["--install-missing".to_owned(), "--all".to_owned()]);
    cluster.run_program("pg_amcheck", &args).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(rows: i64, hash: &str) -> TableChecksum {
        TableChecksum {
            rows,
            hash: hash.to_owned(),
        }
    }

    #[test]
    fn every_kind_of_difference_is_listed_by_table() {
        let expected = Checksums::from([
            ("kept".to_owned(), sum(3, "17")),
            ("changed".to_owned(), sum(3, "17")),
            ("lost".to_owned(), sum(1, "5")),
        ]);
        let found = Checksums::from([
            ("kept".to_owned(), sum(3, "17")),
            ("changed".to_owned(), sum(3, "18")),
            ("new".to_owned(), sum(0, "0")),
        ]);
        let differences: Vec<String> = compare_checksums(&expected, &found)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            differences,
            [
                "table changed: expected 3 rows, hash 17, found 3 rows, hash 18",
                "table lost is missing",
                "table new should not exist",
            ]
        );
        assert!(compare_checksums(&expected, &expected).is_empty());
    }

    #[test]
    fn the_verdict_lists_its_evidence_with_a_limit() {
        let verdict = LedgerVerdict {
            acknowledged: 10,
            found: 7,
            missing: vec![(0, 1, 2), (0, 2, 0), (1, 5, 1)],
            partial: vec![(1, 9, 1)],
            ..LedgerVerdict::default()
        };
        assert!(!verdict.is_clean());
        assert_eq!(
            verdict.evidence(2),
            [
                "missing acknowledged: worker 0 transaction 1: 2 of its rows present",
                "missing acknowledged: worker 0 transaction 2: 0 of its rows present",
                "missing acknowledged: ... 1 more",
                "half there: worker 1 transaction 9: 1 of its rows present",
            ]
        );
        assert!(LedgerVerdict::default().is_clean());
    }
}
