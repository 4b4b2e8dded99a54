"""Run-time decisions from Python: a choice's branch and a decided loop's rounds,
decided at the deciding role by a Python callable or by a slot's value, and
followed by every other role."""

import pytest

import stormchor as sc

COORD = sc.Role("Coordinator")
WORKERS = sc.Family("Worker", 2)
VERDICT = sc.Slot("verdict", kind="str")
DONE = sc.Slot("done")  # json


def recorder():
    """A kit whose `mark` effect counts, per role, the mark's `what` parameter."""
    kit = sc.Kit()

    @kit.handler("mark")
    def mark(ctx):
        ctx.count(f"{ctx.params['what']} at {ctx.role}")

    return kit


def mark(what):
    return sc.effect("mark", {"what": what})


def two_phase(**decide):
    return (
        sc.Program()
        .role(COORD)
        .family(WORKERS)
        .choice(COORD, {
            "commit": sc.Program().broadcast(COORD, WORKERS, "commit").ext(mark("commit")),
            "abort": sc.Program().broadcast(COORD, WORKERS, "abort").ext(mark("abort")),
        }, **decide)
    )


def test_without_a_decider_the_first_branch_is_taken():
    report = two_phase().run(recorder())
    assert report.success, report.text
    figures = report.json["figures"]
    assert figures.get("commit at Worker[1]") == 1 and "abort at Worker[1]" not in figures


def test_a_python_function_decides_the_branch_and_every_role_follows():
    seen = []

    def pick(ctx):
        seen.append((ctx.role, ctx.round))
        return "abort"

    report = two_phase(decide=pick).run(recorder())
    assert report.success, report.text
    figures = report.json["figures"]
    for role in ("Coordinator", "Worker[0]", "Worker[1]"):
        assert figures.get(f"abort at {role}") == 1, figures
        assert f"commit at {role}" not in figures, figures
    assert seen == [("Coordinator", None)], "called once, at the chooser"


def test_an_effect_result_decides_through_reads_or_a_slot():
    kit = recorder()
    kit.register("vote", lambda ctx: "commit" if ctx.params["yes"] else "abort")
    for yes, branch in ((True, "commit"), (False, "abort")):
        # By the slot itself.
        program = (
            sc.Program().role(COORD).family(WORKERS)
            .ext(sc.effect("vote", {"yes": yes}, into=VERDICT), at=COORD)
            .then(two_phase(decide=VERDICT))
        )
        report = program.run(kit)
        assert report.success, report.text
        assert report.json["figures"].get(f"{branch} at Worker[0]") == 1, (yes, report.json["figures"])
        # By a function reading it.
        program = (
            sc.Program().role(COORD).family(WORKERS)
            .ext(sc.effect("vote", {"yes": yes}, into=VERDICT), at=COORD)
            .then(two_phase(decide=lambda ctx: ctx[VERDICT], reads=[VERDICT]))
        )
        report = program.run(kit)
        assert report.success, report.text
        assert report.json["figures"].get(f"{branch} at Worker[1]") == 1


def test_a_label_that_is_no_branch_fails_the_run_naming_the_choice():
    report = two_phase(decide=lambda ctx: "maybe").run(recorder())
    assert not report.success
    failure = report.failures[0]
    assert "the decision of the choice at Coordinator (<lambda>) gave `maybe`" in failure, failure
    assert "not one of its branches (commit, abort)" in failure
    report = two_phase(decide=lambda ctx: 3).run(recorder())
    assert "returned 3 (int), not a branch's label (a str)" in report.failures[0]


def ticking(**until):
    body = sc.Program().broadcast(COORD, WORKERS, "tick").gather(WORKERS, COORD, "tock").ext(mark("round"))
    return sc.Program().role(COORD).family(WORKERS).loop_until(COORD, body, **until)


def test_without_a_decider_a_decided_loop_runs_no_round():
    report = ticking().run(recorder())
    assert report.success, report.text
    assert not any(name.startswith("round at") for name in report.json["figures"])


def test_a_python_condition_runs_the_loop_until_it_holds():
    rounds_seen = []

    def three(ctx):
        rounds_seen.append(ctx.round)
        return ctx.round >= 3

    report = ticking(until=three).run(recorder())
    assert report.success, report.text
    figures = report.json["figures"]
    for role in ("Coordinator", "Worker[0]", "Worker[1]"):
        assert figures.get(f"round at {role}") == 3, figures
    assert rounds_seen == [0, 1, 2, 3]


def test_a_slot_decides_the_loop_and_max_rounds_bounds_it():
    kit = recorder()
    kit.register("step", lambda ctx: ctx.params["n"] <= 0)
    # The slot says "not done" before the loop; the body's step says done in round 1.
    body = sc.Program().broadcast(COORD, WORKERS, "tick").ext(mark("round"))
    program = (
        sc.Program().role(COORD).family(WORKERS)
        .ext(sc.effect("step", {"n": 1}, into=DONE), at=COORD)
        .loop_until(COORD, body.ext(sc.effect("step", {"n": 0}, into=DONE), at=COORD), until=DONE)
    )
    report = program.run(kit)
    assert report.success, report.text
    assert report.json["figures"].get("round at Worker[1]") == 1
    # A condition that never holds, bounded.
    report = ticking(until=lambda ctx: False, max_rounds=4).run(recorder())
    assert report.success, report.text
    assert report.json["figures"].get("round at Worker[0]") == 4


def test_a_raising_condition_fails_the_run_with_its_traceback():
    def broken(ctx):
        raise ValueError("cannot tell")

    report = ticking(until=broken).run(recorder())
    assert not report.success
    assert "the decision of the loop at Coordinator (broken) raised" in report.failures[0]
    assert "ValueError: cannot tell" in report.failures[0]


def test_decisions_nest_and_check_still_explores():
    # A loop whose rounds hold a decided choice: round k aborts when k is odd.
    def odd(ctx):
        return "abort" if ctx[ROUND] % 2 else "commit"

    kit = recorder()

    @kit.handler("count")
    def count(ctx):
        return ctx[ROUND] + 1 if ctx.params["more"] else 0

    ROUND = sc.Slot("round", kind="int")
    body = two_phase(decide=odd, reads=[ROUND]).ext(sc.effect("count", {"more": True}, reads=[ROUND], into=ROUND), at=COORD)
    program = (
        sc.Program().role(COORD).family(WORKERS)
        .ext(sc.effect("count", {"more": False}, into=ROUND), at=COORD)
        .loop_until(COORD, body, until=lambda ctx: ctx.round >= 4)
    )
    report = program.run(kit)
    assert report.success, report.text
    figures = report.json["figures"]
    assert figures.get("commit at Worker[0]") == 2 and figures.get("abort at Worker[0]") == 2, figures
    assert program.check(seed=3)["messages"] > 0


def test_two_decisions_of_one_role_in_a_par_are_refused():
    a = sc.Role("A")
    part = lambda: sc.Program().choice(COORD, {"x": sc.Program().send(COORD, a, "x")}, decide=lambda c: "x")
    with pytest.raises(ValueError, match="parts 0 and 1 of the par both hold run-time decisions of Coordinator"):
        sc.Program().roles([COORD, a]).par([part(), part()])
    with pytest.raises(TypeError, match="decide= takes a callable"):
        two_phase(decide=3)
    with pytest.raises(TypeError, match="give until= too"):
        ticking(max_rounds=3)
