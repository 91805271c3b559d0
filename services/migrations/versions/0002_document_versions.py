"""document versions: a versioned message's stream, version and the newer one that supersedes it

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_message_stream", ["stream", "version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_stream")
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("version")
        batch_op.drop_column("stream")
