"""clock jumps detected across processes (reserved, filled by the clock work)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 15:15:00
"""

from __future__ import annotations

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
