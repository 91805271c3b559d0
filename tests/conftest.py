"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
BROKER_TEST_DATABASE_URL is set (each test then gets a database of its own)."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# The canonical base is read when services.messaging.canonical is first imported (below, by
# the imports that follow): the goldens are written under its default, so a caller's own
# CAREBRIDGE_CANONICAL_BASE must not reach the suite.
os.environ.pop("CAREBRIDGE_CANONICAL_BASE", None)

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sandbox.stack import PORT_SLICE_ENV
from services.messaging.db import make_engine, migrate_async, session_factory
from tests.support.run_id import RUN_ENV

# Read once, before the autouse fixture below clears the environment of the caller.
_PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL")
_SERVICE_PREFIXES = (
    "ROUTER_",
    "ADAPTER_TAKECARE_",
    "ADAPTER_TRESERVA_",
    "SIM_TRESERVA_",
    "SIM_TAKECARE_",
    "SIM_SUBSCRIBER_",
    "STACK_",
)


# The services' environment is production unless the sandbox is chosen explicitly; tests run
# on the sandbox's settings, and say so here. A test of what production refuses names its
# environment (``environment="production"``, or deletes the variable: see
# tests/security/test_fail_closed.py).
SANDBOX_ENVIRONMENT = {
    f"{prefix}ENVIRONMENT": "sandbox"
    for prefix in ("ROUTER_", "ADAPTER_TAKECARE_", "ADAPTER_TRESERVA_")
}


def pytest_configure(config: pytest.Config) -> None:
    """Test workers side by side (pytest-xdist) take ports from separate parts of the range,
    and share one run id, so the fault tests' figures of this run are told from older ones.
    The services' settings are the sandbox's (:data:`SANDBOX_ENVIRONMENT`)."""
    worker, count = (
        os.environ.get("PYTEST_XDIST_WORKER"),
        os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
    )
    if worker and count:
        os.environ[PORT_SLICE_ENV] = f"{int(worker.removeprefix('gw'))}/{count}"
    os.environ.setdefault(RUN_ENV, uuid.uuid4().hex)
    # module-scoped fixtures build settings before the autouse fixture below runs
    os.environ.update(SANDBOX_ENVIRONMENT)


# fixtures through which a test reaches the database of the run (BROKER_TEST_DATABASE_URL)
_DATABASE_FIXTURES = frozenset(
    {"database_url", "engine", "sessions", "stack_db", "module_stack_db"}
)
_DATABASE_NAMES = ("new_database_url", "backend_name", "_PG_URL", "BROKER_TEST_DATABASE_URL")


def _reaches_the_database(item: pytest.Item) -> bool:
    if _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    source = Path(module.__file__).read_text() if module and module.__file__ else ""
    return any(name in source for name in _DATABASE_NAMES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With BROKER_TEST_DATABASE_ONLY=1 on PostgreSQL (make test-postgres), only the tests
    that reach the run's database run: through a database fixture, or a module that asks
    for one itself. The others (translation, contracts, fuzzing of pure parsers) touch no
    database, give the same answer on either backend, and ran on SQLite in ``make test``."""
    if not (_PG_URL and os.environ.get("BROKER_TEST_DATABASE_ONLY") == "1"):
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        (kept if _reaches_the_database(item) else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault tests' figures of this run, as the table in docs/guarantees.md (here, in the
    root conftest, so the controller of side-by-side workers prints it too)."""
    from tests.support.reliability import recorded_this_run, results_table

    if recorded_this_run():
        terminalreporter.write_sep("-", "fault injection results")
        terminalreporter.write_line(results_table())


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the environment; keep the caller's variables out of every test, and
    choose the sandbox explicitly."""
    for name in list(os.environ):
        if name.startswith(_SERVICE_PREFIXES) or name == "ENVIRONMENT":
            monkeypatch.delenv(name)
    for name, value in SANDBOX_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    yield


def backend_name() -> str:
    return "postgresql" if _PG_URL else "sqlite"


async def _create_pg_database(base_url: str, *, template: str | None = None) -> str:
    import asyncpg

    url = make_url(base_url)
    name = f"cb_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(base_url: str, test_url: str) -> None:
    import asyncpg

    url, name = make_url(base_url), make_url(test_url).database
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# Every test gets a database of its own, copied from one migrated at the first need (the
# migrations run once per test process, not once per test: 0.5 s each on PostgreSQL). The
# copy is the migrated schema exactly; tests/unit/test_migrations.py checks it against the
# models.
_template: dict[str, str] = {}


async def _migrated_template() -> str:
    if "url" not in _template:
        if _PG_URL:
            url = await _create_pg_database(_PG_URL)
            atexit.register(lambda: asyncio.run(_drop_pg_database(_PG_URL, url)))
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


async def new_database_url(tmp_path: Path, name: str = "test") -> str:
    """A fresh, migrated database: SQLite under tmp_path, or a new PostgreSQL database."""
    template = await _migrated_template()
    if _PG_URL:
        url = await _create_pg_database(_PG_URL, template=template)
        _created.append(url)
    else:
        target = tmp_path / f"{name}.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_sqlite(template, target)
        url = f"sqlite+aiosqlite:///{target}"
    return url


_created: list[str] = []


@pytest.fixture(autouse=True)
async def _drop_created_databases() -> AsyncIterator[None]:
    yield
    while _PG_URL and _created:
        await _drop_pg_database(_PG_URL, _created.pop())


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    return await new_database_url(tmp_path)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture(scope="module")
def module_stack_db() -> Iterator[str | None]:
    """stack_db for a stack that a module's tests share: None on SQLite, else one fresh
    PostgreSQL database, dropped when the module ends."""
    if not _PG_URL:
        yield None
        return
    base = _PG_URL

    async def create() -> str:
        return await _create_pg_database(base, template=await _migrated_template())

    url = asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(_drop_pg_database(base, url))


@pytest.fixture
async def stack_db(tmp_path: Path) -> str | None:
    """None on SQLite (one file per service); one fresh database on PostgreSQL."""
    if backend_name() == "sqlite":
        return None
    return await new_database_url(tmp_path, "stack")
