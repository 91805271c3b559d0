"""``python -m services.migrate``: compose's migration job, in the production image (which
holds no sandbox, so no stack supervisor to migrate with)."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


@pytest.mark.slow
def test_it_migrates_the_database_named_in_the_environment_and_never_prints_the_url(
    tmp_path: Path,
):
    path = tmp_path / "carebridge.db"
    url = f"sqlite+aiosqlite:///{path}"
    done = subprocess.run(
        [sys.executable, "-m", "services.migrate"],
        env={"CAREBRIDGE_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {"message", "delivery", "outbox", "clock_anchor"} <= _tables(path)
    assert str(path) not in done.stdout + done.stderr


def test_without_a_database_it_says_how_to_call_it():
    done = subprocess.run(
        [sys.executable, "-m", "services.migrate"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "CAREBRIDGE_DATABASE_URL" in done.stderr
