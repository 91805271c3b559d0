"""broker epoch: the broker data generation each service last published into

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broker_epoch",
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("seen_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_broker_epoch")),
    )


def downgrade() -> None:
    op.drop_table("broker_epoch")
