"""The Alembic migrations build exactly the tables the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import services.messaging.intake_tables
import services.messaging.outbox
import services.messaging.processed
import services.messaging.read_back_store
import services.router.audit.access_log
import services.router.ops.console.identity
import services.router.ops.console.sessions
import services.router.ops.console.throttle
import services.router.routing.clock_jumps
import services.router.routing.tables  # noqa: F401
from services.messaging.db import metadata


async def test_migrated_schema_matches_the_models(engine):
    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), metadata)

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


def test_0021_wakes_a_delivery_parked_as_never_to_be_sent_again(tmp_path):
    """Before 0021 a sent delivery whose attempts were spent was parked at 9999-01-01 and
    never sent again; the migration clears that, and leaves every other re-send time."""
    import sqlite3

    from alembic import command

    from services.messaging.db import alembic_config

    path = tmp_path / "router.db"
    url = f"sqlite+aiosqlite:///{path}"
    command.upgrade(alembic_config(url), "0020")
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT INTO message (id, event_code, source, sent_at, received_at, payload) "
            "VALUES ('m1', 'admission-notice', 'takecare', '2026-12-01 22:00:00', "
            "'2026-12-01 22:00:00', '{}')"
        )
        for did, state, resend_at in [
            (1, "sent", "9999-01-01 00:00:00.000000"),
            (2, "sent", "2026-12-01 22:30:00.000000"),
            (3, "dead_letter", "9999-01-01 00:00:00.000000"),
        ]:
            db.execute(
                "INSERT INTO delivery (id, message_id, destination, state, attempts, confirm_by,"
                " resend_at, created_at, updated_at) VALUES (?, 'm1', ?, ?, 15,"
                " '2026-12-01 22:15:00', ?, '2026-12-01 22:00:00', '2026-12-01 22:00:00')",
                (did, f"d{did}", state, resend_at),
            )
    command.upgrade(alembic_config(url), "head")
    rows = dict(db.execute("SELECT id, resend_at FROM delivery").fetchall())
    db.close()
    assert rows[1] is None  # woken: re-sent on the next pass, then every interval
    assert rows[2].startswith("2026-12-01 22:30")
    assert rows[3].startswith("9999")  # not a sent delivery: left as it was
