//! The schema: discover it into a role's catalog (its share of it, for a member of a
//! family), create the ledger table, load SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{
    Catalog, TableId, TableKind, create_ledger, discover_into, discover_schemas, schema_qualifier,
};
use stormchor_runtime::EffectFailure;

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::node::{Node, lock};
use crate::value::Slot;

/// Reads the schema `public` of the server in `on` (or the run's
/// [`discover_schemas`](crate::ScenarioOptions::discover_schemas)) into this role's catalog. A member
/// `k` of a family of `n` (the run's workers) keeps only its share: the groups of
/// tables linked by foreign keys or partitioning whose position is `k` modulo `n`, so
/// that members never change one another's tables and each catalog stays exact. The
/// output is the number of tables kept.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Discover, StressLoad, ValidateCatalog};
/// use stormchor_kit::slots::PRIMARY;
/// use std::time::Duration;
///
/// // Each worker discovers its share, stresses it, and checks its catalog still holds.
/// let steps = (
///     Discover { on: PRIMARY },
///     StressLoad { on: PRIMARY, duration: Duration::from_secs(5) },
///     ValidateCatalog { on: PRIMARY },
/// );
/// assert_eq!(format!("{:?}", steps.0), "Discover { on: primary }");
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct Discover {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for Discover {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        let server = node.value(self.on)?;
        if !server.controlled && !node.options().touch_user_tables {
            return Err(EffectFailure::permanent(format!(
                "refusing to put the tables of your server (`{}`) into {}'s catalog: the stress \
                 mix would change and drop them; allow it explicitly (--on-user-tables) or run on \
                 a throwaway cluster",
                server.connection,
                node.role()
            )));
        }
        let client = connect(&server.connection).await?;
        let catalog = node.catalog();
        match &node.options().discover_schemas {
            Some(schemas) => discover_schemas(&client, schemas, catalog).await,
            None => discover_into(&client, "public", catalog).await,
        }
        .map_err(failed)?;
        if let Some(k) = node.member() {
            keep_share(catalog, k, node.options().workers.max(1));
        }
        let names: Vec<String> = catalog
            .snapshot()
            .values()
            .map(|t| t.name.clone())
            .collect();
        let kept = names.len() as u64;
        *lock(&node.share) = names;
        node.journal().count("tables_discovered", kept);
        Ok(kept)
    }
}

/// Keeps in `catalog` only member `k`'s share (of `n` members): the groups of linked
/// tables that hold a table member `k` made (named `w<k>_...`), and of the groups
/// no member made, those whose position (in the order of their first table's name)
/// is `k` modulo `n`.
pub fn keep_share(catalog: &Catalog, k: u16, n: u16) {
    let snapshot = catalog.snapshot();
    // Union-find over table ids: foreign keys and partitions link tables.
    let mut parent: BTreeMap<TableId, TableId> = snapshot.keys().map(|id| (*id, *id)).collect();
    fn root(parent: &mut BTreeMap<TableId, TableId>, id: TableId) -> TableId {
        let mut at = id;
        while let Some(&up) = parent.get(&at) {
            if up == at {
                break;
            }
            at = up;
        }
        parent.insert(id, at);
        at
    }
    let link = |a: TableId, b: TableId, parent: &mut BTreeMap<TableId, TableId>| {
        if parent.contains_key(&a) && parent.contains_key(&b) {
            let (ra, rb) = (root(parent, a), root(parent, b));
            if ra != rb {
                parent.insert(ra.max(rb), ra.min(rb));
            }
        }
    };
    for table in snapshot.values() {
        for fk in &table.foreign_keys {
            link(table.id, fk.references, &mut parent);
        }
        if let TableKind::PartitionOf(of) = table.kind {
            link(table.id, of, &mut parent);
        }
    }
    let mut groups: BTreeMap<TableId, BTreeSet<String>> = BTreeMap::new();
    let ids: Vec<TableId> = snapshot.keys().copied().collect();
    for id in &ids {
        let group = root(&mut parent, *id);
        if let Some(table) = snapshot.get(id) {
            groups.entry(group).or_default().insert(table.name.clone());
        }
    }
    // A group holding a table a member made (named `w<j>_...`) stays that member's;
    // the others are dealt out in the order of their first table's name.
    let maker = |names: &BTreeSet<String>| {
        names
            .iter()
            .filter_map(|name| {
                // `schema.w1_t3` is member 1's too.
                name[schema_qualifier(name).len()..]
                    .strip_prefix('w')?
                    .split_once('_')?
                    .0
                    .parse::<u16>()
                    .ok()
            })
            .filter(|j| *j < n)
            .min()
    };
    let mut unclaimed: Vec<(String, TableId)> = Vec::new();
    let mut mine: BTreeSet<TableId> = BTreeSet::new();
    for (group, names) in &groups {
        match maker(names) {
            Some(j) if j == k => {
                mine.insert(*group);
            }
            Some(_) => {}
            None => unclaimed.extend(names.first().map(|first| (first.clone(), *group))),
        }
    }
    unclaimed.sort();
    mine.extend(
        unclaimed
            .iter()
            .enumerate()
            .filter(|(position, _)| *position % usize::from(n) == usize::from(k))
            .map(|(_, (_, group))| *group),
    );
    for id in ids {
        if !mine.contains(&root(&mut parent, id)) {
            // Partitions go with their parent; removing one that is gone is harmless.
            let _ = catalog.remove(id);
        }
    }
}

/// Creates the ledger table on the server in `on` (if it is not there).
///
/// # Example
/// ```
/// use stormchor_kit::effects::{CreateLedger, WriteLedger};
/// use stormchor_kit::slots::{LEDGER, PRIMARY};
/// use stormchor_kit::DbEffect;
/// use std::time::Duration;
///
/// let create = CreateLedger { on: PRIMARY };
/// let write = WriteLedger { on: PRIMARY, duration: Duration::from_secs(2) }.into_slot(LEDGER);
/// assert_eq!(format!("{create:?}"), "CreateLedger { on: primary }");
/// # let _ = write;
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct CreateLedger {
    /// The server.
    pub on: Slot<ServerInfo>,
}

impl DbEffect for CreateLedger {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        create_ledger(&client).await.map_err(failed)
    }
}

/// Where [`RunSql`] takes its SQL from.
///
/// # Example
/// ```
/// use stormchor_kit::effects::schema::SqlSource;
///
/// let inline = SqlSource::Text("CREATE TABLE t (id int PRIMARY KEY)");
/// let from_a_file = SqlSource::File("schema.sql".into());
/// assert_ne!(inline, from_a_file);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum SqlSource {
    /// This text.
    Text(&'static str),
    /// This file.
    File(PathBuf),
    /// The run's `--schema` file if it has one, else this text; on a user's server
    /// (`--target`) nothing (its own schema is used), and `--schema` is an error.
    SchemaOption(&'static str),
}

/// Runs SQL (one or more statements) on the server in `on`; an error names the source
/// and the line of the failing statement where the server says it.
///
/// # Example
/// ```
/// use stormchor_kit::effects::schema::SqlSource;
/// use stormchor_kit::effects::RunSql;
/// use stormchor_kit::slots::PRIMARY;
///
/// let setup = RunSql { on: PRIMARY, sql: SqlSource::Text("CREATE TABLE t (id int PRIMARY KEY, v int)") };
/// assert!(matches!(setup.sql, SqlSource::Text(_)));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RunSql {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// The SQL.
    pub sql: SqlSource,
}

impl DbEffect for RunSql {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        let (text, source) = match &self.sql {
            SqlSource::Text(text) => ((*text).to_owned(), "the built-in SQL".to_owned()),
            SqlSource::File(path) => (read(path).await?, path.display().to_string()),
            // A user's server already has its schema: nothing is loaded into it.
            SqlSource::SchemaOption(_) if !node.value(self.on)?.controlled => {
                if node.options().schema_file.is_some() {
                    return Err(EffectFailure::permanent(
                        "--schema loads a schema into a throwaway cluster; with --target the \
                         server's own schema is used",
                    ));
                }
                return Ok(());
            }
            SqlSource::SchemaOption(default) => match &node.options().schema_file {
                Some(path) => (read(path).await?, path.display().to_string()),
                None => ((*default).to_owned(), "the built-in schema".to_owned()),
            },
        };
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        client.batch_execute(&text).await.map_err(|e| {
            let position = e
                .as_db_error()
                .and_then(|db| match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(at)) => Some(*at as usize),
                    _ => None,
                })
                .map(|at| {
                    let line = text[..at.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            let message = e.as_db_error().map_or(e.to_string(), |db| {
                format!("{} (SQLSTATE {})", db.message(), db.code().code())
            });
            failed(format!("loading {source}{position}: {message}"))
        })
    }
}

async fn read(path: &PathBuf) -> Result<String, EffectFailure> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| failed(format!("cannot read the SQL file {}: {e}", path.display())))
}
