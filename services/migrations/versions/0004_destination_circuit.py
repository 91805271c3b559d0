"""destination circuit: a circuit breaker per destination

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destination_circuit",
        sa.Column("destination", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("probe_at", services.messaging.db.UtcDateTime(), nullable=True),
        sa.Column(
            "probe_delivery_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("changed_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_destination_circuit")),
    )


def downgrade() -> None:
    op.drop_table("destination_circuit")
