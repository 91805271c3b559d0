"""deviations: a record per failed or late notification (avvikelse i samverkan)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deviation",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("delivery_id", _ID, nullable=True),
        sa.Column("family", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("destination", sa.String(length=40), nullable=False),
        sa.Column("sender_unit_hsa", sa.String(length=64), nullable=True),
        sa.Column("receiver_unit_hsa", sa.String(length=64), nullable=True),
        sa.Column("pseudonym", sa.String(length=32), nullable=True),
        sa.Column("occurred_at", services.messaging.db.UtcDateTime(), nullable=True),
        sa.Column("due_at", services.messaging.db.UtcDateTime(), nullable=True),
        sa.Column("detected_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.Column("resolved_at", services.messaging.db.UtcDateTime(), nullable=True),
        sa.Column("lateness_s", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("alert_id", _ID, nullable=True),
        sa.Column("created_at", services.messaging.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name=op.f("fk_deviation_alert_id_alert")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["delivery.id"], name=op.f("fk_deviation_delivery_id_delivery")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deviation")),
        # one deviation per failed delivery and kind (NULL delivery ids are distinct)
        sa.UniqueConstraint("kind", "delivery_id", name=op.f("uq_deviation_kind_delivery_id")),
    )
    with op.batch_alter_table("deviation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviation_detected_at"), ["detected_at"])
        batch_op.create_index(batch_op.f("ix_deviation_message_id"), ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("deviation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviation_message_id"))
        batch_op.drop_index(batch_op.f("ix_deviation_detected_at"))
    op.drop_table("deviation")
