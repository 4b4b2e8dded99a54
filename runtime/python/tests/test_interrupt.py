"""Ctrl-C during `run()`: KeyboardInterrupt reaches Python promptly, the run is
dropped, and the servers it started are killed and removed before it raises."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import stormchor as sc

PRIMARY = sc.slots.PRIMARY
# Bounds for a loaded machine; the interrupt itself is checked every 50 ms.
PROMPTLY = 30.0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pid, directory, bound):
    """Polls until the process `pid` is gone and `directory` removed; False at the bound."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if not alive(pid) and not os.path.exists(directory):
            return True
        time.sleep(0.05)
    return False


def announcing_kit(where, ready):
    kit = sc.Kit()

    @kit.handler("announce")
    def announce(ctx):
        data = ctx.query(ctx[PRIMARY], "SHOW data_directory")[0][0]
        with open(os.path.join(data, "postmaster.pid")) as f:
            pid = int(f.readline())
        where.update(pid=pid, data=data)
        ready.set()

    return kit


def long_program(node):
    return (
        sc.Program().role(node)
        .ext(sc.kit.StartServer(into=PRIMARY), at=node)
        .ext(sc.effect("announce", reads=[PRIMARY]), at=node)
        .ext(sc.kit.StressLoad(PRIMARY, 600.0), at=node)  # a Rust effect of ten minutes
    )


def test_ctrl_c_during_a_rust_effect_raises_keyboard_interrupt_and_removes_the_server():
    node = sc.Role("Node")
    where, ready = {}, threading.Event()
    interrupted_at = []

    def press_ctrl_c():
        if ready.wait(PROMPTLY * 4):
            interrupted_at.append(time.monotonic())
            import _thread
            _thread.interrupt_main()  # as a SIGINT: Python's handler raises in the main thread

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        long_program(node).run(announcing_kit(where, ready), seconds=600.0)
    raised_after = time.monotonic() - interrupted_at[0]
    assert raised_after < PROMPTLY, raised_after
    print(f"interrupt to KeyboardInterrupt, server removed: {raised_after:.2f} s")
    # Gone before run() raised: no need to wait.
    assert not alive(where["pid"]), "the postmaster outlived the interrupted run"
    assert not os.path.exists(where["data"]), where["data"]
    # The runtime is fine afterwards.
    kit = sc.Kit()
    kit.register("fine", lambda ctx: ctx.count("fine"))
    assert sc.Program().role(node).ext(sc.effect("fine"), at=node).run(kit).success


SCRIPT = textwrap.dedent("""
    import os, sys, time
    import stormchor as sc

    PRIMARY = sc.slots.PRIMARY
    node = sc.Role("Node")
    kit = sc.Kit()

    @kit.handler("announce")
    def announce(ctx):
        data = ctx.query(ctx[PRIMARY], "SHOW data_directory")[0][0]
        with open(os.path.join(data, "postmaster.pid")) as f:
            print(int(f.readline()), data, flush=True)

    @kit.handler("forever")
    def forever(ctx):
        while True:          # a Python handler that never returns
            time.sleep(0.05)

    program = (
        sc.Program().role(node)
        .ext(sc.kit.StartServer(into=PRIMARY), at=node)
        .ext(sc.effect("announce", reads=[PRIMARY]), at=node)
        .ext(sc.effect("forever"), at=node)
    )
    program.run(kit)
    print("run() returned", flush=True)
""")


def test_sigint_to_a_script_stuck_in_a_python_handler_ends_it_and_its_server(tmp_path):
    script = tmp_path / "stuck.py"
    script.write_text(SCRIPT)
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # the server is up, the handler about to hang
        assert line, child.stderr.read()
        pid, data = line.split()
        pid = int(pid)
        assert alive(pid)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        deadline = sent + PROMPTLY
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is not None, "the script did not end after SIGINT"
        took = time.monotonic() - sent
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert took < PROMPTLY, took
    assert "KeyboardInterrupt" in err, err
    assert "Fatal Python error" not in err, err
    print(f"SIGINT to the script's exit: {took:.2f} s")
    assert "run() returned" not in out
    assert gone_within(pid, data, 10.0), f"postmaster {pid} or {data} left behind"
