"""Scope 2: choreographies in Python: build, project, check, draw, run (in memory
and with the kit's effects on a throwaway cluster), Python effects beside the kit's."""

import threading

import pytest

import stormchor as sc

COORD = sc.Role("Coordinator")
BACKUP = sc.Role("Backup")
WORKERS = sc.Family("Worker", 3)


def full_program():
    """Every construct of the builder in one program."""
    body = sc.Program().gather(WORKERS, COORD, "rows")
    return (
        sc.Program()
        .role(COORD)
        .role(BACKUP)
        .family(WORKERS)
        .broadcast(COORD, WORKERS, "start")
        .loop_n(2, sc.Program().send(WORKERS[0], COORD, "tick"))
        .loop_until(COORD, body)
        .par([
            sc.Program().send(COORD, BACKUP, "backup"),
            sc.Program().send(WORKERS[1], WORKERS[2], "peer"),
        ])
        .timeout(BACKUP, 30.0, sc.Program().send(BACKUP, COORD, "done"))
        .choice(COORD, {
            "commit": sc.Program().broadcast(COORD, WORKERS, "commit"),
            "abort": sc.Program().broadcast(COORD, WORKERS, "abort"),
        })
        .ext(sc.kit.Phase("verify"), at=[COORD, BACKUP])
        .ext(sc.effect("audit", {"level": 2}), at=WORKERS)
    )


def test_roles_and_families():
    assert repr(WORKERS[1]) == "Worker[1]"
    assert WORKERS[1].name == "Worker" and WORKERS[1].index == 1
    assert len(WORKERS) == 3 and list(WORKERS) == WORKERS.members
    assert WORKERS[-1] == WORKERS[2]
    with pytest.raises(IndexError, match="family Worker has 3 members; there is no member 3"):
        WORKERS[3]
    with pytest.raises(ValueError, match="not a role name"):
        sc.Role("bad name")


def test_the_builder_counts_every_construct():
    program = full_program()
    counts = program.counts()
    assert counts == {
        "sends": 4, "broadcasts": 3, "gathers": 1, "choices": 1, "loops": 2,
        "pars": 1, "timeouts": 1, "extensions": 2,
        # start 3, tick 1, rows 3, backup 1, peer 1, done 1, commit 3, abort 3
        "messages": 16,
    }
    assert [repr(r) for r in program.all_roles] == [
        "Backup", "Coordinator", "Worker[0]", "Worker[1]", "Worker[2]"
    ]


def test_projection_gives_every_role_its_local_program():
    locals_ = full_program().project()
    assert sorted(locals_) == ["Backup", "Coordinator", "Worker[0]", "Worker[1]", "Worker[2]"]
    worker = locals_["Worker[2]"]
    assert "recv Coordinator start" in worker and "recv Worker[1] peer" in worker
    assert "audit" in worker and "verify" not in worker
    assert full_program().project(role=BACKUP) == locals_["Backup"]


def test_a_projection_error_names_the_path():
    # Worker[0] behaves differently in the branches but is never told the choice.
    unsound = sc.Program().roles([COORD, BACKUP, WORKERS[0]]).loop_n(3, sc.Program().choice(COORD, [
        ("a", sc.Program().send(COORD, BACKUP, "x").send(WORKERS[0], BACKUP, "y")),
        ("b", sc.Program().send(COORD, BACKUP, "z")),
    ]))
    with pytest.raises(sc.ProjectionError) as caught:
        unsound.project()
    assert caught.value.path == "[0] > body > [0]"
    assert "Worker[0] cannot learn which branch of the choice at Coordinator at [0] > body > [0]" in str(caught.value)
    # An undeclared role, with its path inside a par.
    with pytest.raises(sc.ProjectionError) as caught:
        sc.Program().role(COORD).par([sc.Program().send(COORD, BACKUP, "x")]).project()
    assert caught.value.path == "[0] > part 0 > [0]"


def test_check_runs_all_roles_together():
    report = full_program().check(seed=7, max_rounds=2)
    assert report["messages"] >= 1 + 3 + 3 + 1 + 1 + 1 + 3
    audits = [role for role, name in report["extensions"] if name == "audit"]
    assert sorted(audits) == ["Worker[0]", "Worker[1]", "Worker[2]"]
    again = full_program().check(seed=7, max_rounds=2)
    assert again == report, "the same seed makes the same decisions"


def test_mermaid_draws_every_construct():
    diagram = full_program().mermaid()
    assert diagram.startswith("sequenceDiagram")
    for text in ("participant P1 as Coordinator", "loop 2 times", "alt Coordinator chooses commit",
                 "par", "critical", "verify", "audit"):
        assert text in diagram, text


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(TypeError, match="the sender must be a Role"):
        sc.Program().send("Coordinator", BACKUP, "x")
    with pytest.raises(TypeError, match="a message is a signal's name"):
        sc.Program().send(COORD, BACKUP, 3)
    with pytest.raises(ValueError, match="a timeout is a number of seconds"):
        sc.Program().timeout(COORD, -1.0, sc.Program())
    with pytest.raises(TypeError, match="ext\\(\\) takes an Effect"):
        sc.Program().ext("Phase")
    with pytest.raises(sc.SlotError, match="Query's on= takes a slot of kind server"):
        sc.kit.Query(sc.Slot("rows", kind="str"), "SELECT 1")
    with pytest.raises(sc.SlotError, match="StartServer's into= takes a slot of kind server"):
        sc.kit.StartServer(into=sc.Slot("x"))


ROWS = sc.Slot("rows")  # a json slot


def test_python_effects_pass_values_between_roles_in_memory():
    kit = sc.Kit()

    @kit.handler("produce")
    def produce(ctx):
        ctx.count("produced")
        return {"worker": ctx.index, "rows": 10 * (ctx.index + 1), "factor": ctx.params["factor"]}

    @kit.handler("total")
    def total(ctx):
        got = ctx[ROWS]
        ctx.figure("last", got)
        ctx.figure("each", ctx.each(ROWS))
        ctx.check("rows arrived", got["rows"] > 0, f"{got}")
        return None

    program = (
        sc.Program()
        .role(COORD)
        .family(WORKERS)
        .ext(sc.effect("produce", {"factor": 3}, into=ROWS), at=WORKERS)
        .gather(WORKERS, COORD, ROWS)
        .ext(sc.effect("total", reads=[ROWS], each=[ROWS]), at=COORD)
    )
    report = program.run(kit)
    assert report.success, report.text
    checks = report.json["checks"]
    assert [(c["name"], c["role"], c["passed"]) for c in checks] == [("rows arrived", "Coordinator", True)]
    # The coordinator read the latest value received: the last member's.
    assert report.json["figures"]["last"] == {"worker": 2, "rows": 30, "factor": 3}
    assert report.json["figures"]["produced"] == 3
    # And every member's, by sender.
    assert report.json["figures"]["each"] == {
        f"Worker[{k}]": {"worker": k, "rows": 10 * (k + 1), "factor": 3} for k in range(3)
    }


def test_a_value_of_the_wrong_kind_fails_the_effect():
    kit = sc.Kit()
    kit.register("count", lambda ctx: "not a number")
    program = sc.Program().role(COORD).ext(sc.effect("count", into=sc.Slot("n", kind="int")), at=COORD)
    report = program.run(kit)
    assert not report.success
    assert "the value for slot `n` is not a int value" in report.failures[0]


def test_reading_each_of_a_slot_not_declared_is_a_key_error_in_the_report():
    kit = sc.Kit()
    kit.register("peek", lambda ctx: ctx.each(ROWS))
    report = sc.Program().role(COORD).ext(sc.effect("peek", reads=[ROWS]), at=COORD).run(kit)
    assert not report.success
    # reads= names it, but a missing value fails first: the role holds none.
    assert "role Coordinator holds no value `rows`" in report.failures[0]
    report = sc.Program().role(COORD).ext(sc.effect("peek"), at=COORD).run(kit)
    assert "does not read slot `rows` from each sender" in report.failures[0]


def test_reading_a_slot_not_declared_is_a_key_error_in_the_report():
    kit = sc.Kit()
    kit.register("peek", lambda ctx: ctx[ROWS])
    report = sc.Program().role(COORD).ext(sc.effect("peek"), at=COORD).run(kit)
    assert not report.success
    assert "KeyError" in report.failures[0] and "does not read slot `rows`" in report.failures[0]


def test_python_handlers_run_off_the_runtime_threads():
    # Three roles wait for one another inside their handlers. The runtime has two
    # worker threads: a handler run on one of them would leave the third role
    # unable to start, and the barrier would break after its timeout.
    barrier = threading.Barrier(3, timeout=60)
    kit = sc.Kit()

    @kit.handler("meet")
    def meet(ctx):
        barrier.wait()
        ctx.check("met", True)

    roles = [sc.Role("P"), sc.Role("Q"), sc.Role("R")]
    program = sc.Program().roles(roles).par(
        [sc.Program().ext(sc.effect("meet", ordered=False), at=r) for r in roles]
    )
    report = program.run(kit)
    assert report.success, report.failures
    assert len(report.json["checks"]) == 3


PRIMARY = sc.slots.PRIMARY
ANSWER = sc.Slot("answer", kind="str")


def test_kit_effects_and_python_effects_on_a_throwaway_cluster():
    node, checker = sc.Role("Node"), sc.Role("Checker")
    kit = sc.Kit()

    @kit.handler("inspect")
    def inspect(ctx):
        server = ctx[PRIMARY]
        rows = ctx.query(server, "SELECT count(*) FROM pg_class WHERE relname = 'py_made'")
        ctx.check("table made by the kit's Query is there", rows == [["1"]], str(rows))
        ctx.check("the kit's Query answered", ctx[ANSWER] == "2", ctx[ANSWER])
        return None

    program = (
        sc.Program()
        .roles([node, checker])
        .ext(sc.kit.StartServer(into=PRIMARY), at=node)
        .ext(sc.kit.Query(PRIMARY, "CREATE TABLE py_made (id int); SELECT 1 + 1", into=ANSWER), at=node)
        .send(node, checker, PRIMARY)
        .send(node, checker, ANSWER)
        .ext(sc.effect("inspect", reads=[PRIMARY, ANSWER]), at=checker)
    )
    report = program.run(kit, name="python-kit")
    assert report.success, report.text
    assert [c["passed"] for c in report.json["checks"]] == [True, True]
    assert report.json["name"] == "python-kit"


def test_a_failing_check_fails_the_run():
    # The negative twin: the same shape, a check that does not hold.
    kit = sc.Kit()
    kit.register("judge", lambda ctx: ctx.check("holds", False, "it does not"))
    report = sc.Program().role(COORD).ext(sc.effect("judge"), at=COORD).run(kit)
    assert not report.success and report.failures == []
    assert report.json["checks"][0]["summary"] == "it does not"


PORT = sc.Slot("port", kind="str")


def test_a_run_on_a_target_uses_that_server_in_a_schema_of_its_own(cluster):
    node = sc.Role("Node")
    program = (
        sc.Program()
        .role(node)
        .ext(sc.kit.StartServer(into=PRIMARY, target=True), at=node)
        .ext(sc.kit.Query(PRIMARY, "CREATE TABLE run_made (v int); SHOW port", into=PORT), at=node)
        .ext(sc.effect("look", reads=[PRIMARY, PORT]), at=node)
    )
    kit = sc.Kit()

    @kit.handler("look")
    def look(ctx):
        server = ctx[PRIMARY]
        ctx.check("the target is not ours to control", server["controlled"] is False)
        ctx.figure("port", ctx[PORT])

    report = program.run(kit, target=cluster.connection)
    assert report.success, report.text
    assert f"port={report.json['figures']['port']}" in cluster.connection
    # The run's schema, and the table in it, are gone; the user's schema is untouched.
    seen = []
    probe = sc.ActionRegistry()
    probe.insert("probe", 1, lambda conn, rng, table: seen.append(
        conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'run_made'")))
    probe.run(cluster.connection, actions=1)
    assert seen == [[["0"]]]
    # Without target=True, StartServer is a server the program controls: on a run
    # with a target the kit refuses it, saying why.
    controlled = sc.Program().role(node).ext(sc.kit.StartServer(into=PRIMARY), at=node)
    report = controlled.run(kit, target=cluster.connection)
    assert not report.success
    assert "needs control of the server process" in report.failures[0]
