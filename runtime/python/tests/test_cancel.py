"""Python handlers that do not return: an effect's timeout= and the run's timeout=
stop waiting, fail the role naming the role and the effect, interrupt the handler
where Python can, and the run returns."""

import threading
import time

import pytest

import stormchor as sc

COORD, PEER = sc.Role("Coordinator"), sc.Role("Peer")
# Generous bounds for a loaded machine: the timeouts under test are far shorter.
RETURNS_WITHIN = 60.0


def hanging_kit(forever):
    """A kit whose `hang` handler waits on `forever` (set only when the test is over)."""
    kit = sc.Kit()

    @kit.handler("hang")
    def hang(ctx):
        forever.wait()

    kit.register("fine", lambda ctx: ctx.count("fine"))
    return kit


def program(effect):
    return (
        sc.Program().roles([COORD, PEER])
        .ext(effect, at=COORD)
        .send(COORD, PEER, "after")
        .ext(sc.effect("fine"), at=PEER)
    )


@pytest.fixture
def forever():
    event = threading.Event()
    yield event
    event.set()  # let the abandoned thread end with the test


def test_an_effect_timeout_stops_waiting_for_a_hanging_handler(forever):
    began = time.monotonic()
    report = program(sc.effect("hang", timeout=0.5)).run(hanging_kit(forever))
    took = time.monotonic() - began
    assert took < RETURNS_WITHIN, took
    assert not report.success
    coordinator = next(f for f in report.failures if f.startswith("Coordinator"))
    assert "Coordinator failed at ext hang" in coordinator, coordinator
    assert "the Python handler of hang at Coordinator did not return within 500ms" in coordinator
    # The peer waiting for Coordinator's message is told, not left waiting.
    assert any(f.startswith("Peer") for f in report.failures), report.failures
    assert not forever.is_set(), "the handler was still waiting when the run returned"


def test_the_run_timeout_ends_a_hanging_handler_naming_it(forever):
    began = time.monotonic()
    report = program(sc.effect("hang")).run(hanging_kit(forever), timeout=1.0)
    took = time.monotonic() - began
    assert took < RETURNS_WITHIN, took
    assert not report.success
    coordinator = next(f for f in report.failures if f.startswith("Coordinator"))
    assert "timed out after 1s" in coordinator, coordinator
    assert "Coordinator was in the Python handler of hang, running for" in coordinator, coordinator
    assert "Coordinator was in the Python handler of hang" in report.text


def test_a_busy_handler_is_interrupted_and_later_calls_are_not():
    stopped = threading.Event()
    kit = sc.Kit()

    @kit.handler("spin")
    def spin(ctx):
        try:
            n = 0
            while True:  # pure Python: the interrupt stops it at its next instruction
                n += 1
        finally:
            stopped.set()

    calls = []
    kit.register("fine", lambda ctx: calls.append(ctx.role))
    report = program(sc.effect("spin", timeout=0.5)).run(kit)
    assert not report.success
    assert "the Python handler of spin at Coordinator did not return within 500ms" in report.failures[0]
    assert stopped.wait(RETURNS_WITHIN), "the busy handler was never interrupted"
    # Threads of the pool are reused: no interrupt may reach a later call.
    many = sc.Program().roles([COORD, PEER]).loop_n(
        20, sc.Program().ext(sc.effect("fine")).send(COORD, PEER, "next"))
    report = many.run(kit)
    assert report.success, report.text
    assert len(calls) == 40


def test_a_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout= is a number of seconds > 0, not 0"):
        sc.effect("hang", timeout=0)
    with pytest.raises(ValueError, match="timeout= is a number of seconds > 0, not -1"):
        program(sc.effect("fine")).run(sc.Kit(), timeout=-1)
