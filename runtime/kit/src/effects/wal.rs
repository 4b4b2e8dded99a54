//! WAL positions and recovery goals: record a consistent point (WAL position plus
//! every table's checksum) or a goal to restore to (an LSN, a time, a transaction
//! id, a named restore point).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{Checksums, table_checksums};
use stormchor_runtime::EffectFailure;
use tokio_postgres::Client;
use tokio_postgres::types::PgLsn;

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::journal::EventKind;
use crate::node::Node;
use crate::value::Slot;

/// Where a recovery stops, as a value that travels.
///
/// # Example
/// ```
/// use stormchor_kit::effects::RecoveryGoal;
///
/// let goal = RecoveryGoal::Lsn(0x3000060);
/// assert_ne!(goal, RecoveryGoal::Immediate);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveryGoal {
    /// Just after this WAL position.
    Lsn(u64),
    /// At this time (as the server printed `now()`).
    Time(String),
    /// At this named restore point.
    Name(String),
    /// Just after this transaction committed.
    Xid(String),
    /// As soon as the backup is consistent.
    Immediate,
}

/// A goal, fixed in the program or read from a slot at run time.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Goal, RecoveryGoal};
/// use stormchor_kit::slots::{GOAL, POINT};
///
/// let recorded = Goal::In(GOAL);
/// let next_point = Goal::AtNextPoint(POINT);
/// let fixed = Goal::Fixed(RecoveryGoal::Immediate);
/// assert!(recorded != next_point && next_point != fixed);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Goal {
    /// This goal.
    Fixed(RecoveryGoal),
    /// The goal in this slot.
    In(Slot<RecoveryGoal>),
    /// The WAL position of the recorded point in this slot.
    AtPoint(Slot<Point>),
    /// The WAL position of the next recorded point of this slot, in the order the
    /// points came (see [`Values::next`](crate::Values::next)).
    AtNextPoint(Slot<Point>),
}

impl Goal {
    /// The goal now, at `node`.
    pub fn resolve(&self, node: &Node) -> Result<RecoveryGoal, EffectFailure> {
        Ok(match self {
            Goal::Fixed(goal) => goal.clone(),
            Goal::In(slot) => node.value(*slot)?,
            Goal::AtPoint(slot) => RecoveryGoal::Lsn(node.value(*slot)?.lsn),
            Goal::AtNextPoint(slot) => RecoveryGoal::Lsn(
                node.values()
                    .next_for(*slot, "restore")
                    .map_err(|e| EffectFailure::permanent(e.to_string()))?
                    .lsn,
            ),
        })
    }
}

/// A recorded point: a WAL position, and every table's checksum there.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Point;
///
/// let point = Point { index: 0, lsn: 0x3000060, checksums: Default::default() };
/// assert_eq!(point.index, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Which point of the recording role (0, 1, ...).
    pub index: u32,
    /// The WAL position.
    pub lsn: u64,
    /// The checksums of every table of `public` at that position.
    pub checksums: Checksums,
}

/// With the load stopped, records a point of the server in `on`: its WAL position
/// and the checksums of every table, read in one snapshot; when the server archives,
/// the segment holding the position is archived before the effect ends, so that a
/// restore can reach it.
///
/// # Example
/// ```
/// use stormchor_kit::effects::RecordPoint;
/// use stormchor_kit::slots::{POINT, PRIMARY};
/// use stormchor_kit::DbEffect;
///
/// // With the load stopped: the WAL position and every table's checksum there.
/// let point = RecordPoint { on: PRIMARY }.into_slot(POINT);
/// assert_eq!(format!("{point:?}"), "RecordPoint { on: primary } => point");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RecordPoint {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for RecordPoint {
    type Output = Point;

    async fn run(&self, node: &Node) -> Result<Point, EffectFailure> {
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        let lsn: PgLsn = client
            .query_one("SELECT pg_current_wal_lsn()", &[])
            .await
            .map_err(failed)?
            .get(0);
        if server.archive.is_some() {
            archive_current_wal(&client, Duration::from_secs(60)).await?;
        }
        let checksums = table_checksums(&client, "public").await.map_err(failed)?;
        let index = node.journal().counts().get("points").copied().unwrap_or(0) as u32;
        node.journal().count("points", 1);

        let rows: i64 = checksums.values().map(|c| c.rows).sum();
        node.journal().figure(
            &format!("point_{index}"),
            format!("{lsn} ({} tables, {rows} rows)", checksums.len()),
        );
        node.journal().event(
            EventKind::Point,
            format!(
                "point {index} at {lsn}: {} tables, {rows} rows",
                checksums.len()
            ),
        );
        Ok(Point {
            index,
            lsn: u64::from(lsn),
            checksums,
        })
    }
}

/// Switches to a new WAL segment and waits (at most `bound`) until the archiver has
/// archived the segment that held the current position, the way PostgreSQL's own
/// recovery tests wait: `pg_stat_archiver.last_archived_wal` reaching its name. The
/// name of that segment is returned.
pub async fn archive_current_wal(
    client: &Client,
    bound: Duration,
) -> Result<String, EffectFailure> {
    // A switch right after another is a no-op that returns the same position; a
    // record first makes sure there is something to switch away from.
    let row = client
        .query_one(
            "SELECT pg_walfile_name(pg_current_wal_lsn()), txid_current() IS NOT NULL",
            &[],
        )
        .await
        .map_err(failed)?;
    let segment: String = row.get(0);
    client
        .batch_execute("SELECT pg_switch_wal()")
        .await
        .map_err(failed)?;
    let deadline = Instant::now() + bound;
    loop {
        let row = client
            .query_one(
                "SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') \
                 FROM pg_stat_archiver",
                &[],
            )
            .await
            .map_err(failed)?;
        let (archived, failures, last_failed): (String, i64, String) =
            (row.get(0), row.get(1), row.get(2));
        // Segment names of one timeline sort in WAL order.
        if !archived.is_empty() && archived.get(8..) >= segment.get(8..) {
            return Ok(segment);
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "segment {segment} was not archived within {bound:?}: the archiver last archived \
                 `{archived}`, failed {failures} times (last failed: `{last_failed}`)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What [`RecordGoal`] records.
///
/// # Example
/// ```
/// use stormchor_kit::effects::GoalKind;
///
/// let named = GoalKind::RestorePoint("before_drop");
/// assert_ne!(named, GoalKind::Time);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum GoalKind {
    /// The current WAL position.
    Lsn,
    /// The server's `now()`.
    Time,
    /// A restore point of this name, created with `pg_create_restore_point`.
    RestorePoint(&'static str),
    /// The transaction id of running `sql` in a transaction of its own.
    XidOf(&'static str),
}

/// Records a recovery goal on the server in `on`; the output is the goal.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{GoalKind, RecordGoal};
/// use stormchor_kit::slots::{GOAL, PRIMARY};
/// use stormchor_kit::DbEffect;
///
/// // The transaction id of an insert, as a goal to restore to just after it committed.
/// let goal = RecordGoal { on: PRIMARY, kind: GoalKind::XidOf("INSERT INTO t VALUES (1)") }.into_slot(GOAL);
/// assert_eq!(goal.effect.kind, GoalKind::XidOf("INSERT INTO t VALUES (1)"));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RecordGoal {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// What to record.
    pub kind: GoalKind,
}

impl DbEffect for RecordGoal {
    type Output = RecoveryGoal;

    async fn run(&self, node: &Node) -> Result<RecoveryGoal, EffectFailure> {
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        let text = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .query_one(sql, &[])
                    .await
                    .map(|row| row.get::<_, String>(0))
                    .map_err(failed)
            }
        };
        Ok(match &self.kind {
            GoalKind::Lsn => {
                let lsn: PgLsn = client
                    .query_one("SELECT pg_current_wal_lsn()", &[])
                    .await
                    .map_err(failed)?
                    .get(0);
                RecoveryGoal::Lsn(u64::from(lsn))
            }
            GoalKind::Time => RecoveryGoal::Time(text("SELECT now()::text").await?),
            GoalKind::RestorePoint(name) => {
                client
                    .query_one("SELECT pg_create_restore_point($1)::text", &[name])
                    .await
                    .map_err(failed)?;
                RecoveryGoal::Name((*name).to_owned())
            }
            GoalKind::XidOf(sql) => {
                client.batch_execute("BEGIN").await.map_err(failed)?;
                client.batch_execute(sql).await.map_err(failed)?;
                let xid = text("SELECT pg_current_xact_id()::text").await?;
                client.batch_execute("COMMIT").await.map_err(failed)?;
                RecoveryGoal::Xid(xid)
            }
        })
    }
}

/// Switches the server in `on` to a new WAL segment (`pg_switch_wal`) and waits (at
/// most `bound`) until its archiver has archived the segment that held the current
/// position, so that a restore from the archive reaches every change made so far.
/// The output is that segment's name. A server that does not archive is an error.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::SwitchWal;
/// use stormchor_kit::slots::PRIMARY;
///
/// let switch = SwitchWal { on: PRIMARY, bound: Duration::from_secs(60) };
/// assert_eq!(switch.bound, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct SwitchWal {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// How long archiving may take.
    pub bound: Duration,
}

impl DbEffect for SwitchWal {
    type Output = String;

    async fn run(&self, node: &Node) -> Result<String, EffectFailure> {
        let server = node.value(self.on)?;
        if server.archive.is_none() {
            return Err(EffectFailure::permanent(format!(
                "{}'s server does not archive its WAL: there is nothing to wait for",
                server.owner
            )));
        }
        let client = connect(&server.connection).await?;
        archive_current_wal(&client, self.bound).await
    }
}
