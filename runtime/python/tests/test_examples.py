"""The examples of examples/python/ run and say what they should (each starts its
own throwaway cluster)."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples" / "python"


def run(name, *args, env=None):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_custom_sql_actions():
    out = run("custom_sql_actions.py", "1")
    assert "vacuum_db:" in out and "analyze_table:" in out and "actions in all" in out


def test_runtime_action_management():
    out = run("runtime_action_management.py", "1")
    assert "drop_table" not in out.splitlines()[0]
    assert "insert_some_rows=200" in out and "reindex_table=20" in out
    assert "worker0:" in out and "worker1:" in out


def test_scenario_function():
    out = run("scenario_function.py", "--workers", "2", env={"STORMCHOR_DURATION": "1"})
    assert "workers  = 2 (flag)" in out and "duration = 1 (env)" in out
    assert "PASSED" in out and "[ok] the workers made tables" in out


def test_workload():
    out = run("workload.py", "2", "1")
    assert "money in all: 500000 (expected 500000)" in out
    assert "transfer:" in out and "balance:" in out


def test_choreography():
    out = run("choreography.py", "2")
    assert out.startswith("sequenceDiagram")
    assert "[ok] every row is there (Coordinator): found 300, expected 300" in out


def test_rounds_and_backup():
    out = run("rounds_and_backup.py", "250")
    # 100 rows a round: the Python condition stops the loop after the third.
    assert "rounds: 3, rows: 300 (wanted 250)" in out, out
    # The background backup completed, so the Python decision chose to verify it.
    assert "[ok] pg_verifybackup (Backup)" in out, out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_test(name):
    tested = {"custom_sql_actions.py", "runtime_action_management.py", "scenario_function.py",
              "workload.py", "choreography.py", "rounds_and_backup.py"}
    assert name in tested, f"examples/python/{name} has no test here"
