"""Decisions and background effects from Python: workers write rows in rounds until
the coordinator has counted enough (a loop decided by a Python condition); all the
while a backup role takes a base backup in the background (`ext_start` /
`ext_finish` of a kit effect); then the coordinator decides, in Python, whether the
backup is worth verifying.

    python examples/python/rounds_and_backup.py [rows-wanted]
"""

import sys

import stormchor as sc

COORD, BACKUP = sc.Role("Coordinator"), sc.Role("Backup")
WORKERS = sc.Family("Worker", 2)
PRIMARY = sc.slots.PRIMARY
TOTAL = sc.Slot("total", kind="int")
OUTCOME = sc.Slot("outcome", kind="backup_outcome")
ROWS_PER_WORKER = 50


def build(wanted):
    kit = sc.Kit()

    @kit.handler("write_rows")
    def write_rows(ctx):
        ctx.query(ctx[PRIMARY], f"INSERT INTO demo SELECT {ctx.index}, g "
                                f"FROM generate_series(1, {ROWS_PER_WORKER}) g")

    @kit.handler("tally")
    def tally(ctx):
        return int(ctx.query(ctx[PRIMARY], "SELECT count(*) FROM demo")[0][0])

    def enough(ctx):
        # Called at the coordinator before every round: True stops the loop.
        ctx.figure("rounds", ctx.round)
        return ctx[TOTAL] >= wanted

    def worth_verifying(ctx):
        return "verify" if ctx[OUTCOME]["completed"] else "skip"

    one_round = (
        sc.Program()
        .broadcast(COORD, WORKERS, "write")
        .ext(sc.effect("write_rows", reads=[PRIMARY], timeout=60.0), at=WORKERS)
        .gather(WORKERS, COORD, "written")
        .ext(sc.effect("tally", reads=[PRIMARY], into=TOTAL), at=COORD)
    )
    program = (
        sc.Program()
        .roles([COORD, BACKUP])
        .family(WORKERS)
        .ext(sc.kit.StartServer(into=PRIMARY), at=COORD)
        .ext(sc.kit.RunSql(PRIMARY, "CREATE TABLE demo (worker int, n int)"), at=COORD)
        .send(COORD, BACKUP, PRIMARY)
        .broadcast(COORD, WORKERS, PRIMARY)
        .ext_start(sc.kit.BackgroundBackup(PRIMARY, within=120.0, into=OUTCOME), "backup", at=BACKUP)
        .send(BACKUP, COORD, "backup streaming")
        .ext(sc.effect("tally", reads=[PRIMARY], into=TOTAL), at=COORD)
        .loop_until(COORD, one_round, until=enough, reads=[TOTAL], max_rounds=100)
        .send(COORD, BACKUP, "rounds over")
        .ext_finish("backup")
        .send(BACKUP, COORD, OUTCOME)
        .choice(COORD, {
            "verify": sc.Program().send(COORD, BACKUP, "verify").ext(sc.kit.VerifyBackup(), at=BACKUP),
            "skip": sc.Program().send(COORD, BACKUP, "skip"),
        }, decide=worth_verifying, reads=[OUTCOME])
    )
    return program, kit


def main():
    wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 250
    program, kit = build(wanted)
    program.check(seed=1)
    report = program.run(kit, name="rounds-and-backup", timeout=600.0)
    print(report.text)
    rounds = report.json["figures"]["rounds"]
    print(f"rounds: {rounds}, rows: {rounds * ROWS_PER_WORKER * len(WORKERS)} (wanted {wanted})")
    raise SystemExit(0 if report.success else 1)


if __name__ == "__main__":
    main()
