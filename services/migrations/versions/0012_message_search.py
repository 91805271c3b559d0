"""Message search indexes: messages newest first (overall, per family, per source) and
deliveries by state and destination, for keyset pagination in the ops API and console

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_message_received", "message", ["received_at", "id"])
    op.create_index("ix_message_event_received", "message", ["event_code", "received_at", "id"])
    op.create_index("ix_message_source_received", "message", ["source", "received_at", "id"])
    op.create_index(
        "ix_delivery_state_destination", "delivery", ["state", "destination", "message_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_state_destination", table_name="delivery")
    op.drop_index("ix_message_source_received", table_name="message")
    op.drop_index("ix_message_event_received", table_name="message")
    op.drop_index("ix_message_received", table_name="message")
