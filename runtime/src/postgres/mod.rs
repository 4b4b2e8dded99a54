//! The PostgreSQL layer: throwaway clusters the tests start themselves, or a server
//! given by a connection string.
//!
//! - [`PgBinaries`]: where the server programs are;
//! - [`PgCluster`]: a cluster in a temporary directory: start, stop, crash, restart,
//!   base backups, point-in-time recovery, streaming replicas;
//! - [`PgTarget`]: either a throwaway cluster or an external server.

mod catalog;
mod cluster;
mod discovery;

pub use catalog::{
    Catalog, Column, ColumnType, ForeignKey, Identity, Index, RangePartition, Snapshot, SortOrder,
    Table, TableId, TableKind,
};
pub use cluster::{
    BaseBackup, ClusterOptions, PgBinaries, PgCluster, PgError, PgTarget, RecoveryTarget, StopMode,
    WalArchive,
};
pub use discovery::{Divergence, compare, discover_into, validate};
