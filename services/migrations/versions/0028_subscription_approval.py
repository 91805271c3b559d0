"""two-admin subscriptions: who created a webhook subscription and who activated it

A rest-hook subscription is created ``pending`` by one admin and receives nothing until a
different admin activates it (services/router/ops/subscription_api.py). The status column
is free text (no check constraint), so ``pending`` needs no change there. Rows written
before this revision keep null in both columns: they were active already.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("activated_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.drop_column("activated_by")
        batch.drop_column("created_by")
