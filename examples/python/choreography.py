"""A Python choreography with a Python effect: a coordinator starts a throwaway
server, each worker writes rows with an effect written in Python and reports its
count, and the coordinator checks the table against the sum.

    python examples/python/choreography.py [workers]
"""

import sys

import stormchor as sc

COORD = sc.Role("Coordinator")
WRITTEN = sc.Slot("written")  # a json slot: what each worker wrote


def build(workers):
    members = sc.Family("Worker", workers)
    kit = sc.Kit()

    @kit.handler("prepare")
    def prepare(ctx):
        ctx.query(ctx[sc.slots.PRIMARY], "CREATE TABLE demo (worker int, n int)")

    @kit.handler("write_rows")
    def write_rows(ctx):
        rows = ctx.params["rows"] * (ctx.index + 1)
        ctx.query(ctx[sc.slots.PRIMARY],
                  f"INSERT INTO demo SELECT {ctx.index}, g FROM generate_series(1, {rows}) g")
        return {"worker": ctx.index, "rows": rows}

    @kit.handler("verify")
    def verify(ctx):
        found = int(ctx.query(ctx[sc.slots.PRIMARY], "SELECT count(*) FROM demo")[0][0])
        reports = ctx.each(WRITTEN)  # {"Worker[0]": {...}, ...}: what each worker said
        expected = sum(r["rows"] for r in reports.values())
        ctx.figure("reports", len(reports))
        ctx.check("every row is there", found == expected, f"found {found}, expected {expected}")

    program = (
        sc.Program()
        .role(COORD)
        .family(members)
        .ext(sc.kit.StartServer(into=sc.slots.PRIMARY), at=COORD)
        .ext(sc.effect("prepare", reads=[sc.slots.PRIMARY]), at=COORD)
        .broadcast(COORD, members, sc.slots.PRIMARY)
        .ext(sc.effect("write_rows", {"rows": 100}, reads=[sc.slots.PRIMARY], into=WRITTEN), at=members)
        .gather(members, COORD, WRITTEN)
        .choice(COORD, {
            "verify": sc.Program().ext(
                sc.effect("verify", reads=[sc.slots.PRIMARY], each=[WRITTEN]), at=COORD),
            "skip": sc.Program(),
        })
    )
    return program, kit


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    program, kit = build(workers)
    print(program.mermaid())
    program.check(seed=1)
    report = program.run(kit, name="python-choreography")
    print(report.text)
    raise SystemExit(0 if report.success else 1)


if __name__ == "__main__":
    main()
