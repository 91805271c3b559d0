"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
BROKER_TEST_DATABASE_URL is set (each test then gets a database of its own): the databases
come from tests/support/database.py, the services' environment from
tests/support/environment.py. Test modules import those, never this conftest."""

from __future__ import annotations

import ast
import asyncio
import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# The canonical base is read when services.messaging.canonical is first imported (below, by
# the imports that follow): the goldens are written under its default, so a caller's own
# CAREBRIDGE_CANONICAL_BASE must not reach the suite.
os.environ.pop("CAREBRIDGE_CANONICAL_BASE", None)

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sandbox.stack import PORT_SLICE_ENV
from services.messaging.db import make_engine, session_factory
from tests.support.database import (
    PG_URL,
    backend_name,
    create_pg_database,
    drop_created_databases,
    drop_pg_database,
    migrated_template,
    new_database_url,
)
from tests.support.environment import SANDBOX_ENVIRONMENT, SERVICE_PREFIXES
from tests.support.run_id import RUN_ENV


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


# fixtures through which a test reaches the database of the run (BROKER_TEST_DATABASE_URL);
# the e2e `stack` asks for its database by name at run time (shared or its own)
_DATABASE_FIXTURES = frozenset(
    {"database_url", "engine", "sessions", "stack_db", "module_stack_db", "stack", "supervised"}
)
# a module that asks for a database itself: it imports the run's database helpers
# (tests/support/database.py, by module or by name) or reads the variable
_DATABASE_NAMES = (
    "tests.support.database",
    "new_database_url",
    "backend_name",
    "PG_URL",
    "BROKER_TEST_DATABASE_URL",
)


def _support_modules(source: str) -> set[str]:
    """The tests/support modules that ``source`` imports, by their file's stem."""
    dotted: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            dotted |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            dotted |= {alias.name for alias in node.names}
    return {name.split(".")[2] for name in dotted if name.startswith("tests.support.")}


@functools.cache
def _asks_for_a_database(path: Path, *, through_support: bool = True) -> bool:
    """Whether the module at ``path`` asks for the run's database, itself or (one level down)
    through a tests/support module it imports (tests/support/access_log.py, say)."""
    source = path.read_text() if path.is_file() else ""
    if any(name in source for name in _DATABASE_NAMES):
        return True
    if not through_support:
        return False
    support = Path(__file__).parent / "support"
    return any(
        _asks_for_a_database(support / f"{name}.py", through_support=False)
        for name in _support_modules(source)
    )


def _reaches_the_database(item: pytest.Item) -> bool:
    if _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return bool(module and module.__file__ and _asks_for_a_database(Path(module.__file__)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With BROKER_TEST_DATABASE_ONLY=1 on PostgreSQL (make test-postgres), only the tests
    that reach the run's database run: through a database fixture, or a module that asks
    for one itself. The others (translation, contracts, fuzzing of pure parsers) touch no
    database, give the same answer on either backend, and ran on SQLite in ``make test``."""
    if not (PG_URL and os.environ.get("BROKER_TEST_DATABASE_ONLY") == "1"):
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
        if name.startswith(SERVICE_PREFIXES) or name == "ENVIRONMENT":
            monkeypatch.delenv(name)
    for name, value in SANDBOX_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.fixture(autouse=True)
async def _drop_created_databases() -> AsyncIterator[None]:
    yield
    await drop_created_databases()


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
    if not PG_URL:
        yield None
        return
    base = PG_URL

    async def create() -> str:
        return await create_pg_database(base, template=await migrated_template())

    url = asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(base, url))


@pytest.fixture
async def stack_db(tmp_path: Path) -> str | None:
    """None on SQLite (one file per service); one fresh database on PostgreSQL."""
    if backend_name() == "sqlite":
        return None
    return await new_database_url(tmp_path, "stack")
