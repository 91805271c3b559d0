"""The Alembic migrations build exactly the tables the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import services.messaging.intake_tables
import services.messaging.outbox
import services.messaging.processed
import services.router.access_log
import services.router.console.identity
import services.router.tables  # noqa: F401
from services.messaging.db import metadata


async def test_migrated_schema_matches_the_models(engine):
    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), metadata)

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []
