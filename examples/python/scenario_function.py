"""A scenario function: builds the program from the run's settings (flags >
STORMCHOR_* > config file > defaults, as the command resolves them), with a node,
workers under a customized action mix, and a Python effect that checks the result.

    python examples/python/scenario_function.py [--config FILE] [--workers N] [--duration S]
"""

import argparse

import stormchor as sc

NODE = sc.Role("Node")
CHECKER = sc.Role("Checker")
TABLES = sc.Slot("tables", kind="str")


def scenario(settings):
    workers = sc.Family("Worker", settings.values["workers"])
    mix = sc.default_registry()
    mix.remove("drop_table")
    mix.get("create_table").weight = 300
    kit = sc.Kit()

    @kit.handler("judge")
    def judge(ctx):
        tables = int(ctx[TABLES])
        ctx.figure("tables", tables)
        ctx.check("the workers made tables", tables > 0, f"{tables} tables")

    program = (
        sc.Program()
        .roles([NODE, CHECKER])
        .family(workers)
        .ext(sc.kit.Phase("load"))
        .ext(sc.kit.StartServer(into=sc.slots.PRIMARY), at=NODE)
        .broadcast(NODE, workers, sc.slots.PRIMARY)
        .ext(sc.kit.StressLoad(sc.slots.PRIMARY, float(settings.values["duration"]), registry=mix), at=workers)
        .gather(workers, NODE, "done")
        .ext(sc.kit.Phase("verify"))
        .ext(sc.kit.Query(sc.slots.PRIMARY, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                          into=TABLES), at=NODE)
        .send(NODE, CHECKER, TABLES)
        .ext(sc.effect("judge", reads=[TABLES]), at=CHECKER)
    )
    return program, kit


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--duration", type=int)
    flags = parser.parse_args()
    settings = sc.settings(flags.config, workers=flags.workers, duration=flags.duration)
    print(settings.describe())
    program, kit = scenario(settings)
    report = program.run(kit, name="python-scenario", **settings.run_options())
    print(report.text)
    raise SystemExit(0 if report.success else 1)


if __name__ == "__main__":
    main()
