"""episodes end with a death or pause at an interruption; every transition recorded

The families patient-deceased and process-interrupted end (or pause) a stay's discharge
process (services.router.routing.episodes): ``episode.deceased_at`` and
``episode.interrupted_at`` stop the payment clock and the gap watchdogs, and
``episode_transition`` keeps each state change an accepted message made (from, to, the
message, when, why), ids and codes only.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("episode") as batch:
        batch.add_column(sa.Column("interrupted_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("deceased_at", UtcDateTime(), nullable=True))
    op.create_table(
        "episode_transition",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("episode_id", _ID, nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("event_code", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_episode_transition_episode", "episode_transition", ["episode_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_episode_transition_episode", "episode_transition")
    op.drop_table("episode_transition")
    with op.batch_alter_table("episode") as batch:
        batch.drop_column("deceased_at")
        batch.drop_column("interrupted_at")
