"""the stays whose consent the patient withdrew

Secrecy between region and municipality (OSL 25 and 26 kap.): when the patient withdraws the
consent that covered a stay, the adapter tells the receivers and refuses every later document
of the stay. ``consent_withdrawal`` keeps those stays, keyed by a keyed pseudonym of the source
and the stay id (services.messaging.withdrawals), never by the stay id or the patient in clear.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_withdrawal",
        sa.Column("stay", sa.String(32), primary_key=True),
        sa.Column("source_system", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("withdrawn_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_withdrawal")
