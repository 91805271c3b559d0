"""the payment clock's evidence: a receipt's record id and time, a stay's ready notice

The payment clock (betalningsansvar) runs from the ready-for-discharge notice as it was sent
to the municipality, and only if the municipality's receipt confirmed the stay's admission
notice. A receipt's own evidence, the receiving journal's record id and its time, was thrown
away: ``delivery`` keeps it now (null for receipts that did not carry it). ``episode`` keeps
the stay's latest ready notice and when it was withdrawn (återtag), so the clock can find that
notice's delivery (services.router.statistics.payment).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("receiver_record_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("receiver_recorded_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("episode") as batch:
        batch.add_column(sa.Column("ready_message_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("ready_withdrawn_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("episode") as batch:
        batch.drop_column("ready_withdrawn_at")
        batch.drop_column("ready_message_id")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("receiver_recorded_at")
        batch.drop_column("receiver_record_id")
