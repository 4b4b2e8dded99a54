"""Scope 1: Rust errors arrive as Python exceptions with the Rust text; a Python
exception inside a handler becomes the effect's failure, traceback in the report."""

import pytest

import stormchor as sc

A = sc.Role("A")
B = sc.Role("B")


def test_every_exception_is_a_stormchor_error():
    for exc in (
        sc.ProjectionError,
        sc.CheckError,
        sc.RegistryError,
        sc.ActionError,
        sc.SqlError,
        sc.ScenarioError,
        sc.ClusterError,
        sc.SlotError,
    ):
        assert issubclass(exc, sc.StormchorError)
    assert issubclass(sc.SqlError, sc.ActionError)


def test_projection_error_has_the_rust_text_and_path():
    program = sc.Program().send(A, B, "ping").send(A, A, "echo")
    with pytest.raises(sc.ProjectionError) as caught:
        program.project()
    assert str(caught.value) == "A sends a message to itself at [1]"
    assert caught.value.path == "[1]"


def test_action_registry_errors_have_the_rust_text():
    registry = sc.default_registry()
    with pytest.raises(sc.ActionError) as caught:
        registry.get("no_such_action")
    assert str(caught.value).startswith("no action named no_such_action; known actions: create_table, ")
    with pytest.raises(sc.ActionError) as caught:
        registry.insert_sql("vacuum", -1, "VACUUM")
    assert str(caught.value) == "action vacuum: weight -1 is negative; weights are 0 or more"
    with pytest.raises(sc.ActionError) as caught:
        registry.insert_table_sql("analyze", 5, "ANALYZE")
    assert str(caught.value) == "action analyze: `ANALYZE` has no {table} placeholder"


def test_registering_a_handler_twice_has_the_rust_text():
    kit = sc.Kit()
    kit.register("tick", lambda ctx: None)
    with pytest.raises(sc.RegistryError) as caught:
        kit.register("tick", lambda ctx: None)
    assert str(caught.value) == "a handler for extension effect tick is already registered"


def test_a_missing_handler_is_refused_before_anything_runs():
    program = sc.Program().role(A).ext(sc.effect("untended"), at=A)
    with pytest.raises(sc.RegistryError) as caught:
        program.run(sc.Kit())
    assert "no Python handler is registered for untended at [0]" in str(caught.value)


def boom_handler(ctx):
    raise ValueError(f"boom at {ctx.role}")


def test_a_python_exception_fails_the_effect_with_its_traceback():
    kit = sc.Kit()
    kit.register("boom", boom_handler)
    program = sc.Program().roles([A, B]).ext(sc.effect("boom"), at=A).send(A, B, "after")
    report = program.run(kit)
    assert not report.success
    failure = next(f for f in report.failures if f.startswith("A failed"))
    assert "the Python handler of boom raised:" in failure
    assert "Traceback (most recent call last):" in failure
    assert "in boom_handler" in failure
    assert "ValueError: boom at A" in failure
    # B, waiting for A's message, is told A failed rather than hanging.
    assert any(f.startswith("B failed") for f in report.failures)
    # The same text is in the report's JSON and in its printed form.
    roles = {r["role"]: r for r in report.json["roles"]}
    assert "ValueError: boom at A" in roles["A"]["failure"]
    assert "ValueError: boom at A" in report.text


def test_a_handler_that_succeeds_does_not_fail():
    # The negative twin of the test above: the same program with a quiet handler.
    kit = sc.Kit()
    kit.register("boom", lambda ctx: None)
    report = sc.Program().roles([A, B]).ext(sc.effect("boom"), at=A).send(A, B, "after").run(kit)
    assert report.success, report.failures


def test_the_submodules_import():
    import stormchor.kit
    from stormchor.slots import PRIMARY

    assert stormchor.kit.Phase("x").name == "Phase"
    assert PRIMARY.kind == "server"
