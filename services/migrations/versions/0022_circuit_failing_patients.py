"""the circuit counts an error answer once per patient: the patients of a run of failures

One patient's record that Treserva choked on opened its circuit for everyone (five failures
in a row of that one patient), and the half-open probe was that same patient's retry, so it
opened again. The circuit now keeps the pseudonyms of the patients in the current run of
failures.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destination_circuit") as batch:
        batch.add_column(sa.Column("failing_patients", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destination_circuit") as batch:
        batch.drop_column("failing_patients")
