"""console sessions on the server, and failed log-ins for throttling

A console cookie was a signed, self-contained session: log-out only deleted it, so a copy
kept working, and a removed account or a changed role kept its access until the cookie
expired (8 h). ``console_session`` holds each session (its id only as a keyed hash), so it
can be revoked; ``console_login_attempt`` holds recent failed log-ins, so every replica
throttles the same guesses (services.router.ops.console.sessions and .throttle).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=160), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("hsa_id", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_session")),
    )
    op.create_index("ix_console_session_account", "console_session", ["account"])
    op.create_index("ix_console_session_expires_at", "console_session", ["expires_at"])
    op.create_table(
        "console_login_attempt",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("account", sa.String(length=60), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_attempt")),
    )
    op.create_index("ix_console_login_attempt_account", "console_login_attempt", ["account", "at"])
    op.create_index("ix_console_login_attempt_address", "console_login_attempt", ["address", "at"])


def downgrade() -> None:
    op.drop_index("ix_console_login_attempt_address", table_name="console_login_attempt")
    op.drop_index("ix_console_login_attempt_account", table_name="console_login_attempt")
    op.drop_table("console_login_attempt")
    op.drop_index("ix_console_session_expires_at", table_name="console_session")
    op.drop_index("ix_console_session_account", table_name="console_session")
    op.drop_table("console_session")
