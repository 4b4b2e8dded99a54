//! Verification: table checksums and their comparison, the ledger of acknowledged
//! transactions, `pg_amcheck`, and a role's catalog against the live schema.

use serde::{Deserialize, Serialize};
use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{
    Checksums, Ledger, PgBinaries, compare_checksums, table_checksums, validate, validate_schemas,
    verify_ledger,
};
use stormchor_runtime::EffectFailure;

use super::server::ServerInfo;
use super::wal::Point;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::node::{Node, lock};
use crate::value::Slot;

fn rows(checksums: &Checksums) -> i64 {
    checksums.values().map(|c| c.rows).sum()
}

/// The checksum of every table of `public` on the server in `of`, in one snapshot.
///
/// # Example
/// ```
/// use stormchor_kit::effects::TableChecksums;
/// use stormchor_kit::slots::{CHECKSUMS, RESTORED};
/// use stormchor_kit::DbEffect;
///
/// let restored_sums = TableChecksums { of: RESTORED }.into_slot(CHECKSUMS);
/// assert_eq!(format!("{restored_sums:?}"), "TableChecksums { of: restored } => checksums");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct TableChecksums {
    /// The server.
    pub of: Slot<ServerInfo>,
}

impl DbEffect for TableChecksums {
    type Output = Checksums;

    async fn run(&self, node: &Node) -> Result<Checksums, EffectFailure> {
        let server = node.value(self.of)?;
        let client = connect(&server.connection).await?;
        table_checksums(&client, "public").await.map_err(failed)
    }
}

/// Checks that the checksums in `found` equal those of the point in `expected`, as a
/// check of the report with every differing table as evidence; a difference fails
/// the effect.
///
/// # Example
/// ```
/// use stormchor_kit::effects::CompareChecksums;
/// use stormchor_kit::slots::{CHECKSUMS, POINT};
///
/// // One backup restored to each recorded point in turn: compare them in order.
/// let each_point = CompareChecksums { expected: POINT, found: CHECKSUMS, in_order: true };
/// assert!(each_point.in_order);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct CompareChecksums {
    /// The recorded point.
    pub expected: Slot<Point>,
    /// The checksums found.
    pub found: Slot<Checksums>,
    /// Compare the next recorded point of `expected` with the next checksums of
    /// `found`, each in the order they came, instead of the latest of each (one backup
    /// restored to every point in turn).
    pub in_order: bool,
}

impl DbEffect for CompareChecksums {
    type Output = bool;

    async fn run(&self, node: &Node) -> Result<bool, EffectFailure> {
        let (point, found) = if self.in_order {
            let next = |e: crate::ValueError| EffectFailure::permanent(e.to_string());
            (
                node.values()
                    .next_for(self.expected, "compare")
                    .map_err(next)?,
                node.values()
                    .next_for(self.found, "compare")
                    .map_err(next)?,
            )
        } else {
            (node.value(self.expected)?, node.value(self.found)?)
        };
        if point.checksums.is_empty() {
            node.journal().check(
                format!("checksums at point {}", point.index),
                false,
                "the recorded point holds no table: the comparison proves nothing",
                vec!["no table at the recorded point".to_owned()],
            );
            return Err(failed(format!("point {} holds no table", point.index)));
        }
        let differences = compare_checksums(&point.checksums, &found);
        let passed = differences.is_empty();
        node.journal().check(
            format!("checksums at point {}", point.index),
            passed,
            format!(
                "{} tables, {} rows expected; {} tables, {} rows restored; {} differences",
                point.checksums.len(),
                rows(&point.checksums),
                found.len(),
                rows(&found),
                differences.len()
            ),
            differences.iter().map(ToString::to_string).collect(),
        );
        if passed {
            Ok(true)
        } else {
            Err(failed(format!(
                "{} tables differ at point {}",
                differences.len(),
                point.index
            )))
        }
    }
}

/// What the ledger check found, in figures.
///
/// # Example
/// ```
/// use stormchor_kit::effects::verify::LedgerSummary;
///
/// let summary = LedgerSummary { passed: true, acknowledged: 10, found: 10, missing: 0 };
/// assert_eq!(summary.acknowledged, summary.found);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSummary {
    /// Whether the check held.
    pub passed: bool,
    /// Acknowledged transactions checked.
    pub acknowledged: u64,
    /// Of them, found whole.
    pub found: u64,
    /// Of them, missing or partial.
    pub missing: u64,
}

/// Every writer's whole ledger at `node`: the rounds each one sent in `slot`, added up.
pub(crate) fn gathered_ledgers(
    node: &Node,
    slot: Slot<Ledger>,
) -> Result<Vec<Ledger>, EffectFailure> {
    Ok(node
        .values()
        .all_from_each(slot)
        .map_err(failed)?
        .into_iter()
        .filter_map(|(_, rounds)| {
            let mut rounds = rounds.into_iter();
            let mut whole = rounds.next()?;
            rounds.for_each(|round| whole.absorb(round));
            Some(whole)
        })
        .collect())
}

/// Checks every writer's ledger in `ledgers` (the rounds each writer sent, added up) against the server in
/// `on`: every acknowledged transaction whole, none half there, none that must not
/// exist. A check of the report (a failure fails the report, not the effect, so that
/// the checks after it still run).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_choreography::{At, Family};
/// use stormchor_kit::effects::{VerifyLedger, WriteLedger};
/// use stormchor_kit::slots::{LEDGER, PRIMARY};
/// use stormchor_kit::{Carry, DbEffect, Program, project_all};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Worker(u16) }
///
/// // Every worker writes for a round and sends that round; the coordinator adds them up.
/// let workers = Family::indexed("Worker", 2, Role::Worker);
/// let program: Program<Role, Carry> = Program::new()
///     .role(Role::Coordinator)
///     .family(&workers)
///     .ext(At::new(
///         WriteLedger { on: PRIMARY, duration: Duration::from_secs(1) }.into_slot(LEDGER),
///         workers.members().to_vec(),
///     ))
///     .gather(&workers, Role::Coordinator, LEDGER.carry())
///     .ext(At::new(VerifyLedger { on: PRIMARY, ledgers: LEDGER }, [Role::Coordinator]));
/// assert!(project_all(&program).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct VerifyLedger {
    /// The server to check.
    pub on: Slot<ServerInfo>,
    /// The writers' ledgers.
    pub ledgers: Slot<Ledger>,
}

impl DbEffect for VerifyLedger {
    type Output = LedgerSummary;

    async fn run(&self, node: &Node) -> Result<LedgerSummary, EffectFailure> {
        let server = node.value(self.on)?;
        let ledgers = gathered_ledgers(node, self.ledgers)?;
        let client = connect(&server.connection).await?;
        let verdict = verify_ledger(&client, &ledgers).await.map_err(failed)?;
        let journal = node.journal();
        let in_doubt: usize = ledgers.iter().map(|l| l.in_doubt.len()).sum();
        let aborted: usize = ledgers.iter().map(|l| l.aborted.len()).sum();
        journal.figure("acknowledged", verdict.acknowledged);
        journal.figure("found", verdict.found);
        journal.figure("missing", verdict.missing.len() as u64);
        journal.figure("in_doubt", in_doubt as u64);
        journal.figure("aborted", aborted as u64);
        journal.figure(
            "reconnects",
            ledgers.iter().map(|l| l.reconnects).sum::<u64>(),
        );
        let passed = verdict.is_clean() && verdict.acknowledged > 0;
        let mut evidence = verdict.evidence(20);
        if verdict.acknowledged == 0 {
            evidence.push("no transaction was acknowledged: the check proves nothing".to_owned());
        }
        journal.check(
            "every acknowledged transaction is whole, none is half there",
            passed,
            format!(
                "{} acknowledged by {} writers, {} found whole, {} missing, {} half there, {} that \
                 must not exist; in doubt: {} committed, {} absent",
                verdict.acknowledged,
                ledgers.len(),
                verdict.found,
                verdict.missing.len(),
                verdict.partial.len(),
                verdict.phantom.len(),
                verdict.in_doubt_committed,
                verdict.in_doubt_absent
            ),
            evidence,
        );
        Ok(LedgerSummary {
            passed,
            acknowledged: verdict.acknowledged,
            found: verdict.found,
            missing: verdict.missing.len() as u64,
        })
    }
}

/// The client arguments (`--host`, `--port`, `--username`) of a libpq connection
/// string of the `key=value` form.
pub fn client_args(connection: &str) -> Vec<String> {
    connection
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(key, value)| match key {
            "host" => Some(format!("--host={value}")),
            "port" => Some(format!("--port={value}")),
            "user" => Some(format!("--username={value}")),
            _ => None,
        })
        .collect()
}

/// Runs `pg_amcheck` (installing the `amcheck` extension where it is missing) on every
/// database of the server in `on`, tables and indexes, as a check of the report (a
/// failure fails the report, not the effect). The output is whether it held.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Amcheck;
/// use stormchor_kit::slots::PRIMARY;
///
/// assert_eq!(format!("{:?}", Amcheck { on: PRIMARY }), "Amcheck { on: primary }");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Amcheck {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for Amcheck {
    type Output = bool;

    async fn run(&self, node: &Node) -> Result<bool, EffectFailure> {
        amcheck_as_check(node, self.on, "pg_amcheck reports no corruption".to_owned()).await
    }
}

/// [`Amcheck`] right after a crash round, run by the role that crashes its server
/// ([`Crash`](super::Crash)): the check is named after the crash it follows
/// (`pg_amcheck reports no corruption after crash 3`, counting this role's kills), so
/// damage is reported with the round that made it, not only at the end.
///
/// # Example
/// ```
/// use stormchor_kit::effects::AmcheckAfterCrash;
/// use stormchor_kit::slots::PRIMARY;
///
/// let each_round = AmcheckAfterCrash { on: PRIMARY };
/// assert_eq!(each_round.on, PRIMARY);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct AmcheckAfterCrash {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for AmcheckAfterCrash {
    type Output = bool;

    async fn run(&self, node: &Node) -> Result<bool, EffectFailure> {
        let kills = node.journal().counts().get("kills").copied().unwrap_or(0);
        amcheck_as_check(
            node,
            self.on,
            format!("pg_amcheck reports no corruption after crash {kills}"),
        )
        .await
    }
}

/// Runs `pg_amcheck --all` on the server in `on` and records the check `name`.
async fn amcheck_as_check(
    node: &Node,
    on: Slot<ServerInfo>,
    name: String,
) -> Result<bool, EffectFailure> {
    let server = node.value(on)?;
    let mut args = client_args(&server.connection);
    args.extend(["--install-missing".to_owned(), "--all".to_owned()]);
    let binaries = PgBinaries::locate().map_err(failed)?;
    let result = binaries.run_client("pg_amcheck", &args).await;
    node.journal().check(
        name,
        result.is_ok(),
        match &result {
            Ok(_) => "tables and indexes of every database checked".to_owned(),
            Err(_) => "corruption or errors reported".to_owned(),
        },
        result
            .as_ref()
            .err()
            .map(|e| e.to_string().lines().map(str::to_owned).collect())
            .unwrap_or_default(),
    );
    Ok(result.is_ok())
}

/// Checks this role's catalog against the live schema of the server in `on`: every
/// table of the role's share (what it discovered as its own, and what it made) must
/// be exactly as the catalog says. A check of the report; a difference fails the
/// effect.
///
/// # Example
/// ```
/// use stormchor_kit::effects::ValidateCatalog;
/// use stormchor_kit::slots::RESTORED;
///
/// // After the restore, each worker's catalog must match the restored cluster.
/// assert_eq!(format!("{:?}", ValidateCatalog { on: RESTORED }), "ValidateCatalog { on: restored }");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct ValidateCatalog {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for ValidateCatalog {
    type Output = usize;

    async fn run(&self, node: &Node) -> Result<usize, EffectFailure> {
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        let catalog = node.catalog();
        let share = lock(&node.share).clone();
        let divergences: Vec<_> = match &node.options().discover_schemas {
            Some(schemas) => validate_schemas(&client, schemas, catalog).await,
            None => validate(&client, "public", catalog).await,
        }
        .map_err(failed)?
        .into_iter()
        .filter(|d| share.contains(&d.table) || catalog.made_here(&d.table))
        .collect();
        let passed = divergences.is_empty();
        node.journal().check(
            format!("{}'s catalog matches the schema", node.role()),
            passed,
            format!(
                "{} tables in the catalog, {} differences",
                catalog.len(),
                divergences.len()
            ),
            divergences.iter().map(ToString::to_string).collect(),
        );
        if passed {
            Ok(0)
        } else {
            Err(failed(format!(
                "{} differences between {}'s catalog and the schema",
                divergences.len(),
                node.role()
            )))
        }
    }
}
