"""an unconfirmed delivery is never final: deliveries parked as never-to-be-sent-again wake

Until now a sent delivery whose attempts were spent had its next re-send put at 9999-01-01
and was never sent again, even after the receiver was repaired (a notice dropped overnight
was lost for good). Such rows get their re-send time cleared, so the next watchdog pass sends
them again at once and then every confirmation interval until a receipt comes.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 12:30:00
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_PARKED_FROM = datetime(9000, 1, 1)  # stored as naive UTC, as UtcDateTime writes it


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE delivery SET resend_at = NULL WHERE state = 'sent' AND resend_at >= :far"
        ).bindparams(sa.bindparam("far", _PARKED_FROM, type_=sa.DateTime()))
    )


def downgrade() -> None:
    """Nothing to undo: a cleared re-send time is what a new sent delivery has."""
