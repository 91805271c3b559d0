"""re-publish only what consumers did not confirm: where each outbox row went, the offsets
the consumers confirmed, and a record of each recovery

After the broker lost its data (a Tansu restart) every service published again everything
it had published within the replay window (24 h): recovery grew with the day's volume. Each
outbox row now keeps the broker epoch, partition and offset it went to; ``publish_watermark``
keeps per epoch, topic and partition the offset below which every consumer group that must
read the topic has committed; a recovery publishes again only the rows at or above it (or
not known), and records what it did in ``broker_recovery``. Rows published before this
migration have no offset and are published again after a loss, as before.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 15:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("published_epoch", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("published_partition", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("published_offset", sa.BigInteger(), nullable=True))
    # the relay's next rows, and the unconfirmed ones, from the index alone (not the payload)
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_publication",
        "outbox",
        [
            "owner",
            "published_at",
            "id",
            "topic",
            "published_epoch",
            "published_partition",
            "published_offset",
        ],
    )
    op.create_table(
        "publish_watermark",
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("confirmed_offset", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "owner", "epoch", "topic", "kafka_partition", name=op.f("pk_publish_watermark")
        ),
    )
    op.create_table(
        "broker_recovery",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("recovered_at", UtcDateTime(), nullable=False),
        sa.Column("republished", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("unread", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_recovery")),
    )
    op.create_index("ix_broker_recovery_owner", "broker_recovery", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_broker_recovery_owner", table_name="broker_recovery")
    op.drop_table("broker_recovery")
    op.drop_table("publish_watermark")
    op.drop_index("ix_outbox_publication", table_name="outbox")
    op.create_index("ix_outbox_pending", "outbox", ["owner", "published_at", "id"])
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("published_offset")
        batch.drop_column("published_partition")
        batch.drop_column("published_epoch")
