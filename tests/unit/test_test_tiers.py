"""The Makefile's tiers: ``make test-fast`` leaves the tests marked ``slow`` out and ``make
test`` runs them, and every make recipe keeps Python's bytecode (this machine's environment
sets PYTHONDONTWRITEBYTECODE=1, which made every process compile its imports again)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from _pytest.mark.expression import Expression

ROOT = Path(__file__).resolve().parents[2]


def _make(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _marker_expressions(target: str) -> list[str]:
    """Each pytest run's ``-m`` expression in what ``make -n target`` would run."""
    return re.findall(r'pytest -q (?:-n 2 )?-m "([^"]+)"', _make("-n", target))


def _selects(expression: str, markers: set[str]) -> bool:
    """Whether pytest's ``-m`` would select a test carrying ``markers`` (pytest's own parser)."""

    def has(name: str, /, **_: str | int | bool | None) -> bool:
        return name in markers

    return Expression.compile(expression).evaluate(has)


def test_test_fast_leaves_a_slow_unit_test_out_and_make_test_runs_it():
    (fast,) = _marker_expressions("test-fast")
    assert not _selects(fast, {"slow"})
    assert _selects(fast, set())  # an unmarked unit test stays in the fast tier
    stack_free = _marker_expressions("test")[0]
    assert _selects(stack_free, {"slow"}), stack_free


def test_make_recipes_keep_bytecode():
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    probe = "probe: ; @echo $${PYTHONDONTWRITEBYTECODE-unset}"
    assert _make("--eval", probe, "probe", env=env).strip() == "unset"
