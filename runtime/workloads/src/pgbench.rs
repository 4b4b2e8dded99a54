//! pgbench's workloads: the TPC-B-like transaction and select-only, on pgbench's four
//! tables, so results compare with `pgbench` directly.

use std::pin::{Pin, pin};

use futures::future::{BoxFuture, MaybeDone, maybe_done};
use rand::Rng;
use rand::rngs::SmallRng;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{
    Operation, Workload, WorkloadError, WorkloadInfo, WorkloadSession, copy_lines, integer_key,
    known_keys,
};
use stormchor_postgres::SqlError;

const ACCOUNTS_PER_BRANCH: i64 = 100_000;

/// The statements of the TPC-B-like transaction, in order.
const TPCB_STATEMENTS: [&str; 7] = [
    "BEGIN",
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
    "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
    "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
    "END",
];
const TELLERS_PER_BRANCH: i64 = 10;

fn sql_error(
    workload: &str,
    what: &str,
) -> impl FnOnce(tokio_postgres::Error) -> WorkloadError + use<> {
    let (workload, what) = (workload.to_owned(), what.to_owned());
    move |error| WorkloadError::Sql {
        workload,
        what,
        error: SqlError::from(error),
    }
}

/// Creates pgbench's tables at `scale` and loads them with COPY, as `pgbench -i` does.
async fn load(workload: &str, client: &Client, scale: i64) -> Result<(), WorkloadError> {
    let fail = |what: &str| sql_error(workload, what);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;
             CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
             CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
             CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
             CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);",
        )
        .await
        .map_err(fail("creating the tables"))?;
    copy_lines(
        client,
        workload,
        "pgbench_branches",
        (1..=scale).map(|i| format!("{i}\t0\t\n")),
    )
    .await?;
    let tellers = (1..=scale * TELLERS_PER_BRANCH)
        .map(|i| format!("{i}\t{}\t0\t\n", (i - 1) / TELLERS_PER_BRANCH + 1));
    copy_lines(client, workload, "pgbench_tellers", tellers).await?;
    let accounts = (1..=scale * ACCOUNTS_PER_BRANCH)
        .map(|i| format!("{i}\t{}\t0\t\n", (i - 1) / ACCOUNTS_PER_BRANCH + 1));
    copy_lines(client, workload, "pgbench_accounts", accounts).await?;
    client
        .batch_execute(
            "ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
             ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
             ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);",
        )
        .await
        .map_err(fail("adding primary keys"))?;
    // VACUUM cannot share a (multi-statement, hence implicit) transaction.
    client
        .batch_execute(
            "VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history",
        )
        .await
        .map_err(fail("vacuuming"))
}

async fn drop_tables(workload: &str, client: &Client) -> Result<(), WorkloadError> {
    client
        .batch_execute("DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers")
        .await
        .map_err(sql_error(workload, "dropping the tables"))
}

/// `pgbench`'s built-in scripts on its four tables: the TPC-B-like transaction (update
/// an account, read it back, update a teller and a branch, insert a history row, in one
/// transaction) or select-only (read one account's balance).
///
/// Config: `scale` (branches, 100,000 accounts each; default 1).
#[derive(Clone, Debug)]
pub struct Pgbench {
    select_only: bool,
    scale: i64,
}

impl Pgbench {
    /// The TPC-B-like transaction (`tpcb`).
    pub fn tpcb() -> Self {
        Pgbench {
            select_only: false,
            scale: 1,
        }
    }

    /// `pgbench --select-only` (`read-only`).
    pub fn read_only() -> Self {
        Pgbench {
            select_only: true,
            scale: 1,
        }
    }

    fn name(&self) -> &'static str {
        if self.select_only {
            "read-only"
        } else {
            "tpcb"
        }
    }
}

/// The account read returned exactly one row, else an error naming the account
/// (SQLSTATE P0002, no_data_found: a missing row is not a broken connection).
fn one_row(rows: u64, aid: i32) -> Result<(), SqlError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(SqlError {
            sqlstate: Some("P0002".to_owned()),
            message: format!("account {aid}: expected 1 row, the server returned {rows}"),
        })
    }
}

struct TpcbSession {
    client: Client,
    scale: i64,
    begin: Statement,
    update_account: Statement,
    read_account: Statement,
    update_teller: Statement,
    update_branch: Statement,
    insert_history: Statement,
    end: Statement,
}

impl WorkloadSession for TpcbSession {
    fn run<'a>(
        &'a mut self,
        _operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>> {
        Box::pin(async move {
            let aid = rng.random_range(1..=(ACCOUNTS_PER_BRANCH * self.scale) as i32);
            let bid = rng.random_range(1..=self.scale as i32);
            let tid = rng.random_range(1..=(TELLERS_PER_BRANCH * self.scale) as i32);
            let delta = rng.random_range(-5000..=5000i32);
            let client = &self.client;
            let result = async {
                client.execute(&self.begin, &[]).await?;
                client
                    .execute(&self.update_account, &[&delta, &aid])
                    .await?;
                let read = client.execute(&self.read_account, &[&aid]).await?;
                if read != 1 {
                    return Ok(Err(read));
                }
                client.execute(&self.update_teller, &[&delta, &tid]).await?;
                client.execute(&self.update_branch, &[&delta, &bid]).await?;
                client
                    .execute(&self.insert_history, &[&tid, &bid, &aid, &delta])
                    .await?;
                client.execute(&self.end, &[]).await?;
                Ok::<_, tokio_postgres::Error>(Ok(()))
            }
            .await;
            match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(read)) => {
                    // No account row: the transaction goes no further.
                    let _ = client.batch_execute("ROLLBACK").await;
                    one_row(read, aid)
                }
                Err(error) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    Err(SqlError::from(error))
                }
            }
        })
    }

    fn run_pipelined<'a>(
        &'a mut self,
        _operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>> {
        Box::pin(self.pipelined(rng))
    }
}

impl TpcbSession {
    /// The transaction's statements, sent one after the other without waiting for the
    /// replies; the first statement that fails (in order) is the error. An account read
    /// that finds no row is reported (P0002) but, unlike in [`run`](WorkloadSession::run),
    /// cannot stop the transaction: its `END` was sent with it (as with pgbench's
    /// `\startpipeline`, which does not look at the row at all).
    async fn pipelined(&self, rng: &mut SmallRng) -> Result<(), SqlError> {
        let aid = rng.random_range(1..=(ACCOUNTS_PER_BRANCH * self.scale) as i32);
        let bid = rng.random_range(1..=self.scale as i32);
        let tid = rng.random_range(1..=(TELLERS_PER_BRANCH * self.scale) as i32);
        let delta = rng.random_range(-5000..=5000i32);
        let client = &self.client;
        let account_params: [&(dyn ToSql + Sync); 2] = [&delta, &aid];
        let read_params: [&(dyn ToSql + Sync); 1] = [&aid];
        let teller_params: [&(dyn ToSql + Sync); 2] = [&delta, &tid];
        let branch_params: [&(dyn ToSql + Sync); 2] = [&delta, &bid];
        let history_params: [&(dyn ToSql + Sync); 4] = [&tid, &bid, &aid, &delta];
        let begin = pin!(maybe_done(client.execute(&self.begin, &[])));
        let account = pin!(maybe_done(
            client.execute(&self.update_account, &account_params)
        ));
        let read = pin!(maybe_done(client.execute(&self.read_account, &read_params)));
        let teller = pin!(maybe_done(
            client.execute(&self.update_teller, &teller_params)
        ));
        let branch = pin!(maybe_done(
            client.execute(&self.update_branch, &branch_params)
        ));
        let history = pin!(maybe_done(
            client.execute(&self.insert_history, &history_params)
        ));
        let end = pin!(maybe_done(client.execute(&self.end, &[])));
        let mut statements: [Pin<&mut MaybeDone<_>>; 7] =
            [begin, account, read, teller, branch, history, end];
        // Each statement's future sends it on its first poll: polled in order, the
        // server gets them in the transaction's order, all before any reply; then the
        // replies are awaited in order (a wake-up polls one future, not seven).
        for statement in &mut statements {
            let _ = futures::poll!(statement.as_mut());
        }
        let mut read = 0;
        let mut result = Ok(());
        for (index, statement) in statements.iter_mut().enumerate() {
            statement.as_mut().await;
            match statement.as_mut().take_output() {
                Some(Ok(rows)) if index == 2 => read = rows,
                Some(Err(error)) if result.is_ok() => result = Err(error),
                _ => {}
            }
        }
        let result = result.map(|()| read);
        match result {
            Ok(read) => one_row(read, aid),
            Err(error) => {
                // A failed statement aborts the transaction and `END` then rolls it back;
                // this makes sure, whatever failed.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(SqlError::from(error))
            }
        }
    }
}

struct ReadOnlySession {
    client: Client,
    accounts: i32,
    select: Statement,
}

impl WorkloadSession for ReadOnlySession {
    fn run<'a>(
        &'a mut self,
        _operation: usize,
        rng: &'a mut SmallRng,
    ) -> BoxFuture<'a, Result<(), SqlError>> {
        Box::pin(async move {
            let aid = rng.random_range(1..=self.accounts);
            // The reply's row is not decoded (`execute`): the wire protocol is the same
            // as `pgbench -M prepared`'s, one Bind/Execute/Sync and its reply; only the
            // count of rows is checked.
            let rows = self
                .client
                .execute(&self.select, &[&aid])
                .await
                .map_err(SqlError::from)?;
            one_row(rows, aid)
        })
    }
}

impl Workload for Pgbench {
    fn info(&self) -> WorkloadInfo {
        let (description, operation) = if self.select_only {
            (
                "pgbench's select-only transaction: one account balance by key",
                "select",
            )
        } else {
            (
                "pgbench's TPC-B-like transaction on pgbench's four tables",
                "tpcb",
            )
        };
        WorkloadInfo {
            name: self.name().to_owned(),
            version: "1".to_owned(),
            description: description.to_owned(),
            operations: vec![Operation {
                name: operation.to_owned(),
                weight: 1,
            }],
        }
    }

    fn configure(&mut self, section: &toml::Table) -> Result<(), WorkloadError> {
        known_keys(self.name(), section, &["scale"])?;
        self.scale = integer_key(self.name(), section, "scale", 1, 1)?;
        Ok(())
    }

    /// Both pipeline: the TPC-B-like transaction's seven statements go in one round
    /// trip; select-only has one statement, so its pipeline is the plain run.
    fn pipelines(&self) -> bool {
        true
    }

    fn setup<'a>(&'a self, client: &'a mut Client) -> BoxFuture<'a, Result<(), WorkloadError>> {
        Box::pin(load(self.name(), client, self.scale))
    }

    fn cleanup<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<(), WorkloadError>> {
        Box::pin(drop_tables(self.name(), client))
    }

    fn session<'a>(
        &'a self,
        client: Client,
    ) -> BoxFuture<'a, Result<Box<dyn WorkloadSession>, WorkloadError>> {
        Box::pin(async move {
            if self.select_only {
                let select = client
                    .prepare("SELECT abalance FROM pgbench_accounts WHERE aid = $1")
                    .await
                    .map_err(sql_error(self.name(), "preparing the statement"))?;
                Ok(Box::new(ReadOnlySession {
                    client,
                    accounts: (ACCOUNTS_PER_BRANCH * self.scale) as i32,
                    select,
                }) as Box<dyn WorkloadSession>)
            } else {
                let mut prepared = Vec::with_capacity(TPCB_STATEMENTS.len());
                for sql in TPCB_STATEMENTS {
                    prepared.push(
                        client
                            .prepare(sql)
                            .await
                            .map_err(sql_error(self.name(), "preparing the statements"))?,
                    );
                }
                let Ok(
                    [
                        begin,
                        update_account,
                        read_account,
                        update_teller,
                        update_branch,
                        insert_history,
                        end,
                    ],
                ) = <[Statement; 7]>::try_from(prepared)
                else {
                    return Err(WorkloadError::Config {
                        workload: self.name().to_owned(),
                        problem: "not every statement was prepared".to_owned(),
                    });
                };
                Ok(Box::new(TpcbSession {
                    client,
                    scale: self.scale,
                    begin,
                    update_account,
                    read_account,
                    update_teller,
                    update_branch,
                    insert_history,
                    end,
                }) as Box<dyn WorkloadSession>)
            }
        })
    }
}
