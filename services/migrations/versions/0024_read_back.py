"""confirmation by read-back: the adapters' pending read-backs

For a destination that pushes no receipt, the adapter reads each accepted record back from
the journal's API until it is found or the delivery's confirmation deadline passes
(services/messaging/read_back.py). What is pending is kept here, so that a restart of the
adapter resumes it.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 15:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_read_back",
        sa.Column("destination", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("deadline", services.messaging.db.UtcDateTime(), nullable=False),
        sa.Column("next_check_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.Column("checks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_result", sa.String(length=100), nullable=True),
        sa.Column("traceparent", sa.String(length=55), nullable=True),
        sa.Column("scheduled_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("destination", "message_id", name=op.f("pk_pending_read_back")),
    )
    op.create_index(
        "ix_pending_read_back_next_check_at", "pending_read_back", ["next_check_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_pending_read_back_next_check_at", table_name="pending_read_back")
    op.drop_table("pending_read_back")
