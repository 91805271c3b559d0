"""rows in clear at rest: partial indexes of the payloads and outbox rows not sealed

Outside the sandbox a service refuses to start while its database holds a payload written in
clear before payloads were sealed (services.messaging.sealing). Each index holds only such
rows, so the check at every start is one index probe, whatever the size of the tables; once
``python -m services.seal_payloads`` has sealed them, the indexes are empty. Their predicates
are the text the check queries with (SQLite matches a partial index's terms literally).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# as services.messaging.sealing.unsealed_where writes them (a test checks the check uses them)
MESSAGE_UNSEALED = "payload NOT LIKE 'enc:v1:%' AND payload NOT LIKE 'pruned:v1:%'"
OUTBOX_UNSEALED = "payload NOT LIKE 'enc:v1:%'"


def upgrade() -> None:
    for name, table, columns, where in (
        ("ix_message_unsealed", "message", ["id"], MESSAGE_UNSEALED),
        ("ix_outbox_unsealed", "outbox", ["owner", "id"], OUTBOX_UNSEALED),
    ):
        op.create_index(
            name,
            table,
            columns,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    op.drop_index("ix_outbox_unsealed", table_name="outbox")
    op.drop_index("ix_message_unsealed", table_name="message")
