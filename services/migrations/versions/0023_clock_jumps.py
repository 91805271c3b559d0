"""wall-clock jumps told apart from time passing: an anchor per boot, the jumps detected,
and each delivery's re-send interval kept as a length

A 2-hour forward step of the wall clock fired every stored timer at once (an alert storm);
a step back would delay them all. The router now compares the wall clock with a per-boot
anchor of wall and monotonic readings (``clock_anchor``), moves its timers by a jump and
records it (``clock_jump``). A delivery's re-send interval was its confirmation deadline
minus its creation time, which moving the deadline would stretch: it is kept as seconds.
And a circuit keeps when it last closed: one that flaps (closes on one answer and opens again)
is down all along, so "destination down" fires when its threshold passes.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 15:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_anchor",
        sa.Column("boot_id", sa.String(64), primary_key=True),
        sa.Column("wall", UtcDateTime(), nullable=False),
        sa.Column("monotonic", sa.Float(), nullable=False),
    )
    op.create_table(
        "clock_jump",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("detected_at", UtcDateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("boot_id", sa.String(64), nullable=False),
        sa.Column("timers_moved", sa.Integer(), nullable=False),
        sa.Column("alerts_held_until", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_clock_jump_detected_at", "clock_jump", ["detected_at"])
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("resend_every_s", sa.Float(), nullable=True))
    with op.batch_alter_table("destination_circuit") as batch:
        batch.add_column(sa.Column("closed_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destination_circuit") as batch:
        batch.drop_column("closed_at")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("resend_every_s")
    op.drop_index("ix_clock_jump_detected_at", table_name="clock_jump")
    op.drop_table("clock_jump")
    op.drop_table("clock_anchor")
