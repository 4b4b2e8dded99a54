"""Scope 3: the action registry from Python as StormWeaver's users know it, and the
stress mix run with it on a throwaway cluster."""

import threading

import pytest

import stormchor as sc

BUILTINS = [
    "create_table", "create_partitioned_table", "drop_table", "alter_table", "rename_table",
    "create_index", "drop_index", "create_partition", "drop_partition", "insert_some_rows",
    "update_one_row", "delete_some_rows", "select_query", "transaction",
]


def test_the_default_registry_and_runtime_management():
    registry = sc.default_registry()
    assert registry.names() == BUILTINS
    assert registry.get("insert_some_rows").weight == 1000
    registry.remove("drop_table")
    registry.remove("drop_partition")
    registry.get("insert_some_rows").weight = 200
    registry.get("update_one_row").weight = 150
    registry.insert_table_sql("reindex_table", 20, "REINDEX TABLE {table};")
    registry.insert_sql("checkpoint", 5, "CHECKPOINT;")
    assert "drop_table" not in registry and "reindex_table" in registry
    weights = dict(registry.items())
    assert weights["insert_some_rows"] == 200 and weights["update_one_row"] == 150
    assert weights["reindex_table"] == 20 and weights["checkpoint"] == 5
    assert len(registry) == len(BUILTINS) - 2 + 2
    # Every call to default_registry() is a fresh copy.
    assert sc.default_registry().get("insert_some_rows").weight == 1000
    assert "drop_table" in sc.default_registry()


def test_copies_are_independent():
    node = sc.default_registry()
    worker = node.copy()
    worker.get("select_query").weight = 1
    worker.remove("transaction")
    assert node.get("select_query").weight == 1000 and "transaction" in node
    entry = worker.get("create_index")
    worker.remove("create_index")
    with pytest.raises(sc.ActionError, match="no action named create_index"):
        entry.weight = 3
    with pytest.raises(sc.ActionError, match="weight -2 is negative"):
        node.get("select_query").weight = -2
    with pytest.raises(sc.ActionError, match="an action named select_query is already registered"):
        node.insert_sql("select_query", 1, "SELECT 1")
    with pytest.raises(TypeError, match="must be callable"):
        node.insert("not_callable", 1, "SELECT 1")


def only(registry_items):
    """A registry of exactly these (name, weight, action-or-sql) items."""
    registry = sc.ActionRegistry()
    for name, weight, action in registry_items:
        if callable(action):
            registry.insert(name, weight, action)
        elif "{table}" in action:
            registry.insert_table_sql(name, weight, action)
        else:
            registry.insert_sql(name, weight, action)
    return registry


def test_python_actions_get_a_connection_a_seeded_rng_and_a_table(cluster):
    cluster_setup = only([("make", 1, "CREATE TABLE IF NOT EXISTS py_seen (v int)")])
    cluster_setup.run(cluster.connection, actions=1)
    seen = []
    lock = threading.Lock()

    def insert_value(conn, rng, table):
        value = rng.randrange(1_000_000)
        conn.execute(f"INSERT INTO py_seen VALUES ({value})")
        rows = conn.execute(f"SELECT count(*) FROM py_seen WHERE v = {value}")
        with lock:
            seen.append((value, rows, table))

    registry = only([("insert_value", 1, insert_value)])
    reports = registry.run(cluster.connection, workers=1, actions=20, seed=5)
    assert reports[0]["actions"]["insert_value"] == {"ok": 20, "errors": {}}
    assert len(seen) == 20 and all(rows[0][0] != "0" for _, rows, _ in seen)
    # The catalog of this run is empty: no table to hand over.
    assert all(table is None for _, _, table in seen)
    # The same seed draws the same values; another seed others.
    first = [v for v, _, _ in seen]
    seen.clear()
    registry.run(cluster.connection, workers=1, actions=20, seed=5)
    assert [v for v, _, _ in seen] == first
    seen.clear()
    registry.run(cluster.connection, workers=1, actions=20, seed=6)
    assert [v for v, _, _ in seen] != first


def test_python_actions_see_tables_of_the_catalog(cluster):
    tables = []

    def look(conn, rng, table):
        if table is not None:
            tables.append(table)
            conn.execute(f"SELECT count(*) FROM {table['name']}")

    mix = sc.default_registry()
    for name in ("drop_table", "drop_partition", "rename_table", "alter_table"):
        mix.remove(name)
    mix.insert("look", 500, look)
    reports = mix.run(cluster.connection, workers=2, actions=150, seed=3)
    assert [r["name"] for r in reports] == ["worker0", "worker1"]
    assert all(r["runs"] == 150 for r in reports)
    assert tables, "create_table made tables the Python action was handed"
    assert {"name", "kind", "columns"} <= set(tables[0])
    looked = sum(r["actions"].get("look", {"ok": 0})["ok"] for r in reports)
    assert looked >= 1


def test_failures_are_counted_by_kind(cluster):
    def raises(conn, rng, table):
        raise RuntimeError("python says no")

    def bad_sql(conn, rng, table):
        conn.execute("SELECT 1/0")

    registry = only([("raises", 1, raises), ("bad_sql", 1, bad_sql), ("bad_table_sql", 1, "ANALYZE {table}")])
    reports = registry.run(cluster.connection, workers=1, actions=30, seed=2)
    actions = reports[0]["actions"]
    assert set(actions["raises"]["errors"]) == {"raised"}
    assert set(actions["bad_sql"]["errors"]) == {"22012"}  # division_by_zero
    assert set(actions["bad_table_sql"]["errors"]) == {"no target"}
    assert all(a["ok"] == 0 for a in actions.values())


def test_a_sql_error_reaches_python_with_its_sqlstate(cluster):
    caught = []

    def probe(conn, rng, table):
        try:
            conn.execute("SELECT * FROM no_such_table_here")
        except sc.SqlError as error:
            caught.append((error.sqlstate, str(error)))

    only([("probe", 1, probe)]).run(cluster.connection, actions=1)
    assert caught == [("42P01", 'SQLSTATE 42P01: relation "no_such_table_here" does not exist')]


def test_a_connection_kept_after_its_action_is_refused(cluster):
    kept = []
    only([("keep", 1, lambda conn, rng, table: kept.append(conn))]).run(cluster.connection, actions=1)
    with pytest.raises(sc.ActionError, match="this connection belongs to a call that has ended"):
        kept[0].execute("SELECT 1")


def test_per_worker_copies(cluster):
    calls = {"a": 0, "b": 0}
    lock = threading.Lock()

    def count(which):
        def action(conn, rng, table):
            with lock:
                calls[which] += 1
        return action

    registry = only([("a", 1, count("a")), ("b", 1, count("b"))])

    def customize(index, copy):
        # Worker 0 never runs b, worker 1 never runs a.
        copy.get("b" if index == 0 else "a").weight = 0

    reports = registry.run(cluster.connection, workers=2, actions=25, per_worker=customize)
    assert set(reports[0]["actions"]) == {"a"} and set(reports[1]["actions"]) == {"b"}
    assert calls == {"a": 25, "b": 25}
    assert registry.get("b").weight == 1, "the copies changed, not the registry"


def test_a_mix_with_every_weight_zero_is_an_error(cluster):
    registry = only([("idle", 0, "SELECT 1")])
    with pytest.raises(sc.ActionError, match="every weight is 0"):
        registry.run(cluster.connection, actions=1)


def test_run_needs_one_limit(cluster):
    with pytest.raises(ValueError, match="exactly one of seconds= and actions="):
        sc.default_registry().run(cluster.connection)


def test_the_stress_mix_for_a_while(cluster):
    mix = sc.default_registry()
    mix.insert_sql("vacuum_db", 10, "VACUUM;")
    mix.insert_table_sql("analyze_table", 5, "ANALYZE {table};")
    reports = mix.run(cluster.connection, workers=2, seconds=1.0, seed=11)
    assert all(r["runs"] > 0 for r in reports)
    ok = sum(a["ok"] for r in reports for a in r["actions"].values())
    assert ok > 0


def test_the_stress_mix_with_a_python_registry_inside_a_kit_program():
    node, workers = sc.Role("Node"), sc.Family("Worker", 2)
    ran = []

    def marker(conn, rng, table):
        conn.execute("SELECT 1")
        ran.append(1)

    mix = sc.ActionRegistry()
    mix.insert_sql("create", 1, "CREATE TABLE IF NOT EXISTS py_mix (v int)")
    mix.insert_table_sql("analyze_table", 1, "ANALYZE {table}")
    mix.insert("marker", 2, marker)
    program = (
        sc.Program()
        .role(node)
        .family(workers)
        .ext(sc.kit.StartServer(into=sc.slots.PRIMARY), at=node)
        .broadcast(node, workers, sc.slots.PRIMARY)
        .ext(sc.kit.StressLoad(sc.slots.PRIMARY, 1.0, registry=mix), at=workers)
    )
    mix.remove("marker")  # the program holds its own copy
    report = program.run()
    assert report.success, report.text
    actions = report.json["actions"]
    assert set(actions) <= {"create", "analyze_table", "marker"}
    assert actions["marker"]["ok"] == len(ran) > 0
    assert actions["create"]["ok"] > 0
    assert "StressLoad" in report.json["diagram"]
