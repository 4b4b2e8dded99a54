//! Streaming replication: a replica (synchronous or not, cascading from another
//! replica or not), promotion, and waiting for replay.

use std::time::{Duration, Instant};

use stormchor_macros::ExtensionEffect;
use stormchor_runtime::EffectFailure;
use stormchor_runtime::postgres::{BaseBackup, ClusterOptions, PgTarget};
use tokio_postgres::types::PgLsn;

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::node::Node;
use crate::value::Slot;

/// Starts this role's server as a streaming replica of the server in `of` (a
/// primary, or another replica: then it cascades). A primary with
/// `synchronous_standby_names = '*'` makes it a synchronous one. The output is where
/// the replica is.
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
        let replica = backup
            .start(ClusterOptions::default())
            .await
            .map_err(failed)?;
        let info = ServerInfo {
            owner: node.role().to_owned(),
            connection: replica.connection_string(),
            archive: None,
            controlled: true,
        };
        *server = Some(PgTarget::Throwaway(replica));
        node.journal().count("replicas_started", 1);
        Ok(info)
    }
}

/// Promotes this role's replica to a primary and waits until it accepts writes; the
/// output is where it is (so that it can be sent on as the new primary).
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
        Ok(ServerInfo {
            owner: node.role().to_owned(),
            connection: cluster.connection_string(),
            archive: None,
            controlled: true,
        })
    }
}

/// Waits (at most `bound`) until this role's replica has replayed everything the
/// server in `upstream` had written when the wait began.
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
