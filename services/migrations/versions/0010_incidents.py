"""incidents: severity, acknowledgement and resolution of alerts; legal deadlines per
delivery; patient episodes; message arrivals index (silent sources)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.messaging.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    when = services.messaging.db.UtcDateTime
    op.create_table(
        "episode",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("sender_unit_hsa", sa.String(length=64), nullable=True),
        sa.Column("admission_message_id", sa.String(length=36), nullable=True),
        sa.Column("admitted_at", when(), nullable=True),
        sa.Column("ready_at", when(), nullable=True),
        sa.Column("sip_due_at", when(), nullable=True),
        sa.Column("sip_invited_at", when(), nullable=True),
        sa.Column("discharged_at", when(), nullable=True),
        sa.Column("medication_due_at", when(), nullable=True),
        sa.Column("medication_list_at", when(), nullable=True),
        sa.Column("sip_gap_open", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("medication_gap_open", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episode")),
    )
    op.create_index("ix_episode_patient", "episode", ["pseudonym", "state"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_arrivals", ["source", "event_code", "received_at"], unique=False
        )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("severity", sa.String(length=10), server_default="warning", nullable=False)
        )
        batch_op.add_column(
            sa.Column("acknowledged_at", services.messaging.db.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("notified_at", services.messaging.db.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("reminders", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("destination_circuit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("opened_at", services.messaging.db.UtcDateTime(), nullable=True)
        )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resend_at", services.messaging.db.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("legal_from", services.messaging.db.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("legal_due_at", services.messaging.db.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("legal_stage", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("legal_check_at", services.messaging.db.UtcDateTime(), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_legal_check_at"), ["legal_check_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("destination_circuit", schema=None) as batch_op:
        batch_op.drop_column("opened_at")
    op.drop_index("ix_episode_patient", table_name="episode")
    op.drop_table("episode")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_arrivals")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_legal_check_at"))
        for column in ("legal_check_at", "legal_stage", "legal_due_at", "legal_from", "resend_at"):
            batch_op.drop_column(column)
    with op.batch_alter_table("alert", schema=None) as batch_op:
        for column in (
            "reminders",
            "notified_at",
            "resolution",
            "resolved_by",
            "acknowledged_by",
            "acknowledged_at",
            "severity",
        ):
            batch_op.drop_column(column)
