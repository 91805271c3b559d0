"""Alembic environment: async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import services.messaging.broker_epoch
import services.messaging.intake_tables
import services.messaging.outbox
import services.messaging.processed
import services.messaging.quarantine
import services.messaging.read_back_store
import services.router.audit.access_log
import services.router.ops.console.identity
import services.router.ops.console.sessions
import services.router.ops.console.throttle
import services.router.routing.circuit
import services.router.routing.episodes
import services.router.routing.tables
import services.router.routing.watchdog_lease  # noqa: F401  (registers tables on the shared metadata)
from services.messaging.db import make_engine, metadata

target_metadata = metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    return url or context.config.get_main_option("sqlalchemy.url") or ""


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
