//! Schema discovery: reading an existing schema from the system catalogs into a
//! [`Catalog`], and validating a catalog against the live schema.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::catalog::{
    Catalog, Column, ColumnType, ForeignKey, Identity, Index, RangePartition, SortOrder, Table,
    TableId, TableKind,
};
use super::cluster::PgError;

const TABLES: &str = "
SELECT c.oid, c.relname, c.relkind::text, am.amname::text, ts.spcname::text,
       (SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid),
       pg_get_expr(c.relpartbound, c.oid),
       (SELECT a.attname::text FROM pg_partitioned_table pt
          JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
         WHERE pt.partrelid = c.oid AND pt.partstrat = 'r'),
       (SELECT pn.nspname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
          JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_am am ON am.oid = c.relam
  LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
 ORDER BY c.relname";

const COLUMNS: &str = "
SELECT a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text, a.attidentity::text
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum";

const PRIMARY_KEYS: &str = "
SELECT con.conrelid, a.attname::text
  FROM pg_constraint con
  JOIN pg_namespace n ON n.oid = con.connamespace
  JOIN LATERAL unnest(con.conkey) AS k(attnum) ON true
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
 WHERE n.nspname = $1 AND con.contype = 'p'";

const INDEXES: &str = "
SELECT i.indrelid, ic.relname::text, i.indisunique,
       array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord),
       array(SELECT (i.indoption[k.ord - 1] & 1) = 1 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              WHERE k.attnum > 0 ORDER BY k.ord)
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT i.indisprimary
   AND NOT EXISTS (SELECT 1 FROM pg_inherits x WHERE x.inhrelid = i.indexrelid)";

const FOREIGN_KEYS: &str = "
SELECT con.conrelid, con.conname::text, ref.relname::text, refn.nspname::text,
       array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
       array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)
  FROM pg_constraint con
  JOIN pg_class ref ON ref.oid = con.confrelid
  JOIN pg_namespace refn ON refn.oid = ref.relnamespace
  JOIN pg_namespace n ON n.oid = con.connamespace
 WHERE n.nspname = $1 AND con.contype = 'f' AND con.conparentid = 0";

fn query_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    move |source| PgError::Sql {
        what: format!("discovering {what}"),
        source,
    }
}

/// Parses `FOR VALUES FROM (a) TO (b)` with integer bounds.
fn range_bounds(bound: &str) -> Option<(i64, i64)> {
    let rest = bound.trim().strip_prefix("FOR VALUES FROM (")?;
    let (from, rest) = rest.split_once(") TO (")?;
    let to = rest.strip_suffix(')')?;
    Some((
        from.trim().trim_matches('\'').parse().ok()?,
        to.trim().trim_matches('\'').parse().ok()?,
    ))
}

/// Which schemas discovery reads.
///
/// A table of the session's current schema (the first of its `search_path` that
/// exists, `public` by default) is named as it is (`orders`); a table of any other
/// schema by its qualified name (`sales.orders`, the schema quoted when it must be),
/// which every statement of the stress mix can use as it is.
///
/// # Example
/// ```
/// use stormchor_postgres::{Schemas, qualified_name, schema_qualifier};
///
/// let schemas = Schemas::Named(vec!["public".into(), "sales".into()]);
/// assert_ne!(schemas, Schemas::AllUser);
/// assert_eq!(qualified_name("sales", "orders", Some("public")), "sales.orders");
/// assert_eq!(qualified_name("public", "orders", Some("public")), "orders");
/// assert_eq!(qualified_name("Big Sales", "t", None), "\"Big Sales\".t");
/// assert_eq!(
///     qualified_name("public", "t; DROP TABLE x; --", Some("public")),
///     "\"t; DROP TABLE x; --\""
/// );
/// assert_eq!(schema_qualifier("\"Big Sales\".t"), "\"Big Sales\".");
/// assert_eq!(schema_qualifier("orders"), "");
/// assert_eq!("all".parse(), Ok(Schemas::AllUser));
/// assert_eq!("public, sales".parse(), Ok(schemas));
/// assert!("public,,sales".parse::<Schemas>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schemas {
    /// These schemas; a name the server does not have is an error naming it.
    Named(Vec<String>),
    /// Every schema but the system's (`pg_catalog`, `information_schema`, `pg_toast`,
    /// the temporary ones).
    AllUser,
}

impl std::str::FromStr for Schemas {
    type Err = String;

    /// `all` for [`Schemas::AllUser`], else schema names separated by commas.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "all" {
            return Ok(Schemas::AllUser);
        }
        let names: Vec<String> = text.split(',').map(|n| n.trim().to_owned()).collect();
        if names.iter().any(String::is_empty) {
            return Err(format!(
                "`{text}`: give schema names separated by commas (`public,sales`), or `all`"
            ));
        }
        Ok(Schemas::Named(names))
    }
}

/// How a table of `schema` is named in a catalog whose home schema is `home`: bare
/// in the home schema, `schema.table` elsewhere, each part quoted when it is not a
/// plain lowercase identifier. Every name the catalog holds (tables, columns, indexes,
/// constraints) is SQL text in this form, so the actions paste it into statements as
/// the identifier it is, never as SQL of its own.
pub fn qualified_name(schema: &str, table: &str, home: Option<&str>) -> String {
    if home == Some(schema) {
        ident(table)
    } else {
        format!("{}.{}", ident(schema), ident(table))
    }
}

/// An identifier as SQL text: as it is when it is a plain lowercase identifier, quoted
/// otherwise.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        super::quote_ident(name)
    }
}

/// The `schema.` part of a catalog table name (empty for a table of the home schema):
/// what a new object next to the table (a partition, a renamed table, an index to
/// drop) is qualified with.
pub fn schema_qualifier(name: &str) -> &str {
    let mut quoted = false;
    for (i, c) in name.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => return &name[..=i],
            _ => {}
        }
    }
    ""
}

/// The schemas of `selection` that exist, in order, or an error naming one that does not.
async fn resolve(client: &Client, selection: &Schemas) -> Result<Vec<String>, PgError> {
    let user: Vec<String> = client
        .query(
            "SELECT nspname::text FROM pg_namespace
              WHERE nspname NOT IN ('pg_catalog', 'information_schema')
                AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'
              ORDER BY nspname",
            &[],
        )
        .await
        .map_err(query_error("schemas"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    match selection {
        // Another run's schema of its own (`stormchor_run_...`, see `RunSchema`) is
        // that run's: `all` leaves it alone (naming it still takes it).
        Schemas::AllUser => Ok(user
            .into_iter()
            .filter(|schema| !schema.starts_with(super::run_schema::PREFIX))
            .collect()),
        Schemas::Named(names) => {
            for name in names {
                if !user.contains(name) {
                    return Err(PgError::UnknownSchema {
                        schema: name.clone(),
                        known: user.join(", "),
                    });
                }
            }
            Ok(names.clone())
        }
    }
}

/// Reads the tables of every schema of `selection` into `catalog`, replacing what it
/// held: those of the session's current schema under their own names, the others
/// qualified ([`Schemas`]). Foreign keys and partitions across schemas are kept. The
/// output is the number of tables; failures are as [`discover_into`]'s.
pub async fn discover_schemas(
    client: &Client,
    selection: &Schemas,
    catalog: &Catalog,
) -> Result<usize, PgError> {
    catalog.clear();
    let found = async {
        let schemas = resolve(client, selection).await?;
        let home: Option<String> = client
            .query_one("SELECT current_schema()::text", &[])
            .await
            .map_err(query_error("the current schema"))?
            .get(0);
        let mut tables = Vec::new();
        for schema in &schemas {
            tables.extend(discover_tables(client, schema, home.as_deref()).await?);
        }
        Ok(tables)
    }
    .await;
    fill(catalog, found, &format!("{selection:?}"))
}

/// Reads the tables of `schema` into `catalog`, replacing what it held.
///
/// Types map to [`ColumnType`]s; a type outside the supported set is kept as
/// [`ColumnType::Other`] with its SQL name, not dropped. If discovery fails, the
/// catalog is left empty, a warning naming the cause is logged, and the error returned.
/// Tables are named as they are in `schema` (a table of another schema that one of them
/// references by a foreign key, or is a partition of, is not read); for several
/// schemas see [`discover_schemas`].
pub async fn discover_into(
    client: &Client,
    schema: &str,
    catalog: &Catalog,
) -> Result<usize, PgError> {
    catalog.clear();
    let found = discover_tables(client, schema, Some(schema)).await;
    fill(catalog, found, schema)
}

/// Puts discovered tables into `catalog` (emptied), linking them by name.
fn fill(
    catalog: &Catalog,
    found: Result<Vec<(Table, Links)>, PgError>,
    schema: &str,
) -> Result<usize, PgError> {
    match found {
        Ok(tables) => {
            let count = tables.len();
            // First the tables, then the links between them, by name.
            let mut ids: BTreeMap<String, TableId> = BTreeMap::new();
            let mut links = Vec::new();
            for (table, link) in tables {
                let name = table.name.clone();
                ids.insert(name.clone(), catalog.insert(table));
                links.push((name, link));
            }
            for (name, link) in links {
                let Some(&id) = ids.get(&name) else { continue };
                for (fk_name, columns, referenced, referenced_columns) in link.foreign_keys {
                    if let Some(&references) = ids.get(&referenced) {
                        catalog.update(id, |t| {
                            t.foreign_keys.push(ForeignKey {
                                name: fk_name.clone(),
                                columns: columns.clone(),
                                references,
                                referenced_columns: referenced_columns.clone(),
                            });
                        });
                    }
                }
                if let Some(parent) = link.parent.as_ref().and_then(|p| ids.get(p)).copied() {
                    catalog.update(id, |t| t.kind = TableKind::PartitionOf(parent));
                    if let Some((from, to)) = link.bounds {
                        catalog.update(parent, |t| {
                            if let TableKind::Partitioned { partitions, .. } = &mut t.kind {
                                partitions.push(RangePartition {
                                    table: id,
                                    from,
                                    to,
                                });
                                partitions.sort_by_key(|p| p.from);
                            }
                        });
                    }
                }
            }
            Ok(count)
        }
        Err(error) => {
            catalog.clear();
            tracing::warn!(%error, schema, "schema discovery failed; the catalog is left empty");
            Err(error)
        }
    }
}

/// What links a discovered table to others, by name.
#[derive(Default)]
struct Links {
    parent: Option<String>,
    bounds: Option<(i64, i64)>,
    foreign_keys: Vec<(String, Vec<String>, String, Vec<String>)>,
}

async fn discover_tables(
    client: &Client,
    schema: &str,
    home: Option<&str>,
) -> Result<Vec<(Table, Links)>, PgError> {
    let mut tables: BTreeMap<u32, (Table, Links)> = BTreeMap::new();
    for row in client
        .query(TABLES, &[&schema])
        .await
        .map_err(query_error("tables"))?
    {
        let oid: u32 = row.get(0);
        let kind: String = row.get(2);
        let key: Option<String> = row.get::<_, Option<String>>(7).map(|k| ident(&k));
        let mut table = Table::new(
            qualified_name(schema, &row.get::<_, String>(1), home),
            Vec::new(),
        );
        table.access_method = row.get(3);
        table.tablespace = row.get(4);
        if kind == "p" {
            table.kind = TableKind::Partitioned {
                key: key.unwrap_or_default(),
                partitions: Vec::new(),
            };
        }
        let bound: Option<String> = row.get(6);
        let links = Links {
            parent: row
                .get::<_, Option<String>>(5)
                .zip(row.get::<_, Option<String>>(8))
                .map(|(parent, parent_schema)| qualified_name(&parent_schema, &parent, home)),
            bounds: bound.as_deref().and_then(range_bounds),
            foreign_keys: Vec::new(),
        };
        tables.insert(oid, (table, links));
    }
    for row in client
        .query(COLUMNS, &[&schema])
        .await
        .map_err(query_error("columns"))?
    {
        let Some((table, _)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        let generated: String = row.get(5);
        let identity: String = row.get(6);
        let expression: Option<String> = row.get(4);
        let mut column = Column::new(
            ident(&row.get::<_, String>(1)),
            ColumnType::from_sql(row.get(2)),
        );
        column.nullable = !row.get::<_, bool>(3);
        if generated == "s" {
            column.generated = expression;
        } else {
            column.default = expression;
        }
        column.identity = match identity.as_str() {
            "a" => Some(Identity::Always),
            "d" => Some(Identity::ByDefault),
            _ => None,
        };
        table.columns.push(column);
    }
    for row in client
        .query(PRIMARY_KEYS, &[&schema])
        .await
        .map_err(query_error("primary keys"))?
    {
        let Some((table, _)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        let name = ident(&row.get::<_, String>(1));
        if let Some(column) = table.columns.iter_mut().find(|c| c.name == name) {
            column.primary_key = true;
        }
    }
    for row in client
        .query(INDEXES, &[&schema])
        .await
        .map_err(query_error("indexes"))?
    {
        let Some((table, _)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        let names: Vec<String> = row.get(3);
        let descending: Vec<bool> = row.get(4);
        table.indexes.push(Index {
            name: ident(&row.get::<_, String>(1)),
            unique: row.get(2),
            columns: names
                .into_iter()
                .zip(descending.into_iter().chain(std::iter::repeat(false)))
                .map(|(name, desc)| {
                    (
                        ident(&name),
                        if desc {
                            SortOrder::Desc
                        } else {
                            SortOrder::Asc
                        },
                    )
                })
                .collect(),
        });
    }
    for (table, _) in tables.values_mut() {
        table.indexes.sort_by(|a, b| a.name.cmp(&b.name));
    }
    for row in client
        .query(FOREIGN_KEYS, &[&schema])
        .await
        .map_err(query_error("foreign keys"))?
    {
        let Some((_, links)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        let idents = |names: Vec<String>| names.iter().map(|n| ident(n)).collect::<Vec<_>>();
        links.foreign_keys.push((
            ident(&row.get::<_, String>(1)),
            idents(row.get(4)),
            qualified_name(&row.get::<_, String>(3), &row.get::<_, String>(2), home),
            idents(row.get(5)),
        ));
    }
    Ok(tables.into_values().collect())
}

/// A difference between the catalog and the live schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The table it concerns.
    pub table: String,
    /// What differs.
    pub what: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "table {}: {}", self.table, self.what)
    }
}

/// A table's description with references by name, for comparison.
fn describe(table: &Table, names: &BTreeMap<TableId, String>) -> BTreeMap<String, String> {
    let name_of = |id: &TableId| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("#{}", id.0))
    };
    let mut parts = BTreeMap::new();
    let kind = match &table.kind {
        TableKind::Normal => "normal".to_owned(),
        TableKind::Partitioned { key, partitions } => {
            let mut bounds: Vec<String> = partitions
                .iter()
                .map(|p| format!("{} [{}, {})", name_of(&p.table), p.from, p.to))
                .collect();
            bounds.sort();
            format!(
                "partitioned by range ({key}); partitions {}",
                bounds.join(", ")
            )
        }
        TableKind::PartitionOf(parent) => format!("partition of {}", name_of(parent)),
    };
    parts.insert("kind".to_owned(), kind);
    parts.insert(
        "access method".to_owned(),
        table
            .access_method
            .clone()
            .unwrap_or_else(|| "heap".to_owned()),
    );
    parts.insert(
        "tablespace".to_owned(),
        table
            .tablespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
    );
    let mut columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}{}{}{}{}",
                c.name,
                c.ty.sql(),
                if c.nullable { "" } else { " not null" },
                c.default
                    .as_ref()
                    .map(|d| format!(" default {d}"))
                    .unwrap_or_default(),
                c.generated
                    .as_ref()
                    .map(|g| format!(" generated ({g})"))
                    .unwrap_or_default(),
                if c.primary_key { " primary key" } else { "" },
                c.identity
                    .map(|i| format!(" identity {i:?}"))
                    .unwrap_or_default(),
            )
        })
        .collect();
    // Columns compare by name, not position: two workers adding columns to one table at
    // once publish in one order while the server may have applied them in the other.
    columns.sort();
    parts.insert("columns".to_owned(), columns.join(", "));
    let mut indexes: Vec<String> = table
        .indexes
        .iter()
        .map(|i| {
            format!(
                "{}{} ({:?})",
                if i.unique { "unique " } else { "" },
                i.name,
                i.columns
            )
        })
        .collect();
    indexes.sort();
    parts.insert("indexes".to_owned(), indexes.join(", "));
    let mut fks: Vec<String> = table
        .foreign_keys
        .iter()
        .map(|f| {
            format!(
                "{} ({:?}) -> {} ({:?})",
                f.name,
                f.columns,
                name_of(&f.references),
                f.referenced_columns
            )
        })
        .collect();
    fks.sort();
    parts.insert("foreign keys".to_owned(), fks.join(", "));
    parts
}

/// Rediscovers the live schemas of `selection` and reports every difference from
/// `catalog` (discovered with [`discover_schemas`] and the same selection).
pub async fn validate_schemas(
    client: &Client,
    selection: &Schemas,
    catalog: &Catalog,
) -> Result<Vec<Divergence>, PgError> {
    let live = Catalog::new();
    discover_schemas(client, selection, &live).await?;
    Ok(compare(catalog, &live))
}

/// Rediscovers the live schema and reports every difference from `catalog`.
///
/// An empty result means the catalog matches the database exactly.
pub async fn validate(
    client: &Client,
    schema: &str,
    catalog: &Catalog,
) -> Result<Vec<Divergence>, PgError> {
    let live = Catalog::new();
    discover_into(client, schema, &live).await?;
    Ok(compare(catalog, &live))
}

/// Every difference between two catalogs, tables matched by name.
pub fn compare(expected: &Catalog, live: &Catalog) -> Vec<Divergence> {
    let (expected, live) = (expected.snapshot(), live.snapshot());
    let names = |snapshot: &super::catalog::Snapshot| -> BTreeMap<TableId, String> {
        snapshot
            .iter()
            .map(|(id, t)| (*id, t.name.clone()))
            .collect()
    };
    let (expected_names, live_names) = (names(&expected), names(&live));
    let by_name = |snapshot: &super::catalog::Snapshot| -> BTreeMap<String, std::sync::Arc<Table>> {
        snapshot
            .values()
            .map(|t| (t.name.clone(), t.clone()))
            .collect()
    };
    let (expected, live) = (by_name(&expected), by_name(&live));
    let all: BTreeSet<&String> = expected.keys().chain(live.keys()).collect();
    let mut divergences = Vec::new();
    for name in all {
        match (expected.get(name), live.get(name)) {
            (Some(_), None) => divergences.push(Divergence {
                table: name.clone(),
                what: "in the catalog but not in the database".to_owned(),
            }),
            (None, Some(_)) => divergences.push(Divergence {
                table: name.clone(),
                what: "in the database but not in the catalog".to_owned(),
            }),
            (Some(e), Some(l)) => {
                let (e, l) = (describe(e, &expected_names), describe(l, &live_names));
                for (part, expected_part) in &e {
                    let live_part = l.get(part).cloned().unwrap_or_default();
                    if *expected_part != live_part {
                        divergences.push(Divergence {
                            table: name.clone(),
                            what: format!("{part} differ: catalog has [{expected_part}], database has [{live_part}]"),
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    divergences
}
