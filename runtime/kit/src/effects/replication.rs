//! Streaming replication: a replica (synchronous or not, cascading from another
//! replica or not, started at once or prepared and started later), promotion (also
//! of a primary restarted as a standby), re-pointing a standby at a new upstream, and
//! waiting for replay.

use std::time::{Duration, Instant};

use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{BaseBackup, ClusterOptions, PgTarget, StopMode};
use stormchor_runtime::EffectFailure;
use tokio_postgres::types::PgLsn;

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::journal::EventKind;
use crate::node::{Node, remove_backup};
use crate::value::Slot;

/// Starts this role's server as a streaming replica of the server in `of` (a
/// primary, or another replica: then it cascades). A primary with
/// `synchronous_standby_names = '*'` makes it a synchronous one. The output is where
/// the replica is.
///
/// # Example
/// ```
/// use stormchor_choreography::At;
/// use stormchor_kit::effects::{Promote, StartReplica, StartServer, WaitForReplay};
/// use stormchor_kit::slots::{PRIMARY, REPLICA};
/// use stormchor_kit::{Carry, DbEffect, Program, project_all};
/// use std::time::Duration;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Primary, Replica }
/// use Role::*;
///
/// // The replica's node streams from the primary, catches up, and is promoted.
/// let program: Program<Role, Carry> = Program::new()
///     .with_roles([Primary, Replica])
///     .ext(At::new(StartServer::throwaway().into_slot(PRIMARY), [Primary]))
///     .send(Primary, Replica, PRIMARY.carry())
///     .ext(At::new(StartReplica { of: PRIMARY }.into_slot(REPLICA), [Replica]))
///     .ext(At::new(WaitForReplay { upstream: PRIMARY, bound: Duration::from_secs(60) }, [Replica]))
///     .ext(At::new(Promote.into_slot(REPLICA), [Replica]));
/// assert!(project_all(&program).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StartReplica {
    /// The upstream server.
    pub of: Slot<ServerInfo>,
}

impl DbEffect for StartReplica {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let upstream = node.value(self.of)?;
        let mut server = node.server.lock().await;
        if server.is_some() {
            return Err(EffectFailure::permanent(format!(
                "{} already runs a server",
                node.role()
            )));
        }
        let backup = BaseBackup::take(&upstream.connection, true, None)
            .await
            .map_err(failed)?;
        start_replica(node, &mut server, backup).await
    }
}

/// Starts `backup` (a replica backup) as this role's server.
async fn start_replica(
    node: &Node,
    server: &mut Option<PgTarget>,
    backup: BaseBackup,
) -> Result<ServerInfo, EffectFailure> {
    let replica = backup
        .start(ClusterOptions::default())
        .await
        .map_err(failed)?;
    let info = ServerInfo::controlled(node.role(), &replica);
    *server = Some(PgTarget::Throwaway(replica));
    node.journal().count("replicas_started", 1);
    Ok(info)
}

/// Promotes this role's replica to a primary and waits until it accepts writes; the
/// output is where it is (so that it can be sent on as the new primary).
///
/// # Example
/// ```
/// use stormchor_kit::effects::Promote;
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::DbEffect;
///
/// // The promoted replica is the new primary: its address goes on in PRIMARY.
/// let promote = Promote.into_slot(PRIMARY);
/// assert_eq!(format!("{promote:?}"), "Promote => primary");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Promote;

impl DbEffect for Promote {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let mut server = node.server.lock().await;
        let target = server.as_mut().ok_or_else(|| {
            EffectFailure::permanent(format!("{} runs no replica to promote", node.role()))
        })?;
        let cluster = target.cluster("promote the replica").map_err(failed)?;
        cluster.promote().await.map_err(failed)?;
        node.journal().count("promotions", 1);
        node.journal().event(
            EventKind::Promote,
            "the replica was promoted: it accepts writes",
        );
        Ok(ServerInfo::controlled(node.role(), cluster))
    }
}

/// Waits (at most `bound`) until this role's replica has replayed everything the
/// server in `upstream` had written when the wait began.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::WaitForReplay;
/// use stormchor_kit::slots::PRIMARY;
///
/// let caught_up = WaitForReplay { upstream: PRIMARY, bound: Duration::from_secs(30) };
/// assert_eq!(caught_up.bound, Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct WaitForReplay {
    /// The server whose position to reach.
    pub upstream: Slot<ServerInfo>,
    /// How long to wait at most.
    pub bound: Duration,
}

impl DbEffect for WaitForReplay {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let upstream = node.value(self.upstream)?;
        let client = connect(&upstream.connection).await?;
        // A replica upstream reports what it replayed; a primary what it wrote.
        let target: PgLsn = client
            .query_one(
                "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                 ELSE pg_current_wal_lsn() END",
                &[],
            )
            .await
            .map_err(failed)?
            .get(0);
        let own = {
            let server = node.server.lock().await;
            server
                .as_ref()
                .ok_or_else(|| {
                    EffectFailure::permanent(format!("{} runs no replica", node.role()))
                })?
                .connection_string()
        };
        let replica = connect(&own).await?;
        let deadline = Instant::now() + self.bound;
        loop {
            let replayed: Option<PgLsn> = replica
                .query_one("SELECT pg_last_wal_replay_lsn()", &[])
                .await
                .map_err(failed)?
                .get(0);
            if replayed.is_some_and(|r| u64::from(r) >= u64::from(target)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "{} did not replay up to {target} within {:?} (replayed: {})",
                    node.role(),
                    self.bound,
                    replayed.map_or("nothing".to_owned(), |r| r.to_string())
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Points this role's standby at the server in `upstream` (its `primary_conninfo`,
/// with `extra` appended: `password=...`, `application_name=...`), sets its
/// `recovery_target_timeline` to `timeline` and restarts it, as PostgreSQL's
/// timeline-switch test does after a promotion. With `"latest"` (PostgreSQL's
/// default) the standby follows the newest timeline it finds, so it goes on from a
/// promoted upstream; with `"current"` it stays on its own and never sees what the
/// upstream wrote after its promotion. The output is where the standby is.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Follow;
/// use stormchor_kit::slots::PRIMARY;
///
/// let follow = Follow { upstream: PRIMARY, extra: "password=dont_show_me", timeline: "latest" };
/// assert_eq!(follow.extra, "password=dont_show_me");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Follow {
    /// The server to stream from now.
    pub upstream: Slot<ServerInfo>,
    /// More connection parameters, appended to the upstream's connection string.
    pub extra: &'static str,
    /// The timeline to follow: `"latest"`, `"current"` or a timeline id.
    pub timeline: &'static str,
}

impl DbEffect for Follow {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let upstream = node.value(self.upstream)?;
        let conninfo = format!("{} {}", upstream.connection, self.extra)
            .trim()
            .to_owned();
        let mut server = node.server.lock().await;
        let target = server.as_mut().ok_or_else(|| {
            EffectFailure::permanent(format!("{} runs no standby to re-point", node.role()))
        })?;
        let cluster = target.cluster("re-point the standby").map_err(failed)?;
        let client = connect(&cluster.connection_string()).await?;
        let in_recovery: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(failed)?
            .get(0);
        if !in_recovery {
            return Err(EffectFailure::permanent(format!(
                "{}'s server is not a standby: it cannot follow {}",
                node.role(),
                upstream.owner
            )));
        }
        for (setting, value) in [
            ("primary_conninfo", conninfo.as_str()),
            ("recovery_target_timeline", self.timeline),
        ] {
            client
                .batch_execute(&format!(
                    "ALTER SYSTEM SET {setting} = '{}'",
                    value.replace('\'', "''")
                ))
                .await
                .map_err(failed)?;
        }
        drop(client);
        cluster.stop(StopMode::Fast).await.map_err(failed)?;
        cluster.restart().await.map_err(failed)?;
        node.journal().count("upstream_switches", 1);
        Ok(ServerInfo::controlled(node.role(), cluster))
    }
}

/// Takes a base backup of the server in `of` set up to start as its streaming
/// replica, without starting it: [`StartPrepared`] starts it later (after the
/// upstream changed timeline, say). This role keeps it as its backup.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{PrepareReplica, StartPrepared};
/// use stormchor_kit::slots::{PRIMARY, REPLICA};
/// use stormchor_kit::DbEffect;
///
/// // Back up now, start later (after the upstream changed timeline).
/// let prepare = PrepareReplica { of: PRIMARY };
/// let start = StartPrepared.into_slot(REPLICA);
/// assert_eq!(format!("{prepare:?} / {start:?}"), "PrepareReplica { of: primary } / StartPrepared => replica");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct PrepareReplica {
    /// The upstream server.
    pub of: Slot<ServerInfo>,
}

impl DbEffect for PrepareReplica {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let upstream = node.value(self.of)?;
        let backup = BaseBackup::take(&upstream.connection, true, None)
            .await
            .map_err(failed)?;
        let old = node.backup.lock().await.replace(backup);
        if let Some(old) = old {
            remove_backup(node, old).await;
        }
        Ok(())
    }
}

/// Starts this role's server from the replica backup [`PrepareReplica`] took; the
/// output is where it is.
///
/// # Example
/// ```
/// use stormchor_kit::effects::StartPrepared;
/// use stormchor_kit::slots::CASCADE;
/// use stormchor_kit::DbEffect;
///
/// let cascade = StartPrepared.into_slot(CASCADE);
/// assert_eq!(format!("{cascade:?}"), "StartPrepared => cascade");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StartPrepared;

impl DbEffect for StartPrepared {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let mut server = node.server.lock().await;
        if server.is_some() {
            return Err(EffectFailure::permanent(format!(
                "{} already runs a server",
                node.role()
            )));
        }
        let backup = node.backup.lock().await.take().ok_or_else(|| {
            EffectFailure::permanent(format!(
                "{} prepared no replica backup to start",
                node.role()
            ))
        })?;
        start_replica(node, &mut server, backup).await
    }
}

/// Stops this role's primary, makes it a standby (`standby.signal`, no upstream) and
/// starts it again: promoting it then switches it to a new timeline, as PostgreSQL's
/// `set_standby_mode` and `promote` do.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Promote, RestartAsStandby};
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::DbEffect;
///
/// // A primary made a standby and promoted again moves to a new timeline.
/// let steps = (RestartAsStandby, Promote.into_slot(PRIMARY));
/// assert_eq!(format!("{:?}", steps.0), "RestartAsStandby");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RestartAsStandby;

impl DbEffect for RestartAsStandby {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let mut server = node.server.lock().await;
        let target = server
            .as_mut()
            .ok_or_else(|| EffectFailure::permanent(format!("{} runs no server", node.role())))?;
        let cluster = target
            .cluster("restart the server as a standby")
            .map_err(failed)?;
        cluster.stop(StopMode::Fast).await.map_err(failed)?;
        let data = cluster.data_dir().to_path_buf();
        let signal = data.join("standby.signal");
        // A file the server's user owns, written off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let owner = std::fs::metadata(&data)
                .map_err(|e| format!("cannot read {}: {e}", data.display()))?;
            std::fs::write(&signal, b"")
                .and_then(|()| {
                    use std::os::unix::fs::MetadataExt;
                    std::os::unix::fs::chown(&signal, Some(owner.uid()), Some(owner.gid()))
                })
                .map_err(|e| format!("cannot write {}: {e}", signal.display()))
        })
        .await
        .map_err(failed)?
        .map_err(failed)?;
        cluster.restart().await.map_err(failed)?;
        Ok(())
    }
}
