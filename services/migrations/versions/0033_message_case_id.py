"""the case id: each message's case (issue 20), for the case timeline

Every message of one hospital stay carries one case id (an EpisodeOfCare, see
``services.messaging.case``); ``message.case_id`` keeps it, indexed with the source's time
so the ops API and the console list a case's messages in order. Null for messages stored
before, and for messages that name no stay.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("case_id", sa.String(36), nullable=True))
        batch.create_index("ix_message_case", ["case_id", "sent_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_case")
        batch.drop_column("case_id")
