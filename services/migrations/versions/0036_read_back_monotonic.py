"""read-back deadlines measured on the monotonic clock (issue 17, "time that jumps")

A pending read-back keeps the monotonic clock as it read when scheduled, and that clock's
boot: how long it has left is measured on it, so a step of the wall clock neither ends every
pending read-back at its next look nor prolongs them (services/messaging/read_back_store.py).
Null for rows scheduled before, which keep their wall-clock deadline.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 11:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_read_back") as batch:
        batch.add_column(sa.Column("scheduled_monotonic", sa.Float(), nullable=True))
        batch.add_column(sa.Column("boot_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_read_back") as batch:
        batch.drop_column("boot_id")
        batch.drop_column("scheduled_monotonic")
