"""access log: every view of patient data by an operator (Patientdatalagen)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    when = services.messaging.db.UtcDateTime
    op.create_table(
        "access_log",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", when(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_at", "access_log", ["at"], unique=False)
    op.create_index("ix_access_log_pseudonym", "access_log", ["pseudonym", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_access_log_pseudonym", table_name="access_log")
    op.drop_index("ix_access_log_at", table_name="access_log")
    op.drop_table("access_log")
