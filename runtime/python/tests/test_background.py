"""Effects started now and finished later from Python (`ext_start` / `ext_finish`):
the roles go on while the effect runs; projection refuses unsound handles, naming
the place."""

import threading

import pytest

import stormchor as sc

A, B = sc.Role("A"), sc.Role("B")
GOT = sc.Slot("got", kind="str")


def test_a_started_effect_runs_while_the_program_goes_on():
    # A's started effect waits for B's effect, which runs only after A has sent
    # "go": were the start not running in the background, A would never send it and
    # the wait would time out (failing the effect, and the test).
    released = threading.Event()
    order = []
    kit = sc.Kit()

    @kit.handler("wait")
    def wait(ctx):
        order.append("wait begins")
        if not released.wait(timeout=60):
            raise TimeoutError("B never released A")
        order.append("wait ends")
        return "released"

    @kit.handler("release")
    def release(ctx):
        order.append("release")
        released.set()

    @kit.handler("show")
    def show(ctx):
        ctx.figure("got", ctx[GOT])

    program = (
        sc.Program()
        .roles([A, B])
        .ext_start(sc.effect("wait", into=GOT, ordered=False), "w", at=A)
        .send(A, B, "go")
        .ext(sc.effect("release", ordered=False), at=B)
        .send(B, A, "done")
        .ext_finish("w")
        .send(A, B, GOT)
        .ext(sc.effect("show", reads=[GOT]), at=B)
    )
    local = program.project(role=A)
    assert "start" in local and "finish w" in local, local
    report = program.run(kit)
    assert report.success, report.text
    assert order == ["wait begins", "release", "wait ends"]
    # The finish kept the started effect's value; a message carried it on.
    assert report.json["figures"]["got"] == "released"


def test_a_started_effect_that_fails_fails_its_role_naming_the_step():
    kit = sc.Kit()

    @kit.handler("boom")
    def boom(ctx):
        raise RuntimeError("the background effect broke")

    program = (
        sc.Program()
        .roles([A, B])
        .ext_start(sc.effect("boom"), "b", at=A)
        .send(A, B, "go")
        .ext_finish("b")
    )
    report = program.run(kit)
    assert not report.success
    failure = report.failures[0]
    assert "RuntimeError: the background effect broke" in failure, failure
    assert failure.startswith("A failed at ext"), failure


def test_kit_effects_start_and_finish_too():
    # The kit's Phase as a started effect: check explores it as a start and a finish.
    program = (
        sc.Program()
        .roles([A, B])
        .ext_start(sc.kit.Phase("load"), "p", at=A)
        .send(A, B, "go")
        .ext_finish("p")
    )
    report = program.check(seed=1)
    assert ("A", "Phase") in [tuple(e) for e in report["extensions"]]
    assert program.run(sc.Kit()).success


def test_a_start_never_finished_is_a_projection_error_with_its_path():
    program = (
        sc.Program()
        .roles([A, B])
        .send(A, B, "x")
        .ext_start(sc.effect("wait"), "w", at=A)
    )
    with pytest.raises(sc.ProjectionError) as caught:
        program.project()
    assert caught.value.path == "[1]"
    assert "the effect started as `w` at [1] is not finished in the program" in str(caught.value)
    # run() says the same before anything starts (a handler is registered).
    kit = sc.Kit()
    kit.register("wait", lambda ctx: None)
    with pytest.raises(sc.ProjectionError, match="not finished"):
        program.run(kit)


def test_a_start_finished_in_another_block_is_a_projection_error():
    # Started in a loop's round, finished after the loop: not the same block.
    program = (
        sc.Program()
        .roles([A, B])
        .loop_n(2, sc.Program().ext_start(sc.effect("wait"), "w", at=A).send(A, B, "x"))
        .ext_finish("w")
    )
    with pytest.raises(sc.ProjectionError) as caught:
        program.project()
    assert caught.value.path == "[0] > body > [0]", str(caught.value)


def test_a_finish_of_nothing_and_a_handle_in_use_are_projection_errors():
    with pytest.raises(sc.ProjectionError) as caught:
        sc.Program().roles([A, B]).send(A, B, "x").ext_finish("nothing").project()
    assert caught.value.path == "[1]"
    assert "`ext finish nothing` at [1] finishes nothing" in str(caught.value)
    twice = (
        sc.Program()
        .roles([A, B])
        .ext_start(sc.effect("wait"), "w", at=A)
        .ext_start(sc.effect("wait"), "w", at=A)
        .ext_finish("w")
        .ext_finish("w")
    )
    with pytest.raises(sc.ProjectionError) as caught:
        twice.project()
    assert caught.value.path == "[1]"
    assert "`w` is started at [1] while the effect started as `w` at [0] still runs" in str(caught.value)


def test_bad_start_arguments_say_what_is_wrong():
    with pytest.raises(TypeError, match="ext_start\\(\\) takes an Effect"):
        sc.Program().ext_start("wait", "w")
    with pytest.raises(ValueError, match="a handle's name cannot be empty"):
        sc.Program().ext_start(sc.effect("wait"), "")
    with pytest.raises(ValueError, match="a handle's name cannot be empty"):
        sc.Program().ext_finish("")
