"""A workload written in Python (StormDB's plugin interface): accounts and
transfers, run by the Rust load runner with its per-operation metrics.

    python examples/python/workload.py [clients] [seconds]
"""

import sys

import stormchor as sc


class Bank(sc.Workload):
    name = "bank"
    version = "1"
    description = "transfers between accounts, and balance reads"
    operations = {"transfer": 3, "balance": 7}

    def __init__(self, accounts=1000):
        self.accounts = accounts

    def configure(self, section):
        self.accounts = int(section.pop("accounts", self.accounts))
        super().configure(section)

    def setup(self, conn):
        conn.execute(
            "DROP TABLE IF EXISTS bank_accounts;"
            "CREATE TABLE bank_accounts (id int PRIMARY KEY, balance bigint NOT NULL);"
            f"INSERT INTO bank_accounts SELECT g, 1000 FROM generate_series(1, {self.accounts}) g"
        )

    def cleanup(self, conn):
        conn.execute("DROP TABLE bank_accounts")

    def transfer(self, conn, rng):
        a, b = rng.randint(1, self.accounts), rng.randint(1, self.accounts)
        amount = rng.randint(1, 50)
        conn.execute(
            "BEGIN;"
            f"UPDATE bank_accounts SET balance = balance - {amount} WHERE id = {a};"
            f"UPDATE bank_accounts SET balance = balance + {amount} WHERE id = {b};"
            "COMMIT"
        )

    def balance(self, conn, rng):
        conn.execute(f"SELECT balance FROM bank_accounts WHERE id = {rng.randint(1, self.accounts)}")

    def metrics(self):
        return {"accounts": self.accounts}


def main():
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    with sc.Cluster() as cluster:
        report = sc.run_workload(Bank(), cluster.connection, clients=clients, seconds=seconds,
                                 config={"accounts": 500})
        total = []
        check = sc.ActionRegistry()
        check.insert("sum", 1, lambda conn, rng, table: total.append(
            conn.execute("SELECT sum(balance) FROM bank_accounts")[0][0]))
        check.run(cluster.connection, actions=1)
    print(f"{report['ops_per_s']:.0f} operations/s with {clients} clients")
    for name, op in report["operations"].items():
        print(f"  {name}: {op['count']} ok, errors {op['errors']}, p99 {op.get('p99_us', 0)} us")
    # Transfers move money; they never make or lose any.
    print(f"money in all: {total[0]} (expected {500 * 1000})")
    raise SystemExit(0 if int(total[0]) == 500 * 1000 else 1)


if __name__ == "__main__":
    main()
