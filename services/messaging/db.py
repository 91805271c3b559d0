"""Database plumbing shared by every service: metadata, engines and migrations.

SQLite (embedded default) and PostgreSQL (production) are both first-class. Times are stored
as naive UTC and always handed back timezone-aware, so comparisons behave the same on both.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

from services.messaging import sqlite_inline
from services.messaging.payload_crypto import SANDBOX_PAYLOAD_KEYS, Keyring
from services.messaging.private_files import create_private

if TYPE_CHECKING:
    from alembic.config import Config

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

BigId = BigInteger().with_variant(Integer, "sqlite")
"""Auto-increment primary key type: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite."""

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


SQLITE_BUSY_TIMEOUT_S = 30.0  # a lock held by another process (a maintenance command)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            create_private(Path(parsed.database))  # 0600: SQLite would make it 0644
        # A file: one connection per process, its statements run on the event loop
        # (services.messaging.sqlite_inline). Every SQLite transaction here takes the write
        # lock at BEGIN (below), so a second connection could only wait for it in SQLite's
        # busy handler, which sleeps up to 100 ms between tries: under 48 concurrent intakes
        # that made a POST take seconds. Waiting in the pool is first come, first served.
        file = parsed.database if parsed.database and parsed.database != ":memory:" else None
        pooling: dict[str, Any] = (
            {
                "pool_size": 1,
                "max_overflow": 0,
                "pool_timeout": 60,
                "async_creator": sqlite_inline.creator(file, timeout=SQLITE_BUSY_TIMEOUT_S),
            }
            if file is not None
            else {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        )
        engine = create_async_engine(url, **{**pooling, **kwargs})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # We emit BEGIN ourselves (below); the driver must not.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN: a deferred transaction that reads and then writes
            # fails at once (SQLITE_BUSY_SNAPSHOT) when another process wrote in between,
            # whereas BEGIN IMMEDIATE waits for busy_timeout like any other writer.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, **kwargs)


PAYLOAD_KEYRING = "payload_keyring"
"""``Session.info`` key of the keyring that seals what this store holds at rest (the outbox)."""


def session_factory(
    engine: AsyncEngine, *, keyring: Keyring | None = None
) -> async_sessionmaker[Any]:
    """Sessions on ``engine``. ``keyring`` (the service's ``<PREFIX>PAYLOAD_KEYS``) seals the
    outbox at rest; the sandbox ring when none is given (settings refuse it in production,
    and every composition root passes its own)."""
    ring = keyring if keyring is not None else Keyring.from_setting(SANDBOX_PAYLOAD_KEYS)
    return async_sessionmaker(engine, expire_on_commit=False, info={PAYLOAD_KEYRING: ring})


def store_keyring(session: AsyncSession) -> Keyring:
    """The keyring a session's store seals with (see :func:`session_factory`)."""
    ring = session.info.get(PAYLOAD_KEYRING)
    if not isinstance(ring, Keyring):
        raise RuntimeError("session made without session_factory: no payload keyring")
    return ring


def alembic_config(url: str) -> Config:
    # imported here, not at the top: the services never migrate, and alembic costs every
    # process that imports this module a quarter of a second of CPU at start-up
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


async def migrate_async(url: str) -> None:
    await asyncio.to_thread(migrate, url)


async def serialize(session: AsyncSession, key: str) -> None:
    """Hold a lock named ``key`` until the transaction ends, so replicas (two routers on
    PostgreSQL) do not race on a read-then-write such as opening an alert or counting a
    circuit failure. SQLite needs none: every transaction there is ``BEGIN IMMEDIATE``."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


# connection exception (08…); admin or crash shutdown, cannot connect now (57P01-3)
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


_CONFLICT_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


def lost_a_conflict(exc: BaseException) -> bool:
    """PostgreSQL aborted this transaction to break a deadlock or a serialization conflict
    with another one: nothing was written, and running it again is the standard answer."""
    code = _sqlstate(exc)
    return code is not None and code in _CONFLICT_SQLSTATES


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error SQLAlchemy wrapped (asyncpg, psycopg), if any."""
    if not isinstance(exc, DBAPIError):
        return None
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def store_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (restart, failover, network): worth retrying later,
    unlike a constraint violation or a bug."""
    if isinstance(exc, OSError | OperationalError | InterfaceError):
        return True  # OSError: a refused or reset connection the driver did not wrap
    if isinstance(exc, DBAPIError):
        code = _sqlstate(exc)
        return exc.connection_invalidated or (
            code is not None and code.startswith(_UNAVAILABLE_SQLSTATES)
        )
    return False
