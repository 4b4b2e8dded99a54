"""Runtime action management (StormWeaver's `customize_workload`): remove actions,
change weights, add scenario-specific ones, and give each worker its own copy.

    python examples/python/runtime_action_management.py [seconds]
"""

import sys

import stormchor as sc


def customize_workload(registry):
    # Remove problematic actions.
    registry.remove("drop_table")
    registry.remove("drop_partition")
    # More data manipulation.
    registry.get("insert_some_rows").weight = 200
    registry.get("update_one_row").weight = 150
    # Scenario-specific actions.
    registry.insert_table_sql("reindex_table", 20, "REINDEX TABLE {table};")
    registry.insert_sql("checkpoint", 5, "CHECKPOINT;")


def per_worker(index, copy):
    # Worker 0 also counts rows of a random table, with an action written in Python.
    if index == 0:
        def count_rows(conn, rng, table):
            if table is None:
                raise sc.ActionError("no table yet")
            conn.execute(f"SELECT count(*) FROM {table['name']}")

        copy.insert("count_rows", 50, count_rows)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    registry = sc.default_registry()
    customize_workload(registry)
    print("mix:", ", ".join(f"{name}={weight}" for name, weight in registry.items()))
    with sc.Cluster() as cluster:
        reports = registry.run(cluster.connection, workers=2, seconds=seconds, per_worker=per_worker)
    for report in reports:
        print(f"{report['name']}: {report['runs']} actions, count_rows ok: "
              f"{report['actions'].get('count_rows', {'ok': 0})['ok']}")


if __name__ == "__main__":
    main()
