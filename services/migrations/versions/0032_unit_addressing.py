"""addressing by unit: the unit directory's table, and each delivery's receiving unit

Receivers are units, not systems (issue 20): the unit directory (HSA-id, kommunkod, kind,
channel, contact details) moves into ``care_unit``, seeded from the directory file when empty
and kept through the ops API; ``delivery.receiver_unit_hsa`` records the unit the router
addressed (null for destinations not addressed by unit, and for deliveries made before).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.messaging.db import UtcDateTime

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_unit",
        sa.Column("hsa_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("municipality", sa.String(4), nullable=True),
        sa.Column("channel", sa.String(40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
    )
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("receiver_unit_hsa", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("receiver_unit_hsa")
    op.drop_table("care_unit")
