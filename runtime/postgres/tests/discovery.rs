//! Schema discovery and validation against real schemas: a hand-written file with
//! every supported feature, and `pgbench -i`.

use stormchor_postgres::{
    Catalog, ClusterOptions, Column, ColumnType, ForeignKey, Identity, Index, PgCluster,
    RangePartition, Schemas, SortOrder, Table, TableKind, compare, discover_into, discover_schemas,
    validate, validate_schemas,
};

fn column(name: &str, ty: ColumnType, nullable: bool) -> Column {
    Column {
        nullable,
        ..Column::new(name, ty)
    }
}

/// The catalog `fixtures/every_feature.sql` should be discovered as.
fn expected_every_feature() -> Catalog {
    let catalog = Catalog::new();
    let mut customers = Table::new(
        "customers",
        vec![
            Column {
                primary_key: true,
                identity: Some(Identity::Always),
                ..column("id", ColumnType::Int, false)
            },
            column("code", ColumnType::Char(8), false),
            Column {
                default: Some("'anonymous'::character varying".into()),
                ..column("name", ColumnType::Varchar(64), false)
            },
            column("note", ColumnType::Text, true),
            column("score", ColumnType::Real, true),
            Column {
                default: Some("0".into()),
                ..column("balance", ColumnType::Double, true)
            },
            column("credit", ColumnType::Numeric(Some((12, 2))), true),
            column("ratio", ColumnType::Numeric(None), true),
            Column {
                default: Some("true".into()),
                ..column("active", ColumnType::Bool, false)
            },
            column("photo", ColumnType::Bytea, true),
            column("joined", ColumnType::Timestamp, true),
            column("profile", ColumnType::Jsonb, true),
            Column {
                identity: Some(Identity::ByDefault),
                ..column("big", ColumnType::BigInt, false)
            },
            Column {
                generated: Some("(score * (2)::double precision)".into()),
                ..column("score_twice", ColumnType::Double, true)
            },
            column("address", ColumnType::Other("inet".into()), true),
        ],
    );
    customers.access_method = Some("heap".into());
    customers.indexes = vec![
        Index {
            name: "customers_code".into(),
            unique: true,
            columns: vec![("code".into(), SortOrder::Asc)],
        },
        Index {
            name: "customers_name_joined".into(),
            unique: false,
            columns: vec![
                ("name".into(), SortOrder::Desc),
                ("joined".into(), SortOrder::Asc),
            ],
        },
    ];
    let customers = catalog.insert(customers);
    let order_columns = vec![
        Column {
            primary_key: true,
            default: Some("nextval('orders_id_seq'::regclass)".into()),
            ..column("id", ColumnType::BigInt, false)
        },
        column("customer", ColumnType::Int, false),
        Column {
            primary_key: true,
            ..column("placed", ColumnType::Int, false)
        },
        column("amount", ColumnType::Numeric(Some((10, 2))), true),
    ];
    let mut orders = Table::new("orders", order_columns.clone());
    orders.foreign_keys = vec![ForeignKey {
        name: "orders_customer_fkey".into(),
        columns: vec!["customer".into()],
        references: customers,
        referenced_columns: vec!["id".into()],
    }];
    orders.indexes = vec![Index {
        name: "orders_amount".into(),
        unique: false,
        columns: vec![("amount".into(), SortOrder::Asc)],
    }];
    let orders = catalog.insert(orders);
    let mut partitions = Vec::new();
    for (name, from, to) in [("orders_p0", 0, 1000), ("orders_p1", 1000, 2000)] {
        let mut partition = Table::new(name, order_columns.clone());
        partition.kind = TableKind::PartitionOf(orders);
        partition.access_method = Some("heap".into());
        let id = catalog.insert(partition);
        partitions.push(RangePartition {
            table: id,
            from,
            to,
        });
    }
    catalog.update(orders, |t| {
        t.kind = TableKind::Partitioned {
            key: "placed".into(),
            partitions: partitions.clone(),
        }
    });
    catalog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_feature_is_discovered_exactly() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = cluster.connect().await.expect("connect");
    client
        .batch_execute(include_str!("fixtures/every_feature.sql"))
        .await
        .expect("schema");
    let discovered = Catalog::new();
    assert_eq!(
        discover_into(&client, "public", &discovered)
            .await
            .expect("discovered"),
        4
    );
    let differences = compare(&expected_every_feature(), &discovered);
    assert!(
        differences.is_empty(),
        "{}",
        differences
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Changes behind the catalog's back are reported.
    client
        .batch_execute("ALTER TABLE customers ADD COLUMN extra int; DROP INDEX customers_code; CREATE TABLE stray (x int)")
        .await
        .expect("changes");
    let differences = validate(&client, "public", &discovered)
        .await
        .expect("validated");
    let text: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(differences.len(), 3, "{text:#?}");
    assert!(
        text.iter().any(
            |d| d.starts_with("table customers: columns differ") && d.contains("extra integer")
        )
    );
    assert!(
        text.iter()
            .any(|d| d.starts_with("table customers: indexes differ"))
    );
    assert!(text.contains(&"table stray: in the database but not in the catalog".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pgbench_schema_is_discovered() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let mut args = cluster.client_args();
    args.extend([
        "--initialize".into(),
        "--scale=1".into(),
        "--quiet".into(),
        "postgres".into(),
    ]);
    cluster
        .run_program("pgbench", &args)
        .await
        .expect("pgbench -i");
    let client = cluster.connect().await.expect("connect");
    let catalog = Catalog::new();
    assert_eq!(
        discover_into(&client, "public", &catalog)
            .await
            .expect("discovered"),
        4
    );
    let accounts = catalog.by_name("pgbench_accounts").expect("accounts");
    assert_eq!(
        accounts
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty.clone(), c.primary_key))
            .collect::<Vec<_>>(),
        vec![
            ("aid", ColumnType::Int, true),
            ("bid", ColumnType::Int, false),
            ("abalance", ColumnType::Int, false),
            ("filler", ColumnType::Char(84), false),
        ]
    );
    let history = catalog.by_name("pgbench_history").expect("history");
    assert_eq!(
        history.column("mtime").map(|c| c.ty.clone()),
        Some(ColumnType::Timestamp)
    );
    assert!(history.primary_key().is_empty());
    assert!(
        validate(&client, "public", &catalog)
            .await
            .expect("validated")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_discovery_leaves_the_catalog_empty() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = cluster.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .expect("schema");
    let catalog = Catalog::new();
    discover_into(&client, "public", &catalog)
        .await
        .expect("discovered");
    assert_eq!(catalog.len(), 1);
    // A connection that is gone: discovery fails and leaves nothing stale behind.
    let dead = cluster.connect().await.expect("connect");
    let pid: i32 = dead
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    client
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminated");
    let error = discover_into(&dead, "public", &catalog)
        .await
        .expect_err("connection gone");
    assert!(
        error.to_string().starts_with("discovering tables"),
        "{error}"
    );
    assert!(catalog.is_empty());
}

/// `public.customers`; schema `sales` with `orders` (a foreign key to
/// `public.customers`) and a partitioned `events` with a partition; schema
/// `Big Sales` (a name that needs quoting) with `t`.
const TWO_SCHEMAS: &str = include_str!("fixtures/two_schemas.sql");

async fn two_schemas() -> (PgCluster, tokio_postgres::Client) {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = cluster.connect().await.expect("connect");
    client.batch_execute(TWO_SCHEMAS).await.expect("schemas");
    (cluster, client)
}

fn names(catalog: &Catalog) -> Vec<String> {
    let mut names: Vec<String> = catalog
        .snapshot()
        .values()
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_the_schemas_it_is_given_with_links_across_them() {
    let (_cluster, client) = two_schemas().await;
    // `public` alone, as before: the other schemas are not read.
    let public = Catalog::new();
    assert_eq!(
        discover_into(&client, "public", &public)
            .await
            .expect("public"),
        1
    );
    // Two schemas by name.
    let catalog = Catalog::new();
    let selection = Schemas::Named(vec!["public".into(), "sales".into()]);
    assert_eq!(
        discover_schemas(&client, &selection, &catalog)
            .await
            .expect("discovered"),
        4
    );
    assert_eq!(
        names(&catalog),
        [
            "customers",
            "sales.events",
            "sales.events_1",
            "sales.orders"
        ]
    );
    let orders = catalog.by_name("sales.orders").expect("orders");
    let customers = catalog.by_name("customers").expect("customers");
    assert_eq!(orders.foreign_keys.len(), 1);
    assert_eq!(orders.foreign_keys[0].references, customers.id);
    assert_eq!(orders.indexes[0].name, "orders_customer");
    let events = catalog.by_name("sales.events").expect("events");
    let partition = catalog.by_name("sales.events_1").expect("partition");
    assert_eq!(partition.kind, TableKind::PartitionOf(events.id));
    assert!(
        matches!(&events.kind, TableKind::Partitioned { partitions, .. } if partitions.len() == 1)
    );
    assert!(
        validate_schemas(&client, &selection, &catalog)
            .await
            .expect("validated")
            .is_empty()
    );
    // Every schema but the system's and other runs' own (`stormchor_run_...`), which
    // belong to those runs; named, one is read.
    client
        .batch_execute("CREATE SCHEMA stormchor_run_1_cafe; CREATE TABLE stormchor_run_1_cafe.pgbench_accounts (aid int)")
        .await
        .expect("another run's schema");
    let theirs = Catalog::new();
    assert_eq!(
        discover_schemas(
            &client,
            &Schemas::Named(vec!["stormchor_run_1_cafe".into()]),
            &theirs
        )
        .await
        .expect("named"),
        1
    );
    let all = Catalog::new();
    assert_eq!(
        discover_schemas(&client, &Schemas::AllUser, &all)
            .await
            .expect("all"),
        5
    );
    assert!(
        names(&all).contains(&"\"Big Sales\".t".to_owned()),
        "{:?}",
        names(&all)
    );
    assert!(
        names(&all).iter().all(|n| !n.starts_with("pg_")
            && !n.starts_with("information_schema")
            && !n.starts_with("stormchor_run_")),
        "{:?}",
        names(&all)
    );
    // A schema the server does not have is an error naming it and the schemas there are.
    let error = discover_schemas(
        &client,
        &Schemas::Named(vec!["sale".into()]),
        &Catalog::new(),
    )
    .await
    .expect_err("no such schema");
    let text = error.to_string();
    assert!(
        text.contains("no schema named `sale`") && text.contains("Big Sales, public, sales"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_over_two_schemas_catches_a_table_dropped_in_the_second() {
    let (_cluster, client) = two_schemas().await;
    let selection = Schemas::Named(vec!["public".into(), "sales".into()]);
    let catalog = Catalog::new();
    discover_schemas(&client, &selection, &catalog)
        .await
        .expect("discovered");
    client
        .batch_execute("DROP TABLE sales.orders")
        .await
        .expect("dropped");
    let divergences = validate_schemas(&client, &selection, &catalog)
        .await
        .expect("validated");
    assert_eq!(divergences.len(), 1, "{divergences:?}");
    assert_eq!(divergences[0].table, "sales.orders");
    assert!(
        divergences[0].what.contains("not in the database"),
        "{divergences:?}"
    );
}
