"""Scope 4: workloads written in Python, run by the Rust load runner."""

import threading

import pytest

import stormchor as sc


class Counter(sc.Workload):
    """Inserts and reads rows of one table."""

    name = "counter"
    operations = {"insert": 1, "read": 3}

    def __init__(self):
        self.table = "py_counter"
        self.lock = threading.Lock()
        self.calls = {"insert": 0, "read": 0}

    def configure(self, section):
        self.table = section.pop("table", self.table)
        super().configure(section)

    def setup(self, conn):
        conn.execute(f"DROP TABLE IF EXISTS {self.table}; CREATE TABLE {self.table} (v int)")

    def cleanup(self, conn):
        conn.execute(f"DROP TABLE {self.table}")

    def insert(self, conn, rng):
        conn.execute(f"INSERT INTO {self.table} VALUES ({rng.randrange(100)})")
        with self.lock:
            self.calls["insert"] += 1

    def read(self, conn, rng):
        conn.execute(f"SELECT count(*) FROM {self.table}")
        with self.lock:
            self.calls["read"] += 1

    def metrics(self):
        return {"inserts_seen": self.calls["insert"]}


def test_a_python_workload_runs_with_the_rust_runner(cluster):
    workload = Counter()
    report = sc.run_workload(workload, cluster.connection, clients=2, seconds=1.0,
                             config={"table": "py_counter_a"}, cleanup=False)
    ops = report["operations"]
    assert ops["insert"]["count"] == workload.calls["insert"] > 0
    assert ops["read"]["count"] == workload.calls["read"] > 0
    assert report["failures"] == 0 and len(report["per_client"]) == 2
    assert report["metrics"] == {"inserts_seen": workload.calls["insert"]}
    assert "p50_us" in ops["read"]
    # Every insert the workload counted is a row in the table.
    seen = []
    only = sc.ActionRegistry()
    only.insert("count", 1, lambda conn, rng, table: seen.append(conn.execute("SELECT count(*) FROM py_counter_a")))
    only.run(cluster.connection, actions=1)
    assert int(seen[0][0][0]) == workload.calls["insert"]


def test_weights_override_and_cleanup(cluster):
    workload = Counter()
    report = sc.run_workload(workload, cluster.connection, seconds=0.5, weights={"insert": 0},
                             config={"table": "py_counter_b"}, cleanup=True)
    assert report["operations"]["insert"]["count"] == 0 and workload.calls["insert"] == 0
    assert report["operations"]["read"]["count"] > 0
    # cleanup dropped the table: reading it now fails (undefined_table), counted.
    again = sc.run_workload(workload, cluster.connection, seconds=0.2, setup=False,
                            config={"table": "py_counter_b"}, weights={"insert": 0})
    assert again["successes"] == 0 and set(again["operations"]["read"]["errors"]) == {"42P01"}


def test_failures_are_counted_by_sqlstate_and_raised(cluster):
    class Failing(sc.Workload):
        operations = {"bad_sql": 1, "raises": 1}

        def bad_sql(self, conn, rng):
            conn.execute("SELECT 1/0")

        def raises(self, conn, rng):
            raise KeyError("nope")

    report = sc.run_workload(Failing(), cluster.connection, seconds=0.5)
    ops = report["operations"]
    assert report["successes"] == 0
    assert set(ops["bad_sql"]["errors"]) == {"22012"}
    assert set(ops["raises"]["errors"]) == {"raised"}


def test_a_bad_workload_is_refused_with_its_reason(cluster):
    class NoMethod(sc.Workload):
        operations = {"missing": 1}

    with pytest.raises(TypeError, match="operation missing has no method missing"):
        sc.run_workload(NoMethod(), cluster.connection, seconds=0.1)
    with pytest.raises(ValueError, match="unknown operation `nope`"):
        sc.run_workload(Counter(), cluster.connection, seconds=0.1, weights={"nope": 1})
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        sc.run_workload(Counter(), cluster.connection, seconds=0.1, config={"colour": "red"})
    with pytest.raises(sc.StormchorError, match="summing to 0"):
        sc.run_workload(Counter(), cluster.connection, seconds=0.1, weights={"insert": 0, "read": 0},
                        config={"table": "py_counter_c"})


def test_the_rust_reference_runs(cluster):
    report = sc.reference_load("select1", cluster.connection, clients=1, seconds=0.3)
    assert report["operations"]["select1"]["count"] > 0
    with pytest.raises(ValueError, match="unknown reference workload"):
        sc.reference_load("tpcc", cluster.connection)
