"""SQLite through SQLAlchemy's asyncio engine runs on the event loop's thread: no aiosqlite
worker thread, no hand-off per statement (services/messaging/sqlite_inline.py)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from services.messaging import sqlite_inline
from services.messaging.db import make_engine


async def test_statements_run_on_the_loops_thread_and_start_no_thread(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    threads = threading.active_count()
    seen: list[int] = []

    def whose() -> int:
        seen.append(threading.get_ident())
        return 1

    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        raw.driver_connection._conn.create_function("whose", 0, whose)  # type: ignore[union-attr]
        assert (await conn.execute(text("SELECT whose()"))).scalar() == 1
        assert threading.active_count() == threads
    await engine.dispose()
    assert seen == [threading.get_ident()]


async def test_transactions_commit_roll_back_and_errors_reach_the_caller(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/b.db")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT id FROM t"))).scalars().all() == [1]
    await engine.dispose()


async def test_a_lock_held_by_another_process_waits_its_timeout_then_fails(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    other = sqlite3.connect(path, isolation_level=None)  # an operator's CLI, say
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (id INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    connect = sqlite_inline.creator(str(path), timeout=0.2)
    conn = await connect()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await conn.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    await conn.execute("BEGIN IMMEDIATE")
    await conn.execute("INSERT INTO t VALUES (1)")
    await conn.commit()
    await conn.close()
    assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
    other.close()


async def test_a_closed_connection_refuses_work(tmp_path: Path) -> None:
    conn = await sqlite_inline.creator(str(tmp_path / "d.db"), timeout=1)()
    await conn.close()
    with pytest.raises(ValueError, match=r"no active connection|closed"):
        await conn.execute("SELECT 1")


async def test_one_connection_per_file_so_writers_queue_in_the_pool(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/e.db")
    assert engine.pool.size() == 1  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        with pytest.raises(OperationalError):  # SQLAlchemy wraps sqlite3's errors as before
            await conn.execute(text("SELECT * FROM missing"))
    await engine.dispose()
