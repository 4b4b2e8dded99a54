//! The PostgreSQL layer: throwaway clusters the tests start themselves, or a server
//! given by a connection string.
//!
//! - [`PgBinaries`]: where the server programs are;
//! - [`PgCluster`]: a cluster in a temporary directory: start, stop, crash, restart,
//!   base backups, point-in-time recovery, streaming replicas;
//! - [`PgTarget`]: either a throwaway cluster or an external server;
//! - cleanup ([`interrupt`], [`remove_all_clusters_now`], [`remove_stale_directories`]):
//!   no server or directory outlives its run, whatever ends it;
//! - [`RunSchema`]: a schema of the run's own on a user's server;
//! - [`connect`]: bounded connects, [`redact`]ed connection strings.

mod actions;
mod catalog;
mod cleanup;
mod cluster;
mod connection;
mod discovery;
mod run_schema;
mod session;
mod verify;
mod worker;

pub use actions::{
    Action, ActionContext, ActionError, ActionErrorKind, ActionRegistry, AlterTable, Composite,
    CreateIndex, CreatePartition, CreatePartitionedTable, CreateTable, DeleteSomeRows, DropIndex,
    DropPartition, DropTable, InsertSomeRows, RenameTable, SelectQuery, SqlAction, TableSqlAction,
    Transaction, UpdateOneRow,
};
pub use catalog::{
    Catalog, Column, ColumnType, ForeignKey, Identity, Index, RangePartition, Snapshot, SortOrder,
    Table, TableId, TableKind,
};
pub use cleanup::{
    DIRECTORY_PREFIX, OWNER_FILE, first_signal, interrupt, is_interrupted, owned_temp_dir,
    remove_all_clusters_now, remove_clusters_on_ctrl_c, remove_stale_directories,
};
pub use cluster::BackupInProgress;
pub use cluster::{
    BaseBackup, ClusterOptions, PgBinaries, PgCluster, PgError, PgTarget, RecoveryTarget, StopMode,
    WalArchive, server_host, set_server_host,
};
pub use connection::{
    DEFAULT_CONNECT_TIMEOUT, connect, connect_problem, connect_raw, connect_timeout, redact,
};
pub use discovery::{
    Divergence, Schemas, compare, discover_into, discover_schemas, qualified_name,
    schema_qualifier, validate, validate_schemas,
};
pub use run_schema::{RunSchema, with_search_path};
pub use session::{SqlError, SqlLog, SqlSession};
pub use verify::{
    ChecksumDifference, Checksums, Commit, LEDGER_TABLE, Ledger, LedgerTarget, LedgerVerdict,
    TableChecksum, amcheck, compare_checksums, create_ledger, quote_ident, table_checksums,
    verify_ledger, write_ledger, write_ledger_observed,
};
pub use worker::{ActionStats, WorkLimit, WorkerConfig, WorkerReport, run_worker};
