//! Weighted random actions on the schema and its data.
//!
//! An [`Action`] is stateless and `Send + Sync`; it gets the shared [`Catalog`], a
//! seeded generator and the worker's [`SqlSession`]. DDL actions run their SQL first
//! and publish the change to the catalog only when it succeeded. An
//! [`ActionRegistry`] draws actions with probability exactly proportional to their
//! weights; copies of a registry (default, per node, per worker) change independently.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use rand::Rng;
use rand::rngs::SmallRng;

use super::catalog::{Catalog, Column, ColumnType, Identity, Index, SortOrder, Table, TableKind};
use super::discovery::schema_qualifier;
use super::session::{SqlError, SqlSession};

/// Why an action failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionError {
    /// The action's name (filled in by the registry when it ran the action).
    pub action: String,
    /// What went wrong.
    pub kind: ActionErrorKind,
}

/// The kinds of [`ActionError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionErrorKind {
    /// A statement failed.
    Sql(SqlError),
    /// Nothing to act on (no table, no index, no partition...).
    NoTarget(String),
    /// The registry was asked for something it cannot do.
    Registry(String),
    /// The action failed by an error of its own rather than a statement's (a Python
    /// action that raised: the text is its traceback).
    Raised(String),
}

impl ActionError {
    fn new(kind: ActionErrorKind) -> Self {
        ActionError {
            action: String::new(),
            kind,
        }
    }

    /// The SQLSTATE of a failed statement.
    pub fn sqlstate(&self) -> Option<&str> {
        match &self.kind {
            ActionErrorKind::Sql(error) => error.sqlstate.as_deref(),
            _ => None,
        }
    }

    /// Whether the connection was lost.
    pub fn is_connection_lost(&self) -> bool {
        matches!(&self.kind, ActionErrorKind::Sql(error) if error.is_connection_lost())
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.action.is_empty() {
            write!(f, "action {}: ", self.action)?;
        }
        match &self.kind {
            ActionErrorKind::Sql(error) => write!(f, "{error}"),
            ActionErrorKind::NoTarget(what) => write!(f, "nothing to act on: {what}"),
            ActionErrorKind::Registry(what) => write!(f, "{what}"),
            ActionErrorKind::Raised(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for ActionError {}

impl From<SqlError> for ActionError {
    fn from(error: SqlError) -> Self {
        ActionError::new(ActionErrorKind::Sql(error))
    }
}

fn no_target(what: &str) -> ActionError {
    ActionError::new(ActionErrorKind::NoTarget(what.to_owned()))
}

fn registry_error(what: String) -> ActionError {
    ActionError {
        action: String::new(),
        kind: ActionErrorKind::Registry(what),
    }
}

/// What an action works with.
pub struct ActionContext<'a> {
    /// The shared schema catalog.
    pub catalog: &'a Catalog,
    /// The worker's seeded generator.
    pub rng: &'a mut SmallRng,
    /// The worker's connection.
    pub sql: &'a SqlSession,
}

/// One kind of thing a worker does to the database.
pub trait Action: Send + Sync {
    /// Does it once.
    fn run<'a>(&'a self, ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), ActionError>>;
}

/// Quotes a string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn word(rng: &mut SmallRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A random value of a column's type, as SQL.
fn value(rng: &mut SmallRng, ty: &ColumnType) -> String {
    match ty {
        ColumnType::Int => rng.random_range(-1_000_000..1_000_000i32).to_string(),
        ColumnType::BigInt => rng
            .random_range(-1_000_000_000..1_000_000_000i64)
            .to_string(),
        ColumnType::Char(n) | ColumnType::Varchar(n) => {
            let len = rng.random_range(1..=(*n).clamp(1, 24)) as usize;
            literal(&word(rng, len))
        }
        ColumnType::Text => {
            let len = rng.random_range(1..40);
            literal(&word(rng, len))
        }
        ColumnType::Real | ColumnType::Double => format!("{:.3}", rng.random_range(-1e6..1e6f64)),
        ColumnType::Numeric(Some((p, s))) => {
            let whole = 10f64.powi((*p as i32 - *s as i32).clamp(0, 9)) - 1.0;
            format!("{:.*}", *s as usize, rng.random_range(0.0..whole.max(1.0)))
        }
        ColumnType::Numeric(None) => format!("{:.4}", rng.random_range(-1e9..1e9f64)),
        ColumnType::Bool => rng.random_bool(0.5).to_string(),
        ColumnType::Bytea => format!("'\\x{:08x}'::bytea", rng.random::<u32>()),
        ColumnType::Timestamp => format!(
            "'2026-{:02}-{:02} {:02}:{:02}:00'",
            rng.random_range(1..=12),
            rng.random_range(1..=28),
            rng.random_range(0..24),
            rng.random_range(0..60)
        ),
        ColumnType::Jsonb => format!("'{{\"k\": {}}}'", rng.random_range(0..1000)),
        ColumnType::Other(_) => "DEFAULT".to_owned(),
    }
}

/// A random column type of the supported set.
fn column_type(rng: &mut SmallRng) -> ColumnType {
    match rng.random_range(0..12) {
        0 => ColumnType::Int,
        1 => ColumnType::BigInt,
        2 => ColumnType::Char(rng.random_range(1..16)),
        3 => ColumnType::Varchar(rng.random_range(8..64)),
        4 => ColumnType::Text,
        5 => ColumnType::Real,
        6 => ColumnType::Double,
        7 => ColumnType::Numeric(Some((12, 2))),
        8 => ColumnType::Bool,
        9 => ColumnType::Bytea,
        10 => ColumnType::Timestamp,
        _ => ColumnType::Jsonb,
    }
}

/// A random column, with its SQL definition; defaults are written the way the server
/// renders them back, so the catalog matches discovery.
fn random_column(rng: &mut SmallRng, name: String) -> (Column, String) {
    let ty = column_type(rng);
    let mut column = Column::new(name, ty.clone());
    let mut sql = format!("{} {}", column.name, ty.sql());
    if rng.random_bool(0.3) {
        let default = match ty {
            ColumnType::Int | ColumnType::BigInt => Some(("0".to_owned(), "0".to_owned())),
            ColumnType::Text => Some(("'x'".to_owned(), "'x'::text".to_owned())),
            ColumnType::Varchar(_) => Some(("'x'".to_owned(), "'x'::character varying".to_owned())),
            ColumnType::Bool => Some(("false".to_owned(), "false".to_owned())),
            _ => None,
        };
        if let Some((written, rendered)) = default {
            sql.push_str(&format!(" DEFAULT {written}"));
            column.default = Some(rendered);
        }
    }
    if column.default.is_some() && rng.random_bool(0.5) {
        sql.push_str(" NOT NULL");
        column.nullable = false;
    }
    (column, sql)
}

fn pick<'t, T>(rng: &mut SmallRng, items: &'t [T]) -> Option<&'t T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.random_range(0..items.len()))
    }
}

/// A random table of the catalog accepted by `filter`.
fn random_table(
    ctx: &mut ActionContext<'_>,
    filter: impl Fn(&Table) -> bool,
) -> Option<Arc<Table>> {
    let snapshot = ctx.catalog.snapshot();
    let candidates: Vec<&Arc<Table>> = snapshot.values().filter(|t| filter(t)).collect();
    pick(ctx.rng, &candidates).map(|t| Arc::clone(t))
}

fn is_normal(table: &Table) -> bool {
    matches!(table.kind, TableKind::Normal)
}

fn holds_rows(table: &Table) -> bool {
    !matches!(table.kind, TableKind::PartitionOf(_))
}

/// Columns a generated INSERT or UPDATE may write.
fn writable(table: &Table) -> Vec<&Column> {
    table
        .columns
        .iter()
        .filter(|c| {
            c.generated.is_none() && c.identity.is_none() && !matches!(c.ty, ColumnType::Other(_))
        })
        .collect()
}

/// Inserts `rows` random rows into `table`; partitioned tables get keys inside their
/// partitions.
async fn insert_rows(
    ctx: &mut ActionContext<'_>,
    table: &Table,
    rows: usize,
) -> Result<u64, ActionError> {
    let columns = writable(table);
    if columns.is_empty() {
        return Err(no_target(&format!(
            "table {} has no writable column",
            table.name
        )));
    }
    let ranges: Vec<(i64, i64)> = match &table.kind {
        TableKind::Partitioned { partitions, .. } => {
            partitions.iter().map(|p| (p.from, p.to)).collect()
        }
        _ => Vec::new(),
    };
    let key = match &table.kind {
        TableKind::Partitioned { key, .. } => Some(key.as_str()),
        _ => None,
    };
    if key.is_some() && ranges.is_empty() {
        return Err(no_target(&format!(
            "partitioned table {} has no partition",
            table.name
        )));
    }
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let mut values = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<String> = columns
            .iter()
            .map(|c| {
                if Some(c.name.as_str()) == key {
                    let (from, to) = ranges[ctx.rng.random_range(0..ranges.len())];
                    ctx.rng.random_range(from..to).to_string()
                } else if c.primary_key && matches!(c.ty, ColumnType::Int | ColumnType::BigInt) {
                    ctx.rng.random_range(1..2_000_000_000i64).to_string()
                } else {
                    value(ctx.rng, &c.ty)
                }
            })
            .collect();
        values.push(format!("({})", row.join(", ")));
    }
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        names.join(", "),
        values.join(", ")
    );
    Ok(ctx.sql.run(&sql).await?.1)
}

macro_rules! action {
    ($(#[$doc:meta])* $name:ident, |$ctx:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Action for $name {
            fn run<'a>(&'a self, ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
                let mut $ctx = ctx;
                Box::pin(async move { $body })
            }
        }
    };
}

action!(
    /// Creates a plain table with an identity primary key and 1 to 6 random columns,
    /// then inserts 10 to 100 rows.
    CreateTable,
    |ctx| {
        let name = ctx.catalog.fresh_name("t");
        let mut id = Column::new("id", ColumnType::Int);
        id.nullable = false;
        id.primary_key = true;
        id.identity = Some(Identity::ByDefault);
        let mut columns = vec![id];
        let mut definitions = vec!["id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY".to_owned()];
        for i in 0..ctx.rng.random_range(1..=6) {
            let (column, sql) = random_column(ctx.rng, format!("c{i}"));
            columns.push(column);
            definitions.push(sql);
        }
        if ctx.rng.random_bool(0.2) {
            let mut generated = Column::new("g", ColumnType::Int);
            generated.generated = Some("(id * 2)".to_owned());
            columns.push(generated);
            definitions.push("g integer GENERATED ALWAYS AS (id * 2) STORED".to_owned());
        }
        ctx.sql.run(&format!("CREATE TABLE {name} ({})", definitions.join(", "))).await?;
        let mut table = Table::new(name, columns);
        table.access_method = Some("heap".to_owned());
        let id = ctx.catalog.insert(table);
        if let Some(table) = ctx.catalog.get(id) {
            let rows = ctx.rng.random_range(10..=100);
            insert_rows(&mut ctx, &table, rows).await?;
        }
        Ok(())
    }
);

action!(
    /// Creates a table partitioned by range on an integer key, with 1 to 3 partitions
    /// of 1,000 keys each.
    CreatePartitionedTable,
    |ctx| {
        let name = ctx.catalog.fresh_name("p");
        ctx.sql
            .run(&format!(
                "CREATE TABLE {name} (id integer NOT NULL, k integer NOT NULL, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k)"
            ))
            .await?;
        let columns = vec![
            Column { nullable: false, primary_key: true, ..Column::new("id", ColumnType::Int) },
            Column { nullable: false, primary_key: true, ..Column::new("k", ColumnType::Int) },
            Column::new("v", ColumnType::Text),
        ];
        let mut table = Table::new(name, columns);
        table.kind = TableKind::Partitioned { key: "k".to_owned(), partitions: Vec::new() };
        let id = ctx.catalog.insert(table);
        for _ in 0..ctx.rng.random_range(1..=3) {
            add_partition(&mut ctx, id).await?;
        }
        Ok(())
    }
);

/// Adds the next range partition to partitioned table `parent`.
async fn add_partition(
    ctx: &mut ActionContext<'_>,
    parent: super::catalog::TableId,
) -> Result<(), ActionError> {
    let Some(table) = ctx.catalog.get(parent) else {
        return Err(no_target("the partitioned table is gone"));
    };
    let TableKind::Partitioned { partitions, .. } = &table.kind else {
        return Err(no_target("not a partitioned table"));
    };
    let from = partitions.iter().map(|p| p.to).max().unwrap_or(0);
    let to = from + 1_000;
    // In the parent's schema: `sales.orders` gets `sales.w0_orders_part3`.
    let qualifier = schema_qualifier(&table.name);
    let bare: String = table.name[qualifier.len()..]
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let name = format!(
        "{qualifier}{}",
        ctx.catalog.fresh_name(&format!("{bare}_part"))
    );
    ctx.sql
        .run(&format!(
            "CREATE TABLE {name} PARTITION OF {} FOR VALUES FROM ({from}) TO ({to})",
            table.name
        ))
        .await?;
    let mut partition = Table::new(name, table.columns.clone());
    partition.access_method = Some("heap".to_owned());
    // If the parent was dropped meanwhile, the partition went with it.
    ctx.catalog.insert_partition(parent, partition, from, to);
    Ok(())
}

action!(
    /// Drops a plain or partitioned table (with its partitions).
    DropTable,
    |ctx| {
        let table = random_table(&mut ctx, holds_rows).ok_or_else(|| no_target("no table to drop"))?;
        ctx.sql.run(&format!("DROP TABLE {}", table.name)).await?;
        ctx.catalog.remove(table.id);
        Ok(())
    }
);

/// One change to a table record, published after its SQL succeeded.
type TableChange = Box<dyn Fn(&mut Table) + Send + Sync>;

action!(
    /// Alters a plain table with 1 to 5 clauses: add or drop a column, set or drop a
    /// default, set or drop NOT NULL.
    AlterTable,
    |ctx| {
        let table = random_table(&mut ctx, is_normal).ok_or_else(|| no_target("no plain table to alter"))?;
        let mut clauses = Vec::new();
        let mut changes: Vec<TableChange> = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for _ in 0..ctx.rng.random_range(1..=5) {
            let plain: Vec<&Column> = table
                .columns
                .iter()
                .filter(|c| !c.primary_key && c.generated.is_none() && c.identity.is_none() && !touched.contains(&c.name))
                .filter(|c| !(table.columns.iter().any(|g| g.generated.is_some()) && c.name == "id"))
                .collect();
            match (ctx.rng.random_range(0..5), pick(ctx.rng, &plain)) {
                (0, _) | (_, None) => {
                    let name = ctx.catalog.fresh_name("a");
                    let (column, sql) = random_column(ctx.rng, name);
                    clauses.push(format!("ADD COLUMN {sql}"));
                    touched.push(column.name.clone());
                    changes.push(Box::new(move |t: &mut Table| t.columns.push(column.clone())));
                }
                (1, Some(column)) => {
                    let name = column.name.clone();
                    clauses.push(format!("DROP COLUMN {name}"));
                    touched.push(name.clone());
                    changes.push(Box::new(move |t: &mut Table| {
                        t.columns.retain(|c| c.name != name);
                        // The server drops the indexes and foreign keys on the column too.
                        t.indexes.retain(|i| i.columns.iter().all(|(c, _)| *c != name));
                        t.foreign_keys.retain(|fk| !fk.columns.contains(&name));
                    }));
                }
                (2, Some(column)) if column.default.is_some() => {
                    let name = column.name.clone();
                    clauses.push(format!("ALTER COLUMN {name} DROP DEFAULT"));
                    touched.push(name.clone());
                    changes.push(Box::new(move |t: &mut Table| {
                        if let Some(c) = t.columns.iter_mut().find(|c| c.name == name) {
                            c.default = None;
                        }
                    }));
                }
                (3, Some(column)) if column.nullable => {
                    let name = column.name.clone();
                    clauses.push(format!("ALTER COLUMN {name} SET NOT NULL"));
                    touched.push(name.clone());
                    changes.push(Box::new(move |t: &mut Table| {
                        if let Some(c) = t.columns.iter_mut().find(|c| c.name == name) {
                            c.nullable = false;
                        }
                    }));
                }
                (_, Some(column)) if !column.nullable => {
                    let name = column.name.clone();
                    clauses.push(format!("ALTER COLUMN {name} DROP NOT NULL"));
                    touched.push(name.clone());
                    changes.push(Box::new(move |t: &mut Table| {
                        if let Some(c) = t.columns.iter_mut().find(|c| c.name == name) {
                            c.nullable = true;
                        }
                    }));
                }
                (_, Some(column)) => {
                    let name = column.name.clone();
                    let (written, rendered) = match column.ty {
                        ColumnType::Int | ColumnType::BigInt => ("1", "1".to_owned()),
                        ColumnType::Text => ("'y'", "'y'::text".to_owned()),
                        ColumnType::Bool => ("true", "true".to_owned()),
                        _ => continue,
                    };
                    clauses.push(format!("ALTER COLUMN {name} SET DEFAULT {written}"));
                    touched.push(name.clone());
                    changes.push(Box::new(move |t: &mut Table| {
                        if let Some(c) = t.columns.iter_mut().find(|c| c.name == name) {
                            c.default = Some(rendered.clone());
                        }
                    }));
                }
            }
        }
        if clauses.is_empty() {
            return Ok(());
        }
        ctx.sql.run(&format!("ALTER TABLE {} {}", table.name, clauses.join(", "))).await?;
        ctx.catalog.update(table.id, |t| {
            for change in &changes {
                change(t);
            }
        });
        Ok(())
    }
);

action!(
    /// Renames a table; its id, and so every reference to it, stays the same.
    RenameTable,
    |ctx| {
        let table = random_table(&mut ctx, |_| true).ok_or_else(|| no_target("no table to rename"))?;
        let name = ctx.catalog.fresh_name("r");
        ctx.sql.run(&format!("ALTER TABLE {} RENAME TO {name}", table.name)).await?;
        // A table of another schema than the session's stays in it.
        let renamed = format!("{}{name}", schema_qualifier(&table.name));
        ctx.catalog.update(table.id, |t| t.name = renamed.clone());
        Ok(())
    }
);

action!(
    /// Creates an index on 1 to 3 columns of a plain or partitioned table, in random
    /// order; one in ten is unique.
    CreateIndex,
    |ctx| {
        let table = random_table(&mut ctx, holds_rows).ok_or_else(|| no_target("no table to index"))?;
        let candidates: Vec<&Column> = table.columns.iter().filter(|c| !matches!(c.ty, ColumnType::Other(_))).collect();
        let mut columns: Vec<(String, SortOrder)> = Vec::new();
        for _ in 0..ctx.rng.random_range(1..=3) {
            if let Some(column) = pick(ctx.rng, &candidates) {
                if columns.iter().all(|(c, _)| *c != column.name) {
                    let order = if ctx.rng.random_bool(0.3) { SortOrder::Desc } else { SortOrder::Asc };
                    columns.push((column.name.clone(), order));
                }
            }
        }
        if columns.is_empty() {
            return Err(no_target("no column to index"));
        }
        let unique = ctx.rng.random_bool(0.1);
        let name = ctx.catalog.fresh_name("i");
        let list: Vec<String> = columns
            .iter()
            .map(|(c, o)| format!("{c}{}", if *o == SortOrder::Desc { " DESC" } else { "" }))
            .collect();
        ctx.sql
            .run(&format!(
                "CREATE {}INDEX {name} ON {} ({})",
                if unique { "UNIQUE " } else { "" },
                table.name,
                list.join(", ")
            ))
            .await?;
        let index = Index { name, unique, columns };
        ctx.catalog.update(table.id, |t| {
            // A column dropped since the index was made took the index with it.
            if index.columns.iter().all(|(c, _)| t.column(c).is_some()) {
                t.indexes.push(index.clone());
                t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
            }
        });
        Ok(())
    }
);

action!(
    /// Drops a random index.
    DropIndex,
    |ctx| {
        let table = random_table(&mut ctx, |t| !t.indexes.is_empty()).ok_or_else(|| no_target("no index to drop"))?;
        let Some(index) = pick(ctx.rng, &table.indexes) else {
            return Err(no_target("no index to drop"));
        };
        let name = index.name.clone();
        // An index lives in its table's schema.
        ctx.sql.run(&format!("DROP INDEX {}{name}", schema_qualifier(&table.name))).await?;
        ctx.catalog.update(table.id, |t| t.indexes.retain(|i| i.name != name));
        Ok(())
    }
);

action!(
    /// Adds the next range partition to a partitioned table.
    CreatePartition,
    |ctx| {
        let table = random_table(&mut ctx, |t| matches!(t.kind, TableKind::Partitioned { .. }))
            .ok_or_else(|| no_target("no partitioned table"))?;
        add_partition(&mut ctx, table.id).await
    }
);

action!(
    /// Drops a partition.
    DropPartition,
    |ctx| {
        let table = random_table(&mut ctx, |t| matches!(t.kind, TableKind::PartitionOf(_)))
            .ok_or_else(|| no_target("no partition to drop"))?;
        ctx.sql.run(&format!("DROP TABLE {}", table.name)).await?;
        ctx.catalog.remove(table.id);
        Ok(())
    }
);

action!(
    /// Inserts 1 to 10 rows into a table.
    InsertSomeRows,
    |ctx| {
        let table = random_table(&mut ctx, holds_rows).ok_or_else(|| no_target("no table to insert into"))?;
        let rows = ctx.rng.random_range(1..=10);
        insert_rows(&mut ctx, &table, rows).await.map(|_| ())
    }
);

action!(
    /// Updates one column of one row.
    UpdateOneRow,
    |ctx| {
        let table = random_table(&mut ctx, holds_rows).ok_or_else(|| no_target("no table to update"))?;
        let candidates: Vec<&Column> = writable(&table).into_iter().filter(|c| !c.primary_key).collect();
        let column = pick(ctx.rng, &candidates).ok_or_else(|| no_target("no column to update"))?;
        let offset = ctx.rng.random_range(0..50);
        let new = value(ctx.rng, &column.ty);
        let key = table.primary_key().first().map(|c| c.name.clone()).unwrap_or_else(|| "ctid".to_owned());
        ctx.sql
            .run(&format!(
                "UPDATE {t} SET {c} = {new} WHERE {key} = (SELECT {key} FROM {t} ORDER BY {key} LIMIT 1 OFFSET {offset})",
                t = table.name,
                c = column.name
            ))
            .await?;
        Ok(())
    }
);

action!(
    /// Deletes 1 to 5 rows.
    DeleteSomeRows,
    |ctx| {
        let table = random_table(&mut ctx, holds_rows).ok_or_else(|| no_target("no table to delete from"))?;
        let limit = ctx.rng.random_range(1..=5);
        ctx.sql
            .run(&format!(
                "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} ORDER BY random() LIMIT {limit})",
                t = table.name
            ))
            .await?;
        Ok(())
    }
);

action!(
    /// Reads rows: a count, a range scan or an aggregate.
    SelectQuery,
    |ctx| {
        let table = random_table(&mut ctx, |_| true).ok_or_else(|| no_target("no table to read"))?;
        let sql = match ctx.rng.random_range(0..3) {
            0 => format!("SELECT count(*) FROM {}", table.name),
            1 => format!("SELECT * FROM {} LIMIT {}", table.name, ctx.rng.random_range(1..50)),
            _ => match table.columns.iter().find(|c| matches!(c.ty, ColumnType::Int | ColumnType::BigInt)) {
                Some(c) => format!("SELECT min({c}), max({c}), avg({c}) FROM {t}", c = c.name, t = table.name),
                None => format!("SELECT count(*) FROM {}", table.name),
            },
        };
        ctx.sql.run(&sql).await?;
        Ok(())
    }
);

/// A transaction of 2 to 10 data actions, each under a savepoint (a failed one rolls
/// back to it), at an isolation level drawn by weight (read committed 80, repeatable
/// read 15, serializable 5); one in ten ends in a rollback. DDL is left out: a
/// rolled-back DDL would have to be taken back from the catalog too.
#[derive(Clone)]
pub struct Transaction {
    actions: ActionRegistry,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("actions", &self.actions.list())
            .finish()
    }
}

impl Default for Transaction {
    fn default() -> Self {
        let mut actions = ActionRegistry::new();
        for (name, action) in [
            (
                "insert_some_rows",
                Arc::new(InsertSomeRows) as Arc<dyn Action>,
            ),
            ("update_one_row", Arc::new(UpdateOneRow)),
            ("delete_some_rows", Arc::new(DeleteSomeRows)),
            ("select_query", Arc::new(SelectQuery)),
        ] {
            // Distinct names and non-negative weights: cannot fail.
            let _ = actions.insert(name, 1000, action);
        }
        Transaction { actions }
    }
}

impl Action for Transaction {
    fn run<'a>(&'a self, ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let ActionContext { catalog, rng, sql } = ctx;
            let level = match rng.random_range(0..100) {
                0..80 => "READ COMMITTED",
                80..95 => "REPEATABLE READ",
                _ => "SERIALIZABLE",
            };
            sql.run(&format!("BEGIN ISOLATION LEVEL {level}")).await?;
            for step in 0..rng.random_range(2..=10) {
                sql.run(&format!("SAVEPOINT s{step}")).await?;
                let Some((_, action)) = self.actions.pick(rng) else {
                    break;
                };
                let action = Arc::clone(action);
                if let Err(error) = action.run(ActionContext { catalog, rng, sql }).await {
                    if error.is_connection_lost() {
                        return Err(error);
                    }
                    let undo = sql.run(&format!("ROLLBACK TO SAVEPOINT s{step}")).await;
                    if let Err(undo) = undo {
                        let _ = sql.run("ROLLBACK").await;
                        return Err(undo.into());
                    }
                }
            }
            let end = if rng.random_bool(0.1) {
                "ROLLBACK"
            } else {
                "COMMIT"
            };
            if let Err(error) = sql.run(end).await {
                let _ = sql.run("ROLLBACK").await;
                return Err(error.into());
            }
            Ok(())
        })
    }
}

/// One action made of others, run in order; the first failure ends it.
#[derive(Clone, Default)]
pub struct Composite {
    parts: Vec<Arc<dyn Action>>,
}

impl Composite {
    /// The parts, in order.
    pub fn new(parts: Vec<Arc<dyn Action>>) -> Self {
        Composite { parts }
    }
}

impl Action for Composite {
    fn run<'a>(&'a self, ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let ActionContext { catalog, rng, sql } = ctx;
            for part in &self.parts {
                part.run(ActionContext { catalog, rng, sql }).await?;
            }
            Ok(())
        })
    }
}

/// A fixed SQL string.
#[derive(Clone, Debug)]
pub struct SqlAction {
    sql: String,
}

impl SqlAction {
    /// Runs `sql` as it is.
    pub fn new(sql: impl Into<String>) -> Self {
        SqlAction { sql: sql.into() }
    }
}

impl Action for SqlAction {
    fn run<'a>(&'a self, ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            ctx.sql.run(&self.sql).await?;
            Ok(())
        })
    }
}

/// SQL with a `{table}` placeholder, filled with a random existing table.
#[derive(Clone, Debug)]
pub struct TableSqlAction {
    template: String,
}

impl TableSqlAction {
    /// Runs `template` with `{table}` replaced by a random table's name.
    pub fn new(template: impl Into<String>) -> Self {
        TableSqlAction {
            template: template.into(),
        }
    }
}

impl Action for TableSqlAction {
    fn run<'a>(&'a self, mut ctx: ActionContext<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let table = random_table(&mut ctx, |_| true)
                .ok_or_else(|| no_target(&format!("no table for `{}`", self.template)))?;
            ctx.sql
                .run(&self.template.replace("{table}", &table.name))
                .await?;
            Ok(())
        })
    }
}

#[derive(Clone)]
struct Entry {
    name: String,
    weight: u64,
    action: Arc<dyn Action>,
}

/// Named actions with weights; draws one with probability weight / total.
///
/// Cloning a registry makes an independent copy (the actions are shared, the weights
/// and the set are not): the default registry, a node's copy and a worker's copy can
/// each change without touching the others.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use rand::SeedableRng;
/// use stormchor_postgres::{ActionRegistry, SqlAction};
///
/// let defaults = ActionRegistry::default_actions();
/// let mut node = defaults.clone();
/// node.set_weight("drop_table", 0).expect("known action");
/// node.insert("vacuum", 50, Arc::new(SqlAction::new("VACUUM"))).expect("new action");
/// assert_eq!(defaults.weight("drop_table"), Ok(100), "the default copy is untouched");
/// let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
/// assert!(node.pick(&mut rng).is_some_and(|(name, _)| name != "drop_table"));
/// assert!(node.set_weight("no_such_action", 1).is_err());
/// ```
#[derive(Clone, Default)]
pub struct ActionRegistry {
    entries: Vec<Entry>,
}

impl fmt::Debug for ActionRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|e| (&e.name, e.weight)))
            .finish()
    }
}

fn check_weight(name: &str, weight: i64) -> Result<u64, ActionError> {
    u64::try_from(weight).map_err(|_| {
        registry_error(format!(
            "action {name}: weight {weight} is negative; weights are 0 or more"
        ))
    })
}

impl ActionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ActionRegistry::default()
    }

    /// The built-in actions with their default weights.
    pub fn default_actions() -> Self {
        let mut registry = ActionRegistry::new();
        let builtins: [(&str, i64, Arc<dyn Action>); 14] = [
            ("create_table", 100, Arc::new(CreateTable)),
            (
                "create_partitioned_table",
                100,
                Arc::new(CreatePartitionedTable),
            ),
            ("drop_table", 100, Arc::new(DropTable)),
            ("alter_table", 100, Arc::new(AlterTable)),
            ("rename_table", 100, Arc::new(RenameTable)),
            ("create_index", 100, Arc::new(CreateIndex)),
            ("drop_index", 100, Arc::new(DropIndex)),
            ("create_partition", 100, Arc::new(CreatePartition)),
            ("drop_partition", 100, Arc::new(DropPartition)),
            ("insert_some_rows", 1000, Arc::new(InsertSomeRows)),
            ("update_one_row", 1000, Arc::new(UpdateOneRow)),
            ("delete_some_rows", 1000, Arc::new(DeleteSomeRows)),
            ("select_query", 1000, Arc::new(SelectQuery)),
            ("transaction", 100, Arc::new(Transaction::default())),
        ];
        for (name, weight, action) in builtins {
            // Distinct names and non-negative weights: cannot fail.
            let _ = registry.insert(name, weight, action);
        }
        registry
    }

    /// Adds an action; a taken name or a negative weight is an error.
    pub fn insert(
        &mut self,
        name: &str,
        weight: i64,
        action: Arc<dyn Action>,
    ) -> Result<(), ActionError> {
        let weight = check_weight(name, weight)?;
        if self.entries.iter().any(|e| e.name == name) {
            return Err(registry_error(format!(
                "an action named {name} is already registered"
            )));
        }
        self.entries.push(Entry {
            name: name.to_owned(),
            weight,
            action,
        });
        Ok(())
    }

    /// Adds a custom SQL action.
    pub fn insert_sql(&mut self, name: &str, weight: i64, sql: &str) -> Result<(), ActionError> {
        self.insert(name, weight, Arc::new(SqlAction::new(sql)))
    }

    /// Adds a custom SQL action whose `{table}` is filled with a random table.
    pub fn insert_table_sql(
        &mut self,
        name: &str,
        weight: i64,
        template: &str,
    ) -> Result<(), ActionError> {
        if !template.contains("{table}") {
            return Err(registry_error(format!(
                "action {name}: `{template}` has no {{table}} placeholder"
            )));
        }
        self.insert(name, weight, Arc::new(TableSqlAction::new(template)))
    }

    /// Removes an action by name.
    pub fn remove(&mut self, name: &str) -> Result<Arc<dyn Action>, ActionError> {
        let index = self.position(name)?;
        Ok(self.entries.remove(index).action)
    }

    fn position(&self, name: &str) -> Result<usize, ActionError> {
        self.entries
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
                registry_error(format!(
                    "no action named {name}; known actions: {}",
                    known.join(", ")
                ))
            })
    }

    /// An action's weight.
    pub fn weight(&self, name: &str) -> Result<u64, ActionError> {
        Ok(self.entries[self.position(name)?].weight)
    }

    /// Changes an action's weight.
    pub fn set_weight(&mut self, name: &str, weight: i64) -> Result<(), ActionError> {
        let weight = check_weight(name, weight)?;
        let index = self.position(name)?;
        self.entries[index].weight = weight;
        Ok(())
    }

    /// Names and weights, in insertion order.
    pub fn list(&self) -> Vec<(String, u64)> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.weight))
            .collect()
    }

    /// The action called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Action>, ActionError> {
        Ok(Arc::clone(&self.entries[self.position(name)?].action))
    }

    /// Draws an action: one of weight `w` comes with probability `w / total` exactly;
    /// weight 0 never. `None` when every weight is 0.
    pub fn pick(&self, rng: &mut SmallRng) -> Option<(&str, &Arc<dyn Action>)> {
        let total: u64 = self.entries.iter().map(|e| e.weight).sum();
        if total == 0 {
            return None;
        }
        let mut draw = rng.random_range(0..total);
        for entry in &self.entries {
            if draw < entry.weight {
                return Some((&entry.name, &entry.action));
            }
            draw -= entry.weight;
        }
        None
    }

    /// Runs the action called `name` once; its error carries its name.
    pub async fn run(&self, name: &str, ctx: ActionContext<'_>) -> Result<(), ActionError> {
        let action = self.get(name)?;
        action.run(ctx).await.map_err(|mut error| {
            error.action = name.to_owned();
            error
        })
    }
}
