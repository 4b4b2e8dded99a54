"""Custom SQL actions (StormWeaver's `makeCustomSqlAction` / `makeCustomTableSqlAction`)
added to the default action mix, run by two workers on a throwaway cluster.

    python examples/python/custom_sql_actions.py [seconds]
"""

import sys

import stormchor as sc


def setup_custom_actions(registry):
    # A plain SQL action: runs as it is.
    registry.insert_sql("vacuum_db", 10, "VACUUM;")
    # A table action: {table} is a random table of the catalog.
    registry.insert_table_sql("analyze_table", 5, "ANALYZE {table};")
    # A server function, as a statement of its own.
    registry.insert_sql("checkpoint", 2, "CHECKPOINT;")


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    registry = sc.default_registry()
    setup_custom_actions(registry)
    with sc.Cluster() as cluster:
        reports = registry.run(cluster.connection, workers=2, seconds=seconds, seed=7)
    for name in ("vacuum_db", "analyze_table", "checkpoint"):
        ok = sum(r["actions"].get(name, {"ok": 0})["ok"] for r in reports)
        print(f"{name}: {ok} ok")
    print(f"{sum(r['runs'] for r in reports)} actions in all")


if __name__ == "__main__":
    main()
