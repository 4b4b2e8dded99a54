//! A node role's server: start it, stop it, kill it, restart it, crash it at a
//! seeded moment, and tell others where it is.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{
    ClusterOptions, PgCluster, PgError, PgTarget, RunSchema, StopMode, WalArchive,
};
use stormchor_runtime::EffectFailure;

use super::failed;
use crate::effect::DbEffect;
use crate::journal::EventKind;
use crate::node::{Node, lock};

/// Where a server is, as other roles need to know it.
///
/// # Example
/// ```
/// use stormchor_kit::effects::ServerInfo;
///
/// let primary = ServerInfo {
///     owner: "Primary".into(),
///     connection: "host=127.0.0.1 port=5432 user=postgres".into(),
///     archive: None,
///     controlled: true,
/// };
/// assert!(primary.controlled && primary.archive.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The role that runs it.
    pub owner: String,
    /// A libpq connection string.
    pub connection: String,
    /// The directory its WAL is archived into, when it archives (a path on the
    /// owner's host).
    pub archive: Option<PathBuf>,
    /// Whether its owner controls its processes (`false` for a user's `--target`).
    pub controlled: bool,
}

impl ServerInfo {
    /// A throwaway cluster `owner` controls, with no archive.
    pub fn controlled(owner: &str, cluster: &PgCluster) -> Self {
        ServerInfo {
            owner: owner.to_owned(),
            connection: cluster.connection_string(),
            archive: None,
            controlled: true,
        }
    }
}

/// Starts this role's server: a throwaway cluster (`initdb` in a temporary
/// directory, a free loopback port), or, when the run has a `--target` and
/// `allow_target` is set, the user's server (no process control then). The output is
/// where it is.
///
/// # Example
/// ```
/// use stormchor_kit::effects::StartServer;
///
/// let primary = StartServer::throwaway().archiving().with_data_checksums();
/// assert!(primary.archive && primary.data_checksums && !primary.allow_target);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StartServer {
    /// Archive WAL (for point-in-time recovery).
    pub archive: bool,
    /// Make every commit wait for a synchronous standby.
    pub synchronous: bool,
    /// Use the run's `--target` instead of a throwaway cluster when there is one.
    pub allow_target: bool,
    /// On a `--target`, work in a schema of the run's own (every connection's
    /// `search_path` starts with it), dropped when the role releases its resources:
    /// nothing that existed before is touched.
    pub own_schema: bool,
    /// Create the throwaway cluster with data checksums (`initdb --data-checksums`),
    /// so that a page damaged behind the server's back is found; a `--target` keeps
    /// whatever it has.
    pub data_checksums: bool,
}

impl StartServer {
    /// A throwaway cluster; a `--target` is refused (the scenario controls processes).
    pub fn throwaway() -> Self {
        StartServer {
            archive: false,
            synchronous: false,
            allow_target: false,
            own_schema: false,
            data_checksums: false,
        }
    }

    /// The run's `--target`, in a schema of the run's own, if there is one; else a
    /// throwaway cluster.
    pub fn target_in_own_schema_or_throwaway() -> Self {
        StartServer {
            own_schema: true,
            ..StartServer::target_or_throwaway()
        }
    }

    /// The run's `--target` if there is one, else a throwaway cluster.
    pub fn target_or_throwaway() -> Self {
        StartServer {
            allow_target: true,
            ..StartServer::throwaway()
        }
    }

    /// The same, archiving its WAL.
    pub fn archiving(self) -> Self {
        StartServer {
            archive: true,
            ..self
        }
    }

    /// The same, with data checksums on (`initdb --data-checksums`).
    pub fn with_data_checksums(self) -> Self {
        StartServer {
            data_checksums: true,
            ..self
        }
    }

    /// The same, waiting for a synchronous standby on every commit.
    pub fn synchronous(self) -> Self {
        StartServer {
            synchronous: true,
            ..self
        }
    }
}

impl DbEffect for StartServer {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let mut server = node.server.lock().await;
        if server.is_some() {
            return Err(EffectFailure::permanent(format!(
                "{} already runs a server",
                node.role()
            )));
        }
        let target = node.options().target.as_deref();
        if let (Some(target), false) = (target, self.allow_target) {
            return Err(failed(PgError::NoProcessControl {
                operation: format!("start a server this scenario controls ({})", node.role()),
                target: target.to_owned(),
            }));
        }
        // An archive for a throwaway cluster only: a target archives (or not) as its
        // owner set it up.
        let archive = if self.archive && target.is_none() {
            Some(WalArchive::create().await.map_err(failed)?)
        } else {
            None
        };
        let mut settings = Vec::new();
        if self.synchronous {
            settings.push(("synchronous_standby_names".to_owned(), "*".to_owned()));
        }
        let options = ClusterOptions {
            archive: archive.clone(),
            settings,
            data_checksums: self.data_checksums,
            ..ClusterOptions::default()
        };
        let resolved = PgTarget::resolve(target, options).await;
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                if let Some(archive) = archive {
                    if let Err(removing) = archive.release().await {
                        eprintln!("cannot remove {}'s WAL archive: {removing}", node.role());
                    }
                }
                return Err(failed(error));
            }
        };
        let cluster = match resolved {
            PgTarget::Throwaway(cluster) => cluster,
            PgTarget::External(target) => {
                let connection = if self.own_schema {
                    let schema = RunSchema::create(&target).await.map_err(failed)?;
                    let connection = schema.connection_string().to_owned();
                    *node.run_schema.lock().await = Some(schema);
                    connection
                } else {
                    target
                };
                *server = Some(PgTarget::External(connection.clone()));
                return Ok(ServerInfo {
                    owner: node.role().to_owned(),
                    connection,
                    archive: None,
                    controlled: false,
                });
            }
        };
        let info = ServerInfo {
            owner: node.role().to_owned(),
            connection: cluster.connection_string(),
            archive: archive.as_ref().map(|a| a.path().to_path_buf()),
            controlled: true,
        };
        let replaced = std::mem::replace(&mut *lock(&node.archive), archive);
        if let Some(replaced) = replaced {
            if let Err(removing) = replaced.release().await {
                eprintln!("cannot remove {}'s WAL archive: {removing}", node.role());
            }
        }
        *server = Some(PgTarget::Throwaway(cluster));
        node.journal().count("servers_started", 1);
        Ok(info)
    }
}

/// Runs `operation` on this role's own cluster.
async fn with_cluster<T>(
    node: &Node,
    operation: &str,
    run: impl AsyncFnOnce(&mut PgCluster) -> Result<T, PgError>,
) -> Result<T, EffectFailure> {
    let mut server = node.server.lock().await;
    let target = server.as_mut().ok_or_else(|| {
        EffectFailure::permanent(format!("{} runs no server to {operation}", node.role()))
    })?;
    let cluster = target.cluster(operation).map_err(failed)?;
    run(cluster).await.map_err(failed)
}

/// Where this role's server is now (after a promotion, a restart...).
///
/// # Example
/// ```
/// use stormchor_kit::effects::ServerAddress;
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::DbEffect;
///
/// // After a restart the owner sends where its server is now.
/// let now = ServerAddress.into_slot(PRIMARY);
/// assert_eq!(format!("{now:?}"), "ServerAddress => primary");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct ServerAddress;

impl DbEffect for ServerAddress {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        let server = node.server.lock().await;
        let target = server
            .as_ref()
            .ok_or_else(|| EffectFailure::permanent(format!("{} runs no server", node.role())))?;
        Ok(ServerInfo {
            owner: node.role().to_owned(),
            connection: target.connection_string(),
            archive: lock(&node.archive).as_ref().map(|a| a.path().to_path_buf()),
            controlled: matches!(target, PgTarget::Throwaway(_)),
        })
    }
}

/// Stops this role's server.
///
/// # Example
/// ```
/// use stormchor_kit::effects::StopServer;
/// use stormchor_kit::effects::StopMode;
///
/// let clean_stop = StopServer(StopMode::Fast);
/// assert_eq!(clean_stop.0, StopMode::Fast);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StopServer(pub StopMode);

impl DbEffect for StopServer {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let mode = self.0;
        with_cluster(node, "stop the server", async move |c| c.stop(mode).await).await
    }
}

/// SIGKILLs this role's server (postmaster and children).
///
/// # Example
/// ```
/// use stormchor_kit::effects::{KillServer, RestartServer};
///
/// // Kill, then start again: crash recovery replays the WAL.
/// let steps = (KillServer, RestartServer);
/// assert_eq!(format!("{steps:?}"), "(KillServer, RestartServer)");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct KillServer;

impl DbEffect for KillServer {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let at = node.journal().elapsed();
        with_cluster(node, "SIGKILL the server", async |c| c.kill().await).await?;
        node.journal().count("kills", 1);
        node.journal().event_at(at, EventKind::Kill, "SIGKILL");
        Ok(())
    }
}

/// Starts this role's stopped (or killed) server again: crash recovery runs.
///
/// # Example
/// ```
/// use stormchor_kit::effects::RestartServer;
///
/// assert_eq!(format!("{RestartServer:?}"), "RestartServer");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RestartServer;

impl DbEffect for RestartServer {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        with_cluster(node, "restart the server", async |c| c.restart().await).await?;
        node.journal()
            .event(EventKind::Restart, "the server accepts connections again");
        Ok(())
    }
}

/// SIGKILLs this role's server at a seeded moment within `within`, then (with
/// `restart`) starts it again. The n-th crash of a role picks its moment from the
/// run's seed and n, so `--seed` replays it.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::Crash;
///
/// // Kill at a seeded moment within the next 2 s, then let crash recovery run.
/// let crash = Crash { within: Duration::from_secs(2), restart: true };
/// assert!(crash.restart);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Crash {
    /// The window the moment falls in.
    pub within: Duration,
    /// Start the server again (crash recovery) or leave it dead (failover).
    pub restart: bool,
}

impl DbEffect for Crash {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let round = node.crashes.fetch_add(1, Ordering::Relaxed);
        let delay = kill_delay(node.options().seed, round, self.within);
        tokio::time::sleep(delay).await;
        let at = node.journal().elapsed();
        with_cluster(node, "SIGKILL the server", async |c| c.kill().await).await?;
        node.journal().event_at(
            at,
            EventKind::Kill,
            format!("crash {round}: SIGKILL {delay:?} into its window"),
        );
        if self.restart {
            with_cluster(node, "restart the server", async |c| c.restart().await).await?;
            node.journal().event(
                EventKind::Restart,
                format!("crash {round}: crash recovery done, the server accepts connections"),
            );
        }
        node.journal().count("kills", 1);
        node.journal()
            .figure(&format!("kill_{round}_at_ms"), delay.as_millis() as u64);
        Ok(())
    }
}

/// When crash `crash` of a run with `seed` strikes within its window: between 20% and
/// 80% of it, so that there is load before and after; the same for the same seed.
pub fn kill_delay(seed: u64, crash: u32, within: Duration) -> Duration {
    let mut rng =
        SmallRng::seed_from_u64(seed ^ (u64::from(crash) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    within.mul_f64(rng.random_range(0.2..0.8))
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
        assert!(all.windows(2).any(|w| w[0] != w[1]));
    }
}

/// Stops this role's server cleanly, sets its transaction id epoch with
/// `pg_resetwal --epoch` and starts it again, as PostgreSQL's recovery-target test does
/// to make transaction ids (`pg_current_xact_id()`) exceed 32 bits.
///
/// # Example
/// ```
/// use stormchor_kit::effects::ResetXidEpoch;
///
/// assert_eq!(ResetXidEpoch(1).0, 1);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct ResetXidEpoch(pub u32);

impl DbEffect for ResetXidEpoch {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let epoch = self.0;
        with_cluster(node, "reset the transaction id epoch", async move |c| {
            c.stop(StopMode::Fast).await?;
            let data = c.data_dir().display().to_string();
            c.run_program(
                "pg_resetwal",
                &["--epoch".to_owned(), epoch.to_string(), data],
            )
            .await?;
            c.restart().await
        })
        .await
    }
}
