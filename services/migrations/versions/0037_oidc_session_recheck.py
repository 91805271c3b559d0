"""an OIDC console session is checked again with the identity provider (console_session)

A session from the identity provider keeps the provider's refresh token, sealed
(``refresh_sealed``: AES-GCM under a key derived from the console secret, bound to the row),
when it was last checked with the provider (``checked_at``) and when the next check is due
(``recheck_after``) (services.router.ops.console.sessions). Sessions started before this
revision have neither: their first check finds no refresh token and ends them, so their
people log in again once.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "console_session", sa.Column("refresh_sealed", sa.String(length=4000), nullable=True)
    )
    op.add_column("console_session", sa.Column("checked_at", UtcDateTime(), nullable=True))
    op.add_column("console_session", sa.Column("recheck_after", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_session") as table:  # SQLite drops columns by copy
        table.drop_column("recheck_after")
        table.drop_column("checked_at")
        table.drop_column("refresh_sealed")
