"""replay: a fresh attempt budget per replay, and the replay audit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts_at_replay", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "replay_audit",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("delivery_id", _ID, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["delivery.id"], name=op.f("fk_replay_audit_delivery_id_delivery")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_audit")),
    )
    with op.batch_alter_table("replay_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_replay_audit_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("replay_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replay_audit_delivery_id"))
    op.drop_table("replay_audit")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("attempts_at_replay")
