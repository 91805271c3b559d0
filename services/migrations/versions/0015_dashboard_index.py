"""the dashboard's deliveries of the last 24 hours by state: an index on creation time

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_delivery_created", "delivery", ["created_at", "state"])


def downgrade() -> None:
    op.drop_index("ix_delivery_created", table_name="delivery")
