"""re-publish only what consumers did not confirm (reserved)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 15:15:00
"""

from __future__ import annotations

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
