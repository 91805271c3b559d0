"""subscription secrets sealed at rest: the column holds an AES-GCM envelope now, longer
than the 200 characters a plain secret may have

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.alter_column(
            "secret", existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=True
        )
