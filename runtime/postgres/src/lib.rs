//! stormchor's PostgreSQL layer: throwaway clusters the tests start themselves, or a
//! server given by a connection string, and what scenarios do on them. It does not
//! depend on the protocol runtime (`stormchor-runtime`): the database kit
//! (`stormchor-kit`) joins the two.
//!
//! # Modules
//! - `cluster`: [`PgBinaries`] (where the server programs are), [`PgCluster`] (a
//!   cluster in a temporary directory: start, stop, crash, restart, base backups,
//!   point-in-time recovery, streaming replicas), [`BaseBackup`] and [`WalArchive`]
//!   (directories that async code ends with `remove` / `release`, as a cluster with
//!   `shutdown`), [`PgTarget`] (a throwaway cluster or an external server);
//! - `cleanup`: no server or directory outlives its run, whatever ends it
//!   ([`interrupt`], [`remove_all_clusters_now`], [`remove_stale_directories`]);
//! - `connection`: bounded [`connect`]s, [`redact`]ed connection strings;
//! - `session`: [`SqlSession`], a connection that logs its statements ([`SqlLog`]) and
//!   types its errors ([`SqlError`]);
//! - `catalog`: the schema catalog a run keeps ([`Catalog`], [`Table`], [`Snapshot`]);
//! - `actions`: weighted DDL and DML actions on the catalog ([`Action`],
//!   [`ActionRegistry`]);
//! - `discovery`: reading a server's schemas into a catalog, and comparing them
//!   ([`discover_schemas`], [`compare`], [`validate`]);
//! - `verify`: the commit ledger, table checksums and amcheck ([`Ledger`],
//!   [`table_checksums`], [`amcheck`]);
//! - `run_schema`: a schema of the run's own on a user's server ([`RunSchema`]);
//! - `sync`: [`lock`], a mutex's guard also after a holder panicked.
//!
//! The workers that run actions under load, and the workloads, are in
//! `stormchor-workloads`.
//!
//! # Example
//! ```
//! use stormchor_postgres::{ActionRegistry, Catalog, PgTarget, redact};
//!
//! // A connection string names an external server; its password never reaches a log.
//! let target = PgTarget::External("host=db.example user=app password=secret".into());
//! assert_eq!(redact(&target.connection_string()), "host=db.example user=app password=***");
//! // The schema catalog and the default weighted actions on it need no server.
//! let catalog = Catalog::new();
//! assert!(catalog.is_empty());
//! let actions = ActionRegistry::default_actions();
//! assert!(actions.list().iter().any(|(name, _)| name == "create_table"));
//! ```
#![deny(missing_docs)]

mod actions;
mod catalog;
mod cleanup;
mod cluster;
mod connection;
mod discovery;
mod run_schema;
mod session;
mod sync;
mod verify;

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
    sql_problem,
};
pub use discovery::{
    Divergence, Schemas, compare, discover_into, discover_schemas, qualified_name,
    schema_qualifier, validate, validate_schemas,
};
pub use run_schema::{RunSchema, with_search_path};
pub use session::{SqlError, SqlLog, SqlSession};
pub use sync::lock;
pub use verify::{
    ChecksumDifference, Checksums, Commit, LEDGER_TABLE, Ledger, LedgerTarget, LedgerVerdict,
    TableChecksum, amcheck, compare_checksums, create_ledger, quote_ident, table_checksums,
    verify_ledger, write_ledger, write_ledger_observed,
};
