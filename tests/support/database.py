"""The database of the test run: SQLite by default, PostgreSQL when BROKER_TEST_DATABASE_URL
is set (each test then gets a database of its own). The fixtures in tests/conftest.py serve
these; a module that needs a database outside them (a module-scoped stack, a fuzzed app, a
test that differs by backend) asks here.

A module that imports from here reaches the run's database: the PostgreSQL pass selects it
by that import (``_reaches_the_database`` in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from services.messaging.db import migrate_async

# Read once, at import (by tests/conftest.py, before any fixture touches the environment).
PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL")


def backend_name() -> str:
    return "postgresql" if PG_URL else "sqlite"


async def _connect(url: URL) -> Any:
    """A connection to the server's maintenance database named in ``url`` (asyncpg)."""
    import asyncpg

    return await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )


async def create_pg_database(base_url: str, *, template: str | None = None) -> str:
    """A new PostgreSQL database beside ``base_url``'s (a copy of ``template`` if given)."""
    url = make_url(base_url)
    name = f"cb_test_{uuid.uuid4().hex[:12]}"
    conn = await _connect(url)
    try:
        copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(base_url: str, test_url: str) -> None:
    url, name = make_url(base_url), make_url(test_url).database
    conn = await _connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# Every test gets a database of its own, copied from one migrated at the first need (the
# migrations run once per test process, not once per test: 0.5 s each on PostgreSQL). The
# copy is the migrated schema exactly; tests/unit/test_migrations.py checks it against the
# models.
_template: dict[str, str] = {}


async def migrated_template() -> str:
    if "url" not in _template:
        if PG_URL:
            base = PG_URL
            url = await create_pg_database(base)
            atexit.register(lambda: asyncio.run(drop_pg_database(base, url)))
        else:
            folder = tempfile.mkdtemp(prefix="cb-template-")
            atexit.register(shutil.rmtree, folder, True)
            url = f"sqlite+aiosqlite:///{Path(folder) / 'template.db'}"
        await migrate_async(url)
        _template["url"] = url
    return _template["url"]


def _copy_sqlite(source: str, target: Path) -> None:
    """A consistent copy through SQLite's backup API (the template may use WAL)."""
    src = sqlite3.connect(make_url(source).database or "")
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


# the PostgreSQL databases made by new_database_url, dropped after each test (tests/conftest.py)
created: list[str] = []


async def new_database_url(tmp_path: Path, name: str = "test") -> str:
    """A fresh, migrated database: SQLite under tmp_path, or a new PostgreSQL database."""
    template = await migrated_template()
    if PG_URL:
        url = await create_pg_database(PG_URL, template=template)
        created.append(url)
    else:
        target = tmp_path / f"{name}.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_sqlite(template, target)
        url = f"sqlite+aiosqlite:///{target}"
    return url


async def drop_created_databases() -> None:
    while PG_URL and created:
        await drop_pg_database(PG_URL, created.pop())
