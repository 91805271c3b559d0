"""subscriptions: who receives which messages (journal adapters and webhook subscribers)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The journal adapters' rows are not seeded here: the router writes them from the family
    # catalogue at every start-up, so they follow the catalogue, not this migration.
    op.create_table(
        "subscription",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("channel_type", sa.String(length=20), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=False),
        # in clear, to sign webhooks; issue 7 encrypts it at rest
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("managed_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.Column("updated_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription")),
    )


def downgrade() -> None:
    op.drop_table("subscription")
