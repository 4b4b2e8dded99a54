//! The slots the kit's scenarios pass values in. Use them in your own programs, or
//! declare your own `Slot`s: any name, any [`Value`](crate::Value) type.

use stormchor_postgres::{Checksums, Ledger};

use crate::effects::wal::RecoveryGoal;
use crate::effects::{Point, ServerInfo};
use crate::value::Slot;

/// Where the primary is now (after a failover: the promoted replica).
pub const PRIMARY: Slot<ServerInfo> = Slot::new("primary");
/// Where a replica is.
pub const REPLICA: Slot<ServerInfo> = Slot::new("replica");
/// Where a cascading replica (a replica of the replica) is.
pub const CASCADE: Slot<ServerInfo> = Slot::new("cascade");
/// Where a restored cluster is.
pub const RESTORED: Slot<ServerInfo> = Slot::new("restored");
/// A writer's ledger.
pub const LEDGER: Slot<Ledger> = Slot::new("ledger");
/// A recorded point.
pub const POINT: Slot<Point> = Slot::new("point");
/// Checksums found somewhere (a restored cluster's).
pub const CHECKSUMS: Slot<Checksums> = Slot::new("checksums");
/// A recovery goal.
pub const GOAL: Slot<RecoveryGoal> = Slot::new("goal");
/// How many actions a load ran.
pub const ACTIONS: Slot<u64> = Slot::new("actions");
