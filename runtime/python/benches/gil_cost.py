"""What the GIL costs a Python workload: operations per second of a trivial Python
operation against the same operation in Rust, through the same Rust load runner,
with 1 and 8 clients, on a throwaway cluster.

    python runtime/python/benches/gil_cost.py [seconds per run, default 5]

Build the module optimized first (`maturin develop --release -m runtime/python/Cargo.toml`)
for figures that mean something.
"""

import sys
import sysconfig

import stormchor as sc


class Noop(sc.Workload):
    name = "python-noop"
    operations = {"noop": 1}

    def noop(self, conn, rng):
        pass


class Select1(sc.Workload):
    name = "python-select1"
    operations = {"select1": 1}

    def select1(self, conn, rng):
        conn.execute("SELECT 1")


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    print(f"Python {sys.version.split()[0]}, free-threaded: {free_threaded}, {seconds} s per run")
    print(f"{'operation':10} {'clients':>7} {'Rust ops/s':>12} {'Python ops/s':>13} {'Python/Rust':>11}")
    with sc.Cluster() as cluster:
        for kind, workload in (("noop", Noop()), ("select1", Select1())):
            for clients in (1, 8):
                rust = sc.reference_load(kind, cluster.connection, clients=clients, seconds=seconds)
                python = sc.run_workload(workload, cluster.connection, clients=clients, seconds=seconds)
                ratio = python["ops_per_s"] / rust["ops_per_s"] if rust["ops_per_s"] else float("nan")
                print(f"{kind:10} {clients:>7} {rust['ops_per_s']:>12,.0f} {python['ops_per_s']:>13,.0f} {ratio:>11.3f}")


if __name__ == "__main__":
    main()
