//! The data one role owns while a kit program runs: its journal, the values it holds,
//! and its resources (a node role's server, a backup role's backups and restored
//! clusters, a worker's catalog, ledger and SQL sessions).
//!
//! Nothing in it is shared with another role: every [`Node`] is built on its own from
//! the run's options, so any role can run in a process (or on a host) of its own.
//! What another role needs travels in messages ([`Carry`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use stormchor_choreography::RoleId;
use stormchor_postgres::{
    ActionRegistry, BackupInProgress, BaseBackup, Catalog, Ledger, PgCluster, PgTarget, WalArchive,
};
use stormchor_runtime::{EffectFailure, Labels, RoleLogic, RoleState};

use crate::decision::Decisions;
use crate::effects::sql::Sessions;
use crate::journal::{Journal, StressRecord};
use crate::scenario::{Fault, ScenarioOptions};
use crate::value::{Carry, Values};

/// A role type kit programs run with: it says which roles are members of a family
/// (their index seeds their random streams and picks their share of a schema).
///
/// # Example
/// ```
/// use stormchor_kit::KitRole;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Worker(u16) }
///
/// impl KitRole for Role {
///     fn member(&self) -> Option<u16> {
///         match self { Role::Worker(k) => Some(*k), _ => None }
///     }
/// }
/// assert_eq!(Role::Worker(2).member(), Some(2));
/// ```
pub trait KitRole: RoleId {
    /// The role's index in its family, if it is a member of one.
    fn member(&self) -> Option<u16> {
        None
    }
}

/// The state a kit effect's handler sees: the role's [`Node`] in the runtime's role
/// state.
pub type KitState<R> = RoleState<R, Carry, Node>;

/// What one role owns.
///
/// # Example
/// ```
/// use stormchor_kit::{Node, ScenarioOptions, Slot};
///
/// const POINT: Slot<u64> = Slot::new("point");
/// let node = Node::new("Coordinator", None, &ScenarioOptions::short());
/// node.values().put(POINT, &7).expect("encodes");
/// assert_eq!(node.values().get(POINT).expect("held"), 7);
/// assert_eq!(node.role(), "Coordinator");
/// ```
#[derive(Debug)]
pub struct Node {
    role: String,
    member: Option<u16>,
    options: ScenarioOptions,
    journal: Journal,
    values: Values,
    /// The server this role runs (a node role), once started.
    pub(crate) server: tokio::sync::Mutex<Option<PgTarget>>,
    /// The WAL archive of this role's server, when it archives.
    pub(crate) archive: Mutex<Option<Arc<WalArchive>>>,
    /// The base backup this role took last.
    pub(crate) backup: tokio::sync::Mutex<Option<BaseBackup>>,
    /// The base backup this role is taking in the background, if any.
    pub(crate) backup_in_progress: tokio::sync::Mutex<Option<BackupInProgress>>,
    /// The clusters this role restored or started from backups, by name.
    pub(crate) restored: tokio::sync::Mutex<BTreeMap<String, PgCluster>>,
    /// This role's schema catalog (its share of the schema).
    pub(crate) catalog: Arc<Catalog>,
    /// The names of the tables of this role's share when it discovered the schema.
    pub(crate) share: Mutex<Vec<String>>,
    /// This role's ledger, kept across rounds.
    pub(crate) ledger: Mutex<Ledger>,
    /// The action mix of this role's stress load.
    pub(crate) actions: ActionRegistry,
    /// Crashes this role caused so far.
    pub(crate) crashes: AtomicU32,
    /// This role's ledger writer ended its last round in an outage (its last commit
    /// failed, or it lost its connection): the next acknowledged commit resumes.
    pub(crate) ledger_outage: std::sync::atomic::AtomicBool,
    /// This role's SQL sessions (SQL steps).
    pub(crate) sessions: Sessions,
    /// The schema of the run's own on a user's server, when this role made one.
    pub(crate) run_schema: tokio::sync::Mutex<Option<stormchor_postgres::RunSchema>>,
    /// Where this role's SQL log goes (none when no temporary directory could be made).
    logs: Option<tempfile::TempDir>,
    /// The decisions for this role's next choice and loop round.
    decisions: Decisions,
}

impl Node {
    /// The data of role `role` (its family index `member`, if any) for a run with
    /// `options`.
    pub fn new(role: impl Into<String>, member: Option<u16>, options: &ScenarioOptions) -> Node {
        let role = role.into();
        let catalog = match member {
            Some(k) => Catalog::with_name_prefix(format!("w{k}_")),
            None => Catalog::new(),
        };
        Node {
            journal: Journal::new(role.clone(), options.started),
            values: Values::new(role.clone()),
            member,
            options: options.clone(),
            server: tokio::sync::Mutex::new(None),
            archive: Mutex::new(None),
            backup: tokio::sync::Mutex::new(None),
            backup_in_progress: tokio::sync::Mutex::new(None),
            restored: tokio::sync::Mutex::new(BTreeMap::new()),
            catalog: Arc::new(catalog),
            share: Mutex::new(Vec::new()),
            ledger: Mutex::new(Ledger::default()),
            actions: ActionRegistry::default_actions(),
            crashes: AtomicU32::new(0),
            ledger_outage: std::sync::atomic::AtomicBool::new(false),
            sessions: Sessions::default(),
            run_schema: tokio::sync::Mutex::new(None),
            // Marked with its owner, so that a later run removes it if this one dies.
            logs: stormchor_postgres::owned_temp_dir("stormchor-logs-").ok(),
            decisions: Decisions::default(),
            role,
        }
    }

    /// The role's name.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The role's index in its family.
    pub fn member(&self) -> Option<u16> {
        self.member
    }

    /// The run's options.
    pub fn options(&self) -> &ScenarioOptions {
        &self.options
    }

    /// Whether the run injects `fault`.
    pub fn injects(&self, fault: Fault) -> bool {
        self.options.fault == Some(fault)
    }

    /// The role's journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The values the role holds.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// The decisions for the role's next choice and next loop round (an effect
    /// records them; the choice or loop that follows takes them).
    pub fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// The role's schema catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The server this role runs (a node role), once started: an author's effect
    /// stops, inspects or kills it through this.
    pub fn server(&self) -> &tokio::sync::Mutex<Option<PgTarget>> {
        &self.server
    }

    /// The base backup this role took last.
    pub fn backup(&self) -> &tokio::sync::Mutex<Option<BaseBackup>> {
        &self.backup
    }

    /// The clusters this role restored or started from backups, by name.
    pub fn restored(&self) -> &tokio::sync::Mutex<BTreeMap<String, PgCluster>> {
        &self.restored
    }

    /// This role's ledger, kept across rounds.
    pub fn ledger(&self) -> &Mutex<Ledger> {
        &self.ledger
    }

    /// The stress loads this role ran, each with its figures per action.
    pub fn stress_loads(&self) -> Vec<StressRecord> {
        self.journal.entries_now().stress
    }

    /// Where this role logs the SQL of its stress load, if anywhere.
    pub fn sql_log_path(&self) -> Option<PathBuf> {
        Some(
            self.logs
                .as_ref()?
                .path()
                .join(format!("{}.sql.log", self.role)),
        )
    }

    /// The last `lines` statements of this role's SQL log.
    pub fn sql_log_tail(&self, lines: usize) -> Vec<String> {
        let text = self
            .sql_log_path()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }

    /// Reads a value this role needs; a missing one fails the effect, naming it.
    pub fn value<T: crate::Value>(&self, slot: crate::Slot<T>) -> Result<T, EffectFailure> {
        self.values
            .get(slot)
            .map_err(|e| EffectFailure::permanent(e.to_string()))
    }

    /// Stops and removes every server, backup and archive this role owns, without
    /// blocking the runtime (`shutdown`, `remove`, `release`): what cannot be removed
    /// is said, not hidden (the next run's sweep removes it).
    pub async fn release(&self) {
        if let Some(schema) = self.run_schema.lock().await.take() {
            // The role's own sessions hold no lock on it once the program is over; a
            // failure to drop it is shown, not hidden.
            self.sessions.close().await;
            if let Err(error) = schema.drop_schema().await {
                eprintln!("cannot drop the run's schema {}: {error}", schema.name());
            }
        }
        let server = self.server.lock().await.take();
        let restored = std::mem::take(&mut *self.restored.lock().await);
        let backup = self.backup.lock().await.take();
        let in_progress = self.backup_in_progress.lock().await.take();
        let archive = lock(&self.archive).take();
        if let Some(server) = server {
            if let Err(error) = server.shutdown().await {
                eprintln!("cannot remove {}'s server: {error}", self.role);
            }
        }
        for cluster in restored.into_values() {
            end_cluster(cluster).await;
        }
        if let Some(in_progress) = in_progress {
            if let Err(error) = in_progress.remove().await {
                eprintln!("cannot remove {}'s backup in progress: {error}", self.role);
            }
        }
        if let Some(backup) = backup {
            remove_backup(self, backup).await;
        }
        if let Some(archive) = archive {
            if let Err(error) = archive.release().await {
                eprintln!("cannot remove {}'s WAL archive: {error}", self.role);
            }
        }
    }
}

/// Removes a base backup of `node`'s (one it replaced, or the last); a directory that
/// cannot be removed is said, not hidden (the next run's sweep removes it).
pub(crate) async fn remove_backup(node: &Node, backup: BaseBackup) {
    if let Err(error) = backup.remove().await {
        eprintln!("cannot remove {}'s base backup: {error}", node.role);
    }
}

/// Shuts a cluster of a role down; a directory that cannot be removed is said, not
/// hidden (the next run's sweep removes it).
pub(crate) async fn end_cluster(cluster: PgCluster) {
    if let Err(error) = cluster.shutdown().await {
        eprintln!("{error}");
    }
}

pub(crate) use stormchor_postgres::lock;

impl<R: RoleId> RoleLogic<R, Carry> for Node {
    fn message(state: &KitState<R>, _to: R, template: &Carry) -> Carry {
        if template.is_signal() {
            return template.clone();
        }
        template.filled(state.data().values.encoded(template.slot()))
    }

    fn accept(state: &KitState<R>, from: R, template: &Carry, value: &Carry) -> Result<(), String> {
        if value != template {
            return Err(format!("message {value:?}"));
        }
        if template.is_signal() {
            return Ok(());
        }
        match value.payload() {
            Some(bytes) => {
                state
                    .data()
                    .values
                    .receive(value.slot(), format!("{from:?}"), bytes.to_vec());
                Ok(())
            }
            None => Err(format!(
                "`{}` without a value: {from:?} held none when it sent it (no effect of {from:?} \
                 produced it and no message brought it there first)",
                value.slot()
            )),
        }
    }

    /// The branch an effect decided ([`Decisions::choose`]), else the first.
    fn choose(state: &KitState<R>, labels: Labels<'_, R, Carry>) -> usize {
        match state.data().decisions.take_choice() {
            None => 0,
            // A label the choice lacks: an index past the branches, which the
            // interpreter reports as a bad choice.
            Some(label) => labels.position(&label).unwrap_or(labels.len()),
        }
    }

    /// What an effect decided ([`Decisions::go_on`]), else stop.
    fn keep_looping(state: &KitState<R>, _round: u64) -> bool {
        state.data().decisions.take_go_on().unwrap_or(false)
    }
}
