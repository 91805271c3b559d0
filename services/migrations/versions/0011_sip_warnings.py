"""SIP invitation warnings: each episode's stage towards its SIP invitation deadline and when
to look at it again (warned at 50 % and 80 %, escalated at the breach)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("episode", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sip_stage", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sip_check_at", services.messaging.db.UtcDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("episode", schema=None) as batch_op:
        batch_op.drop_column("sip_check_at")
        batch_op.drop_column("sip_stage")
