//! Base backups: take one, check it with `pg_verifybackup`, restore it to a recovery
//! target (replaying archived WAL), and remove restored clusters.

use std::path::Path;

use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{
    BackupInProgress, BaseBackup, ClusterOptions, PgCluster, RecoveryTarget, StopMode, quote_ident,
};
use stormchor_runtime::{EffectFailure, StartSignal};
use tokio_postgres::types::PgLsn;

use super::server::ServerInfo;
use super::wal::{Goal, RecoveryGoal};
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::journal::EventKind;
use crate::node::{Node, end_cluster, remove_backup};
use crate::scenario::Fault;
use crate::value::Slot;

/// Takes a base backup (`pg_basebackup`, WAL streamed) of the server in slot `of`;
/// this role keeps it (one at a time: a new backup replaces the last).
///
/// # Example
/// ```
/// use stormchor_choreography::At;
/// use stormchor_kit::effects::{StartServer, TakeBackup, VerifyBackup};
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::{Carry, DbEffect, Program, project_all};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Primary, Backup }
/// use Role::*;
///
/// // The primary's node starts the server and tells the backup node where it is.
/// let program: Program<Role, Carry> = Program::new()
///     .with_roles([Primary, Backup])
///     .ext(At::new(StartServer::throwaway().archiving().into_slot(PRIMARY), [Primary]))
///     .send(Primary, Backup, PRIMARY.carry())
///     .ext(At::new(TakeBackup { of: PRIMARY }, [Backup]))
///     .ext(At::new(VerifyBackup { tolerate: false }, [Backup]));
/// assert!(project_all(&program).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct TakeBackup {
    /// The server to back up.
    pub of: Slot<ServerInfo>,
}

impl DbEffect for TakeBackup {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let server = node.value(self.of)?;
        node.journal().event(
            EventKind::BackupStart,
            format!("pg_basebackup of {}'s server", server.owner),
        );
        let backup = BaseBackup::take(&server.connection, false, None)
            .await
            .map_err(failed)?;
        let old = node.backup.lock().await.replace(backup);
        if let Some(old) = old {
            remove_backup(node, old).await;
        }
        node.journal().count("backups", 1);
        node.journal()
            .event(EventKind::BackupEnd, "the base backup completed");
        Ok(())
    }
}

/// Checks this role's base backup against its manifest with `pg_verifybackup`, as a
/// check of the report; the output is whether it held (a failing check also fails
/// the effect unless `tolerate` is set, for scenarios that expect a broken backup).
///
/// # Example
/// ```
/// use stormchor_kit::effects::VerifyBackup;
///
/// // A scenario that breaks the backup on purpose records the failed check and goes on.
/// let expecting_a_broken_backup = VerifyBackup { tolerate: true };
/// assert_eq!(format!("{expecting_a_broken_backup:?}"), "VerifyBackup { tolerate: true }");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct VerifyBackup {
    /// Record a failure as a check only, without failing the effect.
    pub tolerate: bool,
}

impl DbEffect for VerifyBackup {
    type Output = bool;

    async fn run(&self, node: &Node) -> Result<bool, EffectFailure> {
        let guard = node.backup.lock().await;
        let backup = guard.as_ref().ok_or_else(|| {
            EffectFailure::permanent(format!("{} took no base backup", node.role()))
        })?;
        let outcome = backup.verify().await;
        let passed = outcome.is_ok();
        node.journal().check(
            "pg_verifybackup",
            passed,
            match &outcome {
                Ok(text) => text.trim().to_owned(),
                Err(_) => "the backup does not match its manifest".to_owned(),
            },
            outcome
                .err()
                .map(|e| vec![e.to_string()])
                .unwrap_or_default(),
        );
        if passed || self.tolerate {
            Ok(passed)
        } else {
            Err(EffectFailure::permanent("pg_verifybackup failed"))
        }
    }
}

/// Where a restore stops.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Goal, RecoveryGoal, RestoreTo};
///
/// let to_the_end_of_the_backup = RestoreTo::BackupEnd;
/// let to_a_restore_point = RestoreTo::Goal(Goal::Fixed(RecoveryGoal::Name("before_drop".into())));
/// assert_ne!(to_the_end_of_the_backup, to_a_restore_point);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum RestoreTo {
    /// At a goal: fixed, or the value of a slot.
    Goal(Goal),
    /// The end of the backup, without replaying archived WAL.
    BackupEnd,
}

/// Restores (a copy of) this role's base backup as a new cluster named `name`,
/// replaying the WAL archived by the server in slot `from` up to `to`, and promotes
/// it. This role owns the restored cluster (a restore under a name already in use
/// replaces that cluster). The output is where it is.
///
/// Faults: `skip-wal-replay` starts the backup without replaying to the target;
/// `corrupt-restored-table` empties the file of its largest table holding rows.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Goal, Restore, RestoreTo};
/// use stormchor_kit::slots::{POINT, PRIMARY, RESTORED};
/// use stormchor_kit::DbEffect;
///
/// // Replay the primary's archived WAL up to the point the coordinator recorded and sent.
/// let restore = Restore { from: PRIMARY, to: RestoreTo::Goal(Goal::AtPoint(POINT)), name: "restored" }
///     .into_slot(RESTORED);
/// assert_eq!(restore.effect.name, "restored");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Restore {
    /// The server whose archive holds the WAL.
    pub from: Slot<ServerInfo>,
    /// Where recovery stops.
    pub to: RestoreTo,
    /// The restored cluster's name among this role's clusters.
    pub name: &'static str,
}

impl DbEffect for Restore {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let copy = {
            let guard = node.backup.lock().await;
            let backup = guard.as_ref().ok_or_else(|| {
                EffectFailure::permanent(format!("{} took no base backup", node.role()))
            })?;
            backup.duplicate().await.map_err(failed)?
        };
        let skip = node.injects(Fault::SkipWalReplay);
        let mut restored = match (&self.to, skip) {
            (RestoreTo::BackupEnd, _) | (_, true) => copy
                .start(ClusterOptions::default())
                .await
                .map_err(failed)?,
            (RestoreTo::Goal(goal), false) => {
                let goal = goal.resolve(node)?;
                let primary = node.value(self.from)?;
                let archive_dir = primary.archive.ok_or_else(|| {
                    EffectFailure::permanent(format!(
                        "{} does not archive its WAL: nothing to replay",
                        primary.owner
                    ))
                })?;
                copy.restore_to(
                    recovery_target(&goal)?,
                    &archive_dir,
                    ClusterOptions::default(),
                )
                .await
                .map_err(failed)?
            }
        };
        if node.injects(Fault::CorruptRestoredTable) {
            corrupt_largest_table(&mut restored).await?;
        }
        let info = ServerInfo::controlled(node.role(), &restored);
        let old = node
            .restored
            .lock()
            .await
            .insert(self.name.to_owned(), restored);
        if let Some(old) = old {
            end_cluster(old).await;
        }
        node.journal().count("restores", 1);
        node.journal().event(
            EventKind::Restore,
            format!("restored as `{}` ({:?})", self.name, self.to),
        );
        Ok(info)
    }
}

fn recovery_target(goal: &RecoveryGoal) -> Result<RecoveryTarget, EffectFailure> {
    Ok(match goal {
        RecoveryGoal::Lsn(lsn) => RecoveryTarget::Lsn(PgLsn::from(*lsn)),
        RecoveryGoal::Time(time) => RecoveryTarget::Time(time.clone()),
        RecoveryGoal::Name(name) => RecoveryTarget::Name(name.clone()),
        RecoveryGoal::Xid(xid) => RecoveryTarget::Xid(xid.clone()),
        RecoveryGoal::Immediate => RecoveryTarget::Immediate,
    })
}

/// Stops and removes the restored cluster `name` of this role.
///
/// # Example
/// ```
/// use stormchor_kit::effects::RemoveRestored;
///
/// // Free the disk of one restored cluster before restoring the next one.
/// let remove = RemoveRestored { name: "restored" };
/// assert_eq!(remove.name, "restored");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RemoveRestored {
    /// The cluster's name.
    pub name: &'static str,
}

impl DbEffect for RemoveRestored {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let cluster = node.restored.lock().await.remove(self.name);
        if let Some(mut cluster) = cluster {
            cluster.stop(StopMode::Fast).await.map_err(failed)?;
            cluster.shutdown().await.map_err(failed)?;
        }
        Ok(())
    }
}

/// The fault: empties the data file of the restored cluster's largest table that holds
/// rows while the server is down, as a lost or zeroed file would.
async fn corrupt_largest_table(cluster: &mut PgCluster) -> Result<(), EffectFailure> {
    let client = connect(&cluster.connection_string()).await?;
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
    truncate(&path).await?;
    cluster.restart().await.map_err(failed)?;
    println!("fault injected: emptied the file of table {table} on the restored cluster");
    Ok(())
}

async fn truncate(path: &Path) -> Result<(), EffectFailure> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .await
        .map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
    file.set_len(0)
        .await
        .map_err(|e| failed(format!("cannot empty {}: {e}", path.display())))
}

/// Starts a base backup of the server in slot `of` in the background
/// (`pg_basebackup`, WAL streamed, at most `max_rate_kb` kB/s of data files when
/// given, whatever it wrote kept if it fails) and returns once the server reports it
/// streaming data files (`pg_stat_progress_basebackup`), at most 60 s later. The role
/// can then tell others that the backup streams (a crash lands during it); end it with
/// [`FinishBackup`]. One backup in the background at a time per role.
///
/// A backup that ends before the server reports it streaming fails the effect: give it
/// a `max_rate_kb` low enough to stream for as long as the scenario needs.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{FinishBackup, StartBackup};
/// use stormchor_kit::slots::PRIMARY;
/// use std::time::Duration;
///
/// let start = StartBackup { of: PRIMARY, max_rate_kb: Some(1024) };
/// let finish = FinishBackup { within: Duration::from_secs(60) };
/// assert_eq!(start.max_rate_kb, Some(1024));
/// assert_eq!(finish.within, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StartBackup {
    /// The server to back up.
    pub of: Slot<ServerInfo>,
    /// `pg_basebackup --max-rate`, in kB/s (32 to 1048576); `None`: unlimited.
    pub max_rate_kb: Option<u32>,
}

/// How long [`StartBackup`] waits for the server to report the backup streaming.
const STREAMING_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

impl DbEffect for StartBackup {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let mut slot = node.backup_in_progress.lock().await;
        if slot.is_some() {
            return Err(EffectFailure::permanent(format!(
                "{} is taking a base backup already: finish it first",
                node.role()
            )));
        }
        *slot = Some(start_streaming(node, self.of, self.max_rate_kb, "StartBackup").await?);
        Ok(())
    }
}

/// Starts `pg_basebackup` of the server in `of` and returns once the server reports
/// it streaming data files (at most [`STREAMING_BOUND`] later).
async fn start_streaming(
    node: &Node,
    of: Slot<ServerInfo>,
    max_rate_kb: Option<u32>,
    effect: &str,
) -> Result<BackupInProgress, EffectFailure> {
    if let Some(rate) = max_rate_kb {
        if !(32..=1_048_576).contains(&rate) {
            return Err(EffectFailure::permanent(format!(
                "{effect} at {}: max_rate_kb {rate} is outside 32..=1048576 (pg_basebackup --max-rate in kB/s)",
                node.role()
            )));
        }
    }
    let server = node.value(of)?;
    let client = connect(&server.connection).await?;
    let began = std::time::Instant::now();
    let mut running = BaseBackup::begin(&server.connection, max_rate_kb, None)
        .await
        .map_err(failed)?;
    node.journal().event(
        EventKind::BackupStart,
        format!(
            "pg_basebackup of {}'s server, in the background",
            server.owner
        ),
    );
    match streaming_or_ended(&client, &mut running, began, &server.owner).await {
        Ok(true) => {}
        Ok(false) => {
            let (backup, outcome) = running.finish(STREAMING_BOUND).await;
            remove_backup(node, backup).await;
            return Err(failed(format!(
                "pg_basebackup of {} ended before the server reported it streaming ({}); \
                 lower max_rate_kb to keep it streaming",
                server.owner,
                match outcome {
                    Ok(()) => "it completed".to_owned(),
                    Err(e) => e.to_string(),
                }
            )));
        }
        Err(error) => {
            if let Err(removing) = running.remove().await {
                eprintln!(
                    "cannot remove {}'s backup in progress: {removing}",
                    node.role()
                );
            }
            return Err(error);
        }
    }
    node.journal().figure(
        "backup_streaming_after_ms",
        began.elapsed().as_millis() as u64,
    );
    Ok(running)
}

/// Polls until the server reports `running` streaming data files (`true`) or
/// `pg_basebackup` ends first (`false`); fails after [`STREAMING_BOUND`] (since
/// `began`), or when the server (of `owner`) cannot say.
async fn streaming_or_ended(
    client: &tokio_postgres::Client,
    running: &mut BackupInProgress,
    began: std::time::Instant,
    owner: &str,
) -> Result<bool, EffectFailure> {
    loop {
        let streaming = client
            .query_opt(
                "SELECT 1 FROM pg_stat_progress_basebackup \
                 WHERE phase = 'streaming database files'",
                &[],
            )
            .await
            .map_err(failed)?
            .is_some();
        if streaming {
            return Ok(true);
        }
        if running.has_ended().map_err(failed)? {
            return Ok(false);
        }
        if began.elapsed() > STREAMING_BOUND {
            return Err(failed(format!(
                "the server of {owner} did not report pg_basebackup streaming within {STREAMING_BOUND:?}"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How a base backup taken in the background ended.
///
/// # Example
/// ```
/// use stormchor_kit::effects::BackupOutcome;
///
/// let outcome = BackupOutcome { completed: false, error: Some("server closed the connection".into()), path: "/tmp/b".into() };
/// assert!(!outcome.completed && outcome.error.is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupOutcome {
    /// Whether `pg_basebackup` completed.
    pub completed: bool,
    /// What it reported when it did not.
    pub error: Option<String>,
    /// The backup's directory (on the backing-up role's host).
    pub path: std::path::PathBuf,
}

/// Waits (at most `within`) until the backup this role started with [`StartBackup`]
/// ends, completed or not, and keeps it (whatever it wrote, when it failed) as this
/// role's base backup, for [`VerifyBackup`] and [`Restore`]. A failed backup does not
/// fail the effect: the output says how it ended.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::{FinishBackup, VerifyBackup};
///
/// // A crash may have broken the backup: look at how it ended, and check what it wrote.
/// let steps = (FinishBackup { within: Duration::from_secs(120) }, VerifyBackup { tolerate: true });
/// assert_eq!(steps.0.within, Duration::from_secs(120));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct FinishBackup {
    /// How long to wait before killing `pg_basebackup`.
    pub within: std::time::Duration,
}

impl DbEffect for FinishBackup {
    type Output = BackupOutcome;

    async fn run(&self, node: &Node) -> Result<BackupOutcome, EffectFailure> {
        let running = node.backup_in_progress.lock().await.take().ok_or_else(|| {
            EffectFailure::permanent(format!(
                "{} started no base backup (StartBackup) to finish",
                node.role()
            ))
        })?;
        Ok(finish_running(node, running, self.within).await)
    }
}

/// Waits (at most `within`) for a running backup to end and keeps it as the role's
/// base backup; how it ended.
async fn finish_running(
    node: &Node,
    running: BackupInProgress,
    within: std::time::Duration,
) -> BackupOutcome {
    let (backup, outcome) = running.finish(within).await;
    let result = BackupOutcome {
        completed: outcome.is_ok(),
        error: outcome.err().map(|e| e.to_string()),
        path: backup.path().to_path_buf(),
    };
    let old = node.backup.lock().await.replace(backup);
    if let Some(old) = old {
        remove_backup(node, old).await;
    }
    node.journal().count(
        if result.completed {
            "backups"
        } else {
            "backups_interrupted"
        },
        1,
    );
    node.journal().event(
        EventKind::BackupEnd,
        match &result.error {
            None => "the base backup completed".to_owned(),
            Some(error) => format!("the base backup did not complete: {error}"),
        },
    );
    result
}

/// A base backup as one effect, to start in the background and finish later:
/// `ext start BackgroundBackup { .. } @ Backup as backup; .. ext finish backup;`.
/// It counts as started once the server reports it streaming data files (so the
/// program's next steps, a crash, land during it), and ends when `pg_basebackup` does
/// (at most `within` after it started streaming), completed or not, keeping whatever
/// it wrote as this role's base backup. The output says how it ended. Run whole
/// (`ext`), it is a throttled backup to its end. It does the work of [`StartBackup`]
/// and [`FinishBackup`] without the role keeping a backup in progress between them.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::BackgroundBackup;
/// use stormchor_kit::slots::PRIMARY;
///
/// let backup = BackgroundBackup { of: PRIMARY, max_rate_kb: Some(1024), within: Duration::from_secs(60) };
/// assert_eq!(backup.max_rate_kb, Some(1024));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct BackgroundBackup {
    /// The server to back up.
    pub of: Slot<ServerInfo>,
    /// `pg_basebackup --max-rate`, in kB/s (32 to 1048576); `None`: unlimited.
    pub max_rate_kb: Option<u32>,
    /// How long to wait for it to end before killing `pg_basebackup`.
    pub within: std::time::Duration,
}

impl DbEffect for BackgroundBackup {
    type Output = BackupOutcome;

    async fn run(&self, node: &Node) -> Result<BackupOutcome, EffectFailure> {
        let signal = StartSignal::take();
        let running = start_streaming(node, self.of, self.max_rate_kb, "BackgroundBackup").await?;
        if let Some(signal) = signal {
            signal.started();
        }
        Ok(finish_running(node, running, self.within).await)
    }
}
