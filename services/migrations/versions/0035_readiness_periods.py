"""every readiness of a stay is its own payment evidence (readiness_period)

The episode keeps only its latest ready-for-discharge notice, so the payable days of a
readiness that was interrupted or withdrawn before a new ready notice were lost to the
payment report. ``readiness_period`` keeps each ready notice of a stay and what ended it
(withdrawn, interrupted, deceased, discharged, cancelled, or superseded by a later ready
notice), written with the episode's change (services.router.routing.readiness_periods).

Backfill: each episode that has a ready notice gets one period from its current row; what
ended it is read from the row (a withdrawal or an interruption first, else the episode's
final state), and the message that ended it from ``episode_transition`` where one is kept.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    period = op.create_table(
        "readiness_period",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("episode_id", _ID, nullable=False),
        sa.Column("ready_message_id", sa.String(36), nullable=False),
        sa.Column("admission_message_id", sa.String(36), nullable=True),
        sa.Column("ready_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(20), nullable=True),
        sa.Column("ended_by_message_id", sa.String(36), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_readiness_period_episode", "readiness_period", ["episode_id", "id"])
    assert period is not None
    _backfill(period)


def _backfill(period: sa.Table) -> None:
    md = sa.MetaData()
    episode = sa.Table(
        "episode",
        md,
        sa.Column("id", _ID),
        sa.Column("state", sa.String(20)),
        sa.Column("admission_message_id", sa.String(36)),
        sa.Column("ready_at", UtcDateTime()),
        sa.Column("ready_message_id", sa.String(36)),
        sa.Column("ready_withdrawn_at", UtcDateTime()),
        sa.Column("discharged_at", UtcDateTime()),
        sa.Column("interrupted_at", UtcDateTime()),
        sa.Column("deceased_at", UtcDateTime()),
        sa.Column("updated_at", UtcDateTime()),
    )
    message = sa.Table(
        "message", md, sa.Column("id", sa.String(36)), sa.Column("sent_at", UtcDateTime())
    )
    transition = sa.Table(
        "episode_transition",
        md,
        sa.Column("id", _ID),
        sa.Column("episode_id", _ID),
        sa.Column("event_code", sa.String(64)),
        sa.Column("message_id", sa.String(36)),
    )
    e = episode.c
    withdrawn, interrupted = e.ready_withdrawn_at.is_not(None), e.interrupted_at.is_not(None)
    ends = [  # (is the end, ended_at, ended_by, the family of the message that ended it)
        (withdrawn, e.ready_withdrawn_at, "withdrawn", "ready-for-discharge-withdrawn"),
        (interrupted, e.interrupted_at, "interrupted", "process-interrupted"),
        (e.state == "deceased", e.deceased_at, "deceased", "patient-deceased"),
        (e.state == "discharged", e.discharged_at, "discharged", "discharge-notice"),
        (e.state == "cancelled", e.updated_at, "cancelled", "admission-notice-cancelled"),
    ]
    ended_by = sa.case(*((when, sa.literal(kind)) for when, _, kind, _ in ends), else_=None)
    ended_at = sa.case(*((when, at) for when, at, _, _ in ends), else_=None)
    ended_by_message = sa.case(
        *(
            (
                when,
                sa.select(transition.c.message_id)
                .where(transition.c.episode_id == e.id, transition.c.event_code == code)
                .order_by(transition.c.id.desc())
                .limit(1)
                .scalar_subquery(),
            )
            for when, _, _, code in ends
        ),
        else_=None,
    )
    ready_sent = (
        sa.select(message.c.sent_at).where(message.c.id == e.ready_message_id).scalar_subquery()
    )
    op.execute(
        period.insert().from_select(
            [
                "episode_id",
                "ready_message_id",
                "admission_message_id",
                "ready_at",
                "ended_at",
                "ended_by",
                "ended_by_message_id",
                "recorded_at",
            ],
            sa.select(
                e.id,
                e.ready_message_id,
                e.admission_message_id,
                sa.func.coalesce(e.ready_at, ready_sent, e.updated_at),
                ended_at,
                ended_by,
                ended_by_message,
                e.updated_at,
            ).where(e.ready_message_id.is_not(None)),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_readiness_period_episode", "readiness_period")
    op.drop_table("readiness_period")
