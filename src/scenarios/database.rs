//! What the database scenarios share: roles, messages, the run's site (servers,
//! backups, catalogs), the extension effects and their handlers, and the runner.
//!
//! All roles of a database scenario run in this process (the in-memory transport),
//! so the process-control effects reach the servers through the shared [`Site`];
//! what one role learns for another (acknowledged transactions, recorded points,
//! checksums) travels in messages.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stormchor_choreography::{Program, to_mermaid};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::postgres::{
    ActionRegistry, BaseBackup, Catalog, Checksums, ClusterOptions, LEDGER_TABLE, Ledger,
    LedgerTarget, PgCluster, PgError, PgTarget, RecoveryTarget, StopMode, WalArchive, WorkLimit,
    WorkerConfig, WorkerReport, amcheck, compare_checksums, connect, create_ledger, discover_into,
    quote_ident, run_worker, table_checksums, validate, verify_ledger, write_ledger,
};
use stormchor_runtime::{
    EffectFailure, ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, run_all,
};
use tokio_postgres::types::PgLsn;

use super::journal::{CheckRecord, Journal, Journaled, register_phase};
use super::{Fault, ScenarioError, ScenarioOptions, ScenarioReport};

/// The roles of the database scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbRole {
    /// Decides, records, verifies.
    Coordinator,
    /// Takes, verifies and restores backups.
    Backup,
    /// A streaming replica, promoted on failover.
    Replica,
    /// Runs load.
    Worker(u16),
}

/// The messages of the database scenarios. A program holds templates; the values are
/// filled in from the sender's state when it sends.
#[derive(Clone, Debug, PartialEq)]
pub enum DbMsg {
    /// Start (or go on with) the next step.
    Go,
    /// A step is done.
    Done,
    /// How many actions a worker ran.
    Actions(u64),
    /// A worker's ledger: its acknowledged, in-doubt and aborted transactions.
    Ledger(Ledger),
    /// A recorded point: its number and WAL position.
    Point(u32, u64),
    /// Checksums of a restored cluster, and the point they were taken at.
    Checksums(u32, Checksums),
}

/// Which server an effect works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The primary (after a failover, the promoted replica).
    Primary,
    /// The restored cluster.
    Restored,
}

/// What every role of a run shares.
pub struct Site {
    /// The run's options.
    pub options: ScenarioOptions,
    /// Phases, checks, figures.
    pub journal: Journal,
    /// The primary.
    pub primary: tokio::sync::Mutex<PgTarget>,
    /// Where writers connect (moves on failover).
    pub writers: LedgerTarget,
    /// The WAL archive, when archiving.
    pub archive: Option<Arc<WalArchive>>,
    /// The base backup, once taken.
    pub backup: tokio::sync::Mutex<Option<BaseBackup>>,
    /// The restored cluster or the replica.
    pub second: tokio::sync::Mutex<Option<PgCluster>>,
    /// The schema catalog of the primary.
    pub catalog: Arc<Catalog>,
    /// The schema catalog of the restored cluster.
    pub second_catalog: Arc<Catalog>,
    /// The action mix.
    pub actions: ActionRegistry,
    /// Where workers' SQL logs go.
    pub logs: tempfile::TempDir,
    /// The stress workers' reports.
    pub stress: Mutex<Vec<WorkerReport>>,
    /// Crashes so far.
    pub crashes: std::sync::atomic::AtomicU32,
}

impl Site {
    /// The connection string of a side.
    async fn connection(&self, side: Side) -> Result<String, EffectFailure> {
        match side {
            Side::Primary => Ok(self.writers.get()),
            Side::Restored => self
                .second
                .lock()
                .await
                .as_ref()
                .map(PgCluster::connection_string)
                .ok_or_else(|| EffectFailure::permanent("there is no restored cluster yet")),
        }
    }

    fn catalog(&self, side: Side) -> Arc<Catalog> {
        match side {
            Side::Primary => self.catalog.clone(),
            Side::Restored => self.second_catalog.clone(),
        }
    }

    fn sql_log_path(&self, role: DbRole) -> PathBuf {
        self.logs.path().join(format!("{role:?}.sql.log"))
    }

    /// The last lines of a role's SQL log.
    pub fn sql_log_tail(&self, role: DbRole, lines: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.sql_log_path(role)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }

    fn fault(&self, fault: Fault) -> bool {
        self.options.fault == Some(fault)
    }
}

/// The data of one role.
pub struct Node {
    /// The run's shared site.
    pub site: Arc<Site>,
    /// This role's ledger (writers).
    pub ledger: Mutex<Ledger>,
    /// The points this role recorded: (WAL position, checksums) (coordinator).
    pub points: Mutex<Vec<(u64, Checksums)>>,
    /// The next recorded point to send (coordinator).
    pub cursor: std::sync::atomic::AtomicU32,
}

impl Journaled for Node {
    fn journal(&self) -> &Journal {
        &self.site.journal
    }
}

type State = RoleState<DbRole, DbMsg, Node>;

impl RoleLogic<DbRole, DbMsg> for Node {
    fn message(state: &State, _to: DbRole, template: &DbMsg) -> DbMsg {
        let data = state.data();
        match template {
            DbMsg::Actions(_) => {
                DbMsg::Actions(state.result::<StressLoad, u64>().map_or(0, |n| *n))
            }
            DbMsg::Ledger(_) => DbMsg::Ledger(lock(&data.ledger).clone()),
            // Points go out in the order they were recorded, each once.
            DbMsg::Point(..) => {
                let points = lock(&data.points);
                let index = data
                    .cursor
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                DbMsg::Point(index, points.get(index as usize).map_or(0, |p| p.0))
            }
            DbMsg::Checksums(..) => state
                .result::<Restore, (u32, Checksums)>()
                .map_or(DbMsg::Checksums(0, Checksums::new()), |r| {
                    DbMsg::Checksums(r.0, r.1.clone())
                }),
            other => other.clone(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn failed(error: impl std::fmt::Display) -> EffectFailure {
    EffectFailure::permanent(error.to_string())
}

// ---------------------------------------------------------------------------------
// The effects. Their roles are given with `@` in the choreographies.
// ---------------------------------------------------------------------------------

/// Creates the ledger table and reads the existing schema into the catalog.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct PrepareSchema;

/// Runs the action mix on a side for a while; the result is the number of actions.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StressLoad {
    /// Where.
    pub side: Side,
    /// How long.
    pub duration: Duration,
}

/// Writes ledger transactions to the primary for a while, reconnecting through crashes.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct WriteLedger {
    /// How long.
    pub duration: Duration,
}

/// SIGKILLs the primary at a seeded moment within `within`, then (if `restart`)
/// starts it again. The n-th crash of a run picks its moment from the seed and n.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Crash {
    /// The window the moment falls in.
    pub within: Duration,
    /// Whether to start the server again (crash recovery) or leave it dead (failover).
    pub restart: bool,
}

/// Checks every worker's ledger (as the workers reported it) against the primary, then
/// runs `pg_amcheck`.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct VerifyLedger;

/// Takes a base backup of the primary.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct TakeBackup;

/// Checks the base backup with `pg_verifybackup`.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct VerifyBackup;

/// With the load stopped, records a point: forces a WAL switch, reads the WAL position
/// and the checksums of every table.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RecordPoint;

/// Restores (a copy of) the base backup to the point the coordinator last sent,
/// replaying archived WAL, and reads the restored cluster's checksums; the result is
/// `(point, checksums)`. With `keep`, the restored cluster stays up as the second side.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Restore {
    /// Keep the restored cluster running for later steps.
    pub keep: bool,
}

/// Compares the checksums the backup node sent with the ones recorded at that point.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct CompareChecksums;

/// Reads a side's schema into its catalog.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Discover {
    /// Which side.
    pub side: Side,
}

/// Checks a side's catalog against its live schema.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Validate {
    /// Which side.
    pub side: Side,
}

/// Starts a synchronous streaming replica of the primary.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StartReplica;

/// Promotes the replica and points every writer at it.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Promote;

/// Where a configured fault is injected, if it is this one.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct FaultPoint(pub Fault);

// ---------------------------------------------------------------------------------
// Handlers.
// ---------------------------------------------------------------------------------

/// The registry of every database-scenario effect.
pub fn registry() -> Result<ExtensionRegistry<State>, ScenarioError> {
    build_registry().map_err(|e| ScenarioError::Setup {
        scenario: "database".to_owned(),
        message: e.to_string(),
    })
}

fn build_registry() -> Result<ExtensionRegistry<State>, stormchor_runtime::RegistryError> {
    let mut registry = ExtensionRegistry::new();
    register_phase(&mut registry)?;
    registry.register_unit::<PrepareSchema, _>(|state: &State, _| {
        Box::pin(async move {
            let site = &state.data().site;
            let prepare = async {
                let client = connect(&site.writers.get()).await.map_err(failed)?;
                create_ledger(&client).await.map_err(failed)?;
                discover_into(&client, "public", &site.catalog)
                    .await
                    .map_err(failed)
            };
            let tables = tokio::time::timeout(SETUP_BOUND, prepare)
                .await
                .map_err(|_| failed(format!("preparing the schema took over {SETUP_BOUND:?}")))??;
            site.journal.figure("tables_at_start", tables as u64);
            Ok(())
        })
    })?;
    registry.register::<StressLoad, u64, _>(|state: &State, effect| {
        Box::pin(async move {
            let site = &state.data().site;
            let role = state.role();
            let mut config = WorkerConfig::new(
                format!("{role:?}"),
                site.options.seed,
                site.connection(effect.side).await?,
                WorkLimit::Duration(effect.duration),
            );
            config.stop = site.options.stop.clone();
            config.sql_log = Some(site.sql_log_path(role));
            let report = run_worker(config, site.actions.clone(), site.catalog(effect.side))
                .await
                .map_err(failed)?;
            let runs = report.runs();
            site.journal.count("stress_actions", runs);
            lock(&site.stress).push(report);
            Ok(runs)
        })
    })?;
    registry.register_unit::<WriteLedger, _>(|state: &State, effect| {
        Box::pin(async move {
            let data = state.data();
            let mut ledger = std::mem::take(&mut *lock(&data.ledger));
            if ledger.rows_per_tx == 0 {
                let DbRole::Worker(k) = state.role() else {
                    return Err(EffectFailure::permanent("only workers write the ledger"));
                };
                ledger = Ledger::new(i32::from(k), 3);
            }
            write_ledger(
                &mut ledger,
                &data.site.writers,
                effect.duration,
                &data.site.options.stop,
            )
            .await;
            *lock(&data.ledger) = ledger;
            Ok(())
        })
    })?;
    registry.register_unit::<Crash, _>(|state: &State, effect| {
        Box::pin(async move {
            let site = &state.data().site;
            let round = site
                .crashes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let delay = kill_delay(site.options.seed, round, effect.within);
            tokio::time::sleep(delay).await;
            let mut primary = site.primary.lock().await;
            let cluster = primary.cluster("SIGKILL the server").map_err(failed)?;
            cluster.kill().await.map_err(failed)?;
            site.journal.count("kills", 1);
            site.journal
                .figure(&format!("kill_{round}_at_ms"), delay.as_millis() as u64);
            if effect.restart {
                cluster.restart().await.map_err(failed)?;
            }
            Ok(())
        })
    })?;
    registry.register_unit::<VerifyLedger, _>(|state: &State, _| {
        Box::pin(async move { verify_ledgers(state).await })
    })?;
    registry.register_unit::<TakeBackup, _>(|state: &State, _| {
        Box::pin(async move {
            let site = &state.data().site;
            let backup = {
                let mut primary = site.primary.lock().await;
                let cluster = primary.cluster("take a base backup").map_err(failed)?;
                cluster.base_backup().await.map_err(failed)?
            };
            *site.backup.lock().await = Some(backup);
            site.journal.count("backups", 1);
            Ok(())
        })
    })?;
    registry.register_unit::<VerifyBackup, _>(|state: &State, _| {
        Box::pin(async move {
            let site = &state.data().site;
            let guard = site.backup.lock().await;
            let backup = guard
                .as_ref()
                .ok_or_else(|| EffectFailure::permanent("no base backup was taken"))?;
            let outcome = backup.verify().await;
            let passed = outcome.is_ok();
            site.journal.check(CheckRecord {
                name: "pg_verifybackup".to_owned(),
                role: format!("{:?}", state.role()),
                passed,
                summary: match &outcome {
                    Ok(text) => text.trim().to_owned(),
                    Err(_) => "the backup does not match its manifest".to_owned(),
                },
                evidence: outcome
                    .err()
                    .map(|e| vec![e.to_string()])
                    .unwrap_or_default(),
            });
            if passed {
                Ok(())
            } else {
                Err(EffectFailure::permanent("pg_verifybackup failed"))
            }
        })
    })?;
    registry.register_unit::<RecordPoint, _>(|state: &State, _| {
        Box::pin(async move {
            let data = state.data();
            let site = &data.site;
            let lsn = {
                let mut primary = site.primary.lock().await;
                let cluster = primary.cluster("record a WAL position").map_err(failed)?;
                let lsn = cluster.current_lsn().await.map_err(failed)?;
                if site.archive.is_some() {
                    cluster
                        .archive_current_wal(Duration::from_secs(60))
                        .await
                        .map_err(failed)?;
                }
                lsn
            };
            let client = connect(&site.writers.get()).await.map_err(failed)?;
            let checksums = table_checksums(&client, "public").await.map_err(failed)?;
            let mut points = lock(&data.points);
            site.journal.figure(
                &format!("point_{}", points.len()),
                format!(
                    "{lsn} ({} tables, {} rows)",
                    checksums.len(),
                    rows(&checksums)
                ),
            );
            points.push((u64::from(lsn), checksums));
            Ok(())
        })
    })?;
    registry.register::<Restore, (u32, Checksums), _>(|state: &State, effect| {
        Box::pin(async move { restore(state, effect.keep).await })
    })?;
    registry.register_unit::<CompareChecksums, _>(|state: &State, _| {
        Box::pin(async move {
            let data = state.data();
            let Some(DbMsg::Checksums(point, found)) = state.latest_from(&DbRole::Backup) else {
                return Err(EffectFailure::permanent(
                    "the backup node sent no checksums",
                ));
            };
            let expected = lock(&data.points)
                .get(point as usize)
                .map(|p| p.1.clone())
                .ok_or_else(|| failed(format!("no point {point} was recorded")))?;
            let differences = compare_checksums(&expected, &found);
            let passed = differences.is_empty();
            data.site.journal.check(CheckRecord {
                name: format!("checksums at point {point}"),
                role: format!("{:?}", state.role()),
                passed,
                summary: format!(
                    "{} tables, {} rows expected; {} tables, {} rows restored; {} differences",
                    expected.len(),
                    rows(&expected),
                    found.len(),
                    rows(&found),
                    differences.len()
                ),
                evidence: differences.iter().map(ToString::to_string).collect(),
            });
            if passed {
                Ok(())
            } else {
                Err(failed(format!(
                    "{} tables differ at point {point}",
                    differences.len()
                )))
            }
        })
    })?;
    registry.register_unit::<Discover, _>(|state: &State, effect| {
        Box::pin(async move {
            let site = &state.data().site;
            let client = connect(&site.connection(effect.side).await?)
                .await
                .map_err(failed)?;
            let tables = discover_into(&client, "public", &site.catalog(effect.side))
                .await
                .map_err(failed)?;
            site.journal.figure(
                &format!("tables_discovered_{:?}", effect.side).to_lowercase(),
                tables as u64,
            );
            Ok(())
        })
    })?;
    registry.register_unit::<Validate, _>(|state: &State, effect| {
        Box::pin(async move {
            let site = &state.data().site;
            let client = connect(&site.connection(effect.side).await?)
                .await
                .map_err(failed)?;
            let catalog = site.catalog(effect.side);
            let divergences = validate(&client, "public", &catalog)
                .await
                .map_err(failed)?;
            let passed = divergences.is_empty();
            site.journal.check(CheckRecord {
                name: format!("catalog matches the {:?} schema", effect.side).to_lowercase(),
                role: format!("{:?}", state.role()),
                passed,
                summary: format!(
                    "{} tables in the catalog, {} differences",
                    catalog.len(),
                    divergences.len()
                ),
                evidence: divergences.iter().map(ToString::to_string).collect(),
            });
            if passed {
                Ok(())
            } else {
                Err(failed(format!(
                    "{} differences between the catalog and the schema",
                    divergences.len()
                )))
            }
        })
    })?;
    registry.register_unit::<StartReplica, _>(|state: &State, _| {
        Box::pin(async move {
            let site = &state.data().site;
            let backup = {
                let mut primary = site.primary.lock().await;
                let cluster = primary.cluster("start a replica").map_err(failed)?;
                cluster.replica_backup().await.map_err(failed)?
            };
            let replica = backup
                .start(ClusterOptions::default())
                .await
                .map_err(failed)?;
            *site.second.lock().await = Some(replica);
            Ok(())
        })
    })?;
    registry.register_unit::<Promote, _>(|state: &State, _| {
        Box::pin(async move {
            let site = &state.data().site;
            let guard = site.second.lock().await;
            let replica = guard
                .as_ref()
                .ok_or_else(|| EffectFailure::permanent("there is no replica to promote"))?;
            replica.promote().await.map_err(failed)?;
            site.writers.set(replica.connection_string());
            site.journal.count("promotions", 1);
            Ok(())
        })
    })?;
    registry.register_unit::<FaultPoint, _>(|state: &State, effect| {
        Box::pin(async move { inject(state, effect.0).await })
    })?;
    Ok(registry)
}

/// When the `crash`-th crash of a run with `seed` strikes within its window: between
/// 20% and 80% of it, so that there is load before and after; the same for the same
/// seed and crash.
pub fn kill_delay(seed: u64, crash: u32, window: Duration) -> Duration {
    let mut rng =
        SmallRng::seed_from_u64(seed ^ (u64::from(crash) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    window.mul_f64(rng.random_range(0.2..0.8))
}

/// How long preparing the schema may take (a synchronous primary without its standby
/// would wait forever).
const SETUP_BOUND: Duration = Duration::from_secs(60);

fn rows(checksums: &Checksums) -> i64 {
    checksums.values().map(|c| c.rows).sum()
}

async fn verify_ledgers(state: &State) -> Result<(), EffectFailure> {
    let site = &state.data().site;
    let ledgers: Vec<Ledger> = (0..site.options.workers)
        .filter_map(|k| match state.latest_from(&DbRole::Worker(k)) {
            Some(DbMsg::Ledger(ledger)) => Some(ledger),
            _ => None,
        })
        .collect();
    let client = connect(&site.writers.get()).await.map_err(failed)?;
    let verdict = verify_ledger(&client, &ledgers).await.map_err(failed)?;
    let in_doubt: usize = ledgers.iter().map(|l| l.in_doubt.len()).sum();
    let aborted: usize = ledgers.iter().map(|l| l.aborted.len()).sum();
    let reconnects: u64 = ledgers.iter().map(|l| l.reconnects).sum();
    site.journal.figure("acknowledged", verdict.acknowledged);
    site.journal.figure("found", verdict.found);
    site.journal.figure("missing", verdict.missing.len() as u64);
    site.journal.figure("in_doubt", in_doubt as u64);
    site.journal.figure("aborted", aborted as u64);
    site.journal.figure("reconnects", reconnects);
    let passed = verdict.is_clean() && verdict.acknowledged > 0;
    let mut evidence = verdict.evidence(20);
    if verdict.acknowledged == 0 {
        evidence.push("no transaction was acknowledged: the check proves nothing".to_owned());
    }
    site.journal.check(CheckRecord {
        name: "every acknowledged transaction is whole, none is half there".to_owned(),
        role: format!("{:?}", state.role()),
        passed,
        summary: format!(
            "{} acknowledged, {} found whole, {} missing, {} half there, {} that must not exist; \
             in doubt: {} committed, {} absent",
            verdict.acknowledged,
            verdict.found,
            verdict.missing.len(),
            verdict.partial.len(),
            verdict.phantom.len(),
            verdict.in_doubt_committed,
            verdict.in_doubt_absent
        ),
        evidence,
    });
    // pg_amcheck runs on the server the writers use now (the promoted replica after a
    // failover); an external server gets none (no programs of ours run there).
    let current = site.writers.get();
    let amcheck_result = {
        let mut primary = site.primary.lock().await;
        match primary.cluster("run pg_amcheck") {
            Ok(cluster) if cluster.connection_string() == current => Some(amcheck(cluster).await),
            _ => match site.second.lock().await.as_ref() {
                Some(second) if second.connection_string() == current => {
                    Some(amcheck(second).await)
                }
                _ => None,
            },
        }
    };
    if let Some(result) = &amcheck_result {
        site.journal.check(CheckRecord {
            name: "pg_amcheck reports no corruption".to_owned(),
            role: format!("{:?}", state.role()),
            passed: result.is_ok(),
            summary: match result {
                Ok(_) => "tables and indexes of every database checked".to_owned(),
                Err(_) => "corruption or errors reported".to_owned(),
            },
            evidence: result
                .as_ref()
                .err()
                .map(|e| e.to_string().lines().map(str::to_owned).collect())
                .unwrap_or_default(),
        });
    }
    match (passed, amcheck_result) {
        (true, None | Some(Ok(_))) => Ok(()),
        (false, _) => Err(failed(format!(
            "the ledger check failed: {}",
            verdict.evidence(3).join("; ")
        ))),
        (true, Some(Err(error))) => Err(failed(error)),
    }
}

async fn restore(state: &State, keep: bool) -> Result<(u32, Checksums), EffectFailure> {
    let site = &state.data().site;
    let Some(DbMsg::Point(point, lsn)) = state.latest_from(&DbRole::Coordinator) else {
        return Err(EffectFailure::permanent(
            "the coordinator sent no point to restore to",
        ));
    };
    let copy = {
        let guard = site.backup.lock().await;
        let backup = guard
            .as_ref()
            .ok_or_else(|| EffectFailure::permanent("no base backup was taken"))?;
        backup.duplicate().await.map_err(failed)?
    };
    let archive = site
        .archive
        .as_ref()
        .ok_or_else(|| EffectFailure::permanent("the primary does not archive its WAL"))?;
    let mut restored = if site.fault(Fault::SkipWalReplay) {
        // The fault: start the backup as it is, without replaying to the point.
        copy.start(ClusterOptions::default())
            .await
            .map_err(failed)?
    } else {
        copy.restore_to(
            RecoveryTarget::Lsn(PgLsn::from(lsn)),
            archive,
            ClusterOptions::default(),
        )
        .await
        .map_err(failed)?
    };
    if site.fault(Fault::CorruptRestoredTable) {
        corrupt_largest_table(&mut restored).await?;
    }
    let client = connect(&restored.connection_string())
        .await
        .map_err(failed)?;
    let checksums = table_checksums(&client, "public").await.map_err(failed)?;
    drop(client);
    site.journal.count("restores", 1);
    if keep {
        *site.second.lock().await = Some(restored);
    } else {
        restored.stop(StopMode::Fast).await.map_err(failed)?;
        // Removing its directory is blocking file-system work: off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(restored)).await;
    }
    Ok((point, checksums))
}

/// The fault: empties the data file of the restored cluster's largest table that holds
/// rows while the server is down, as a lost or zeroed file would.
async fn corrupt_largest_table(cluster: &mut PgCluster) -> Result<(), EffectFailure> {
    let client = connect(&cluster.connection_string())
        .await
        .map_err(failed)?;
    let candidates = client
        .query(
            "SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' \
             ORDER BY pg_relation_size(c.oid) DESC",
            &[],
        )
        .await
        .map_err(failed)?;
    // The largest table that holds a row: emptying an empty one would change nothing.
    let mut victim = None;
    for row in candidates {
        let (table, file): (String, String) = (row.get(0), row.get(1));
        let holds_rows: bool = client
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", quote_ident(&table)),
                &[],
            )
            .await
            .map_err(failed)?
            .get(0);
        if holds_rows {
            victim = Some((table, file));
            break;
        }
    }
    let (table, file) = victim
        .ok_or_else(|| EffectFailure::permanent("the restored cluster has no row to corrupt"))?;
    drop(client);
    cluster.stop(StopMode::Fast).await.map_err(failed)?;
    let path = cluster.data_dir().join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(0))
        .map_err(|e| failed(format!("cannot empty {}: {e}", path.display())))?;
    cluster.restart().await.map_err(failed)?;
    println!("fault injected: emptied the file of table {table} on the restored cluster");
    Ok(())
}

async fn inject(state: &State, fault: Fault) -> Result<(), EffectFailure> {
    let site = &state.data().site;
    if !site.fault(fault) {
        return Ok(());
    }
    let client = connect(&site.writers.get()).await.map_err(failed)?;
    match fault {
        Fault::DeleteAcknowledgedRow => {
            // One row of an acknowledged transaction of the first worker that has one.
            let victim = (0..site.options.workers).find_map(|k| {
                match state.latest_from(&DbRole::Worker(k)) {
                    Some(DbMsg::Ledger(ledger)) => {
                        ledger.acknowledged.first().map(|tx| (ledger.worker, *tx))
                    }
                    _ => None,
                }
            });
            let Some((worker, tx)) = victim else {
                return Err(EffectFailure::permanent(
                    "fault: no acknowledged transaction to delete a row of",
                ));
            };
            client
                .execute(
                    &format!(
                        "DELETE FROM {LEDGER_TABLE} WHERE worker = $1 AND tx = $2 AND item = 0"
                    ),
                    &[&worker, &tx],
                )
                .await
                .map_err(failed)?;
            println!(
                "fault injected: deleted row 0 of worker {worker}'s acknowledged transaction {tx}"
            );
        }
        Fault::DropTableBehindCatalog => {
            let table = site
                .catalog
                .snapshot()
                .values()
                .map(|t| t.name.clone())
                .find(|name| name != LEDGER_TABLE)
                .ok_or_else(|| EffectFailure::permanent("fault: no table to drop"))?;
            client
                .batch_execute(&format!("DROP TABLE {} CASCADE", quote_ident(&table)))
                .await
                .map_err(failed)?;
            println!("fault injected: dropped table {table} behind the catalog's back");
        }
        Fault::CorruptLedgerIndex => {
            let file: String = client
                .query_one(
                    &format!("SELECT pg_relation_filepath('{LEDGER_TABLE}_pkey')"),
                    &[],
                )
                .await
                .map_err(failed)?
                .get(0);
            drop(client);
            let mut primary = site.primary.lock().await;
            let cluster = primary.cluster("corrupt an index file").map_err(failed)?;
            cluster.stop(StopMode::Fast).await.map_err(failed)?;
            let path = cluster.data_dir().join(&file);
            overwrite_line_pointers(&path)
                .map_err(|e| failed(format!("cannot corrupt {}: {e}", path.display())))?;
            cluster.restart().await.map_err(failed)?;
            println!(
                "fault injected: overwrote the line pointers of a page of {LEDGER_TABLE}_pkey"
            );
        }
        // Injected where the restore or the isolation level is decided.
        Fault::CorruptRestoredTable | Fault::SkipWalReplay | Fault::WeakerIsolation => {}
    }
    Ok(())
}

/// Overwrites the line pointers of the last page of a relation file (past the 24-byte
/// page header, which stays valid so that the damage is found by checking, not by a
/// read error).
fn overwrite_line_pointers(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    const PAGE: u64 = 8192;
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    let pages = file.metadata()?.len() / PAGE;
    if pages < 2 {
        return Err(std::io::Error::other(
            "the index has no page besides its metapage",
        ));
    }
    file.seek(SeekFrom::Start((pages - 1) * PAGE + 24))?;
    file.write_all(&[0xA5; 64])?;
    file.sync_all()
}

/// How a database scenario starts its primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimarySetup {
    /// A throwaway cluster, or the target when one is given.
    Plain,
    /// A throwaway cluster whose processes the scenario controls (the target is refused).
    Controlled,
    /// A throwaway cluster that archives its WAL (the target is refused).
    Archiving,
    /// A throwaway cluster that waits for a synchronous standby (the target is refused).
    Synchronous,
}

/// Sets up the site, runs `program` with every role in this process, and makes the
/// report.
pub async fn run_database(
    name: &str,
    program: Program<DbRole, DbMsg>,
    options: ScenarioOptions,
    setup: PrimarySetup,
    before: impl AsyncFnOnce(&Site) -> Result<(), String>,
) -> Result<ScenarioReport, ScenarioError> {
    let fail = |message: String| ScenarioError::Setup {
        scenario: name.to_owned(),
        message,
    };
    super::check_sound(name, &program)?;
    let archive = match setup {
        PrimarySetup::Archiving => Some(WalArchive::new().map_err(|e| fail(e.to_string()))?),
        _ => None,
    };
    let primary = match (&options.target, setup) {
        (Some(target), PrimarySetup::Plain) => PgTarget::External(target.clone()),
        (Some(target), _) => {
            return Err(fail(
                PgError::NoProcessControl {
                    operation: format!("run the {name} scenario"),
                    target: target.clone(),
                }
                .to_string(),
            ));
        }
        (None, _) => {
            let mut settings = Vec::new();
            if setup == PrimarySetup::Synchronous {
                settings.push(("synchronous_standby_names".to_owned(), "*".to_owned()));
            }
            let cluster = PgCluster::start(ClusterOptions {
                archive: archive.clone(),
                settings,
                ..ClusterOptions::default()
            })
            .await
            .map_err(|e| fail(e.to_string()))?;
            PgTarget::Throwaway(cluster)
        }
    };
    let site = Arc::new(Site {
        writers: LedgerTarget::new(primary.connection_string()),
        primary: tokio::sync::Mutex::new(primary),
        archive,
        backup: tokio::sync::Mutex::new(None),
        second: tokio::sync::Mutex::new(None),
        catalog: Arc::new(Catalog::new()),
        second_catalog: Arc::new(Catalog::new()),
        actions: ActionRegistry::default_actions(),
        logs: tempfile::tempdir()
            .map_err(|e| fail(format!("cannot create a log directory: {e}")))?,
        stress: Mutex::new(Vec::new()),
        crashes: std::sync::atomic::AtomicU32::new(0),
        journal: Journal::new(),
        options: options.clone(),
    });
    before(&site).await.map_err(fail)?;
    let registry = Arc::new(registry()?);
    // Generous: every wait in the effects is bounded on its own; this catches the rest.
    let deadline = options.duration * (options.rounds + 4) * 4 + Duration::from_secs(600);
    let run = run_all(
        &program,
        |_| {
            RoleSetup::with_registry(
                Node {
                    site: site.clone(),
                    ledger: Mutex::new(Ledger::default()),
                    points: Mutex::new(Vec::new()),
                    cursor: std::sync::atomic::AtomicU32::new(0),
                },
                registry.clone(),
            )
        },
        RunConfig::default().with_deadline(deadline),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    let report = site
        .journal
        .report(name, options.seed, &run, to_mermaid(&program), |role| {
            site.sql_log_tail(*role, 20)
        });
    // The servers stop before the report is returned, off the async threads (stopping
    // a cluster waits for its processes to exit).
    drop(run);
    let _ = tokio::task::spawn_blocking(move || drop(site)).await;
    Ok(report)
}

/// `workers` for a family size, at least one.
pub fn workers(options: &ScenarioOptions) -> u16 {
    options.workers.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_moments_replay_with_the_seed_and_stay_inside_the_window() {
        let window = Duration::from_secs(10);
        let moments = |seed| {
            (0..20)
                .map(|n| kill_delay(seed, n, window))
                .collect::<Vec<_>>()
        };
        assert_eq!(moments(7), moments(7));
        assert_ne!(moments(7), moments(8));
        let all = moments(7);
        assert!(
            all.iter()
                .all(|d| *d >= window.mul_f64(0.2) && *d < window.mul_f64(0.8))
        );
        assert!(
            all.windows(2).any(|w| w[0] != w[1]),
            "each crash gets its own moment"
        );
    }
}
