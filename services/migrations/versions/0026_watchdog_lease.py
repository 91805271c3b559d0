"""the watchdog's lease: one router replica at a time does the watchdog's work

Replicas on PostgreSQL each repeated the watchdog's work (expired attempts, re-sends, the
scan for due deliveries, incidents, silence, gaps); the replica holding this lease does it,
and another takes it over when the holder stops renewing it.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchdog_lease",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_watchdog_lease")),
    )


def downgrade() -> None:
    op.drop_table("watchdog_lease")
