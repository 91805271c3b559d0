"""The adapters' intake tables: every accepted native event, keyed by its business key, and
the stays whose consent the patient withdrew (``services.messaging.withdrawals``)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, UniqueConstraint

from services.messaging.db import UtcDateTime, metadata

intake_record = Table(
    "intake_record",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("source_system", String(40), nullable=False),
    Column("source_event_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("event_code", String(60), nullable=False),
    Column("pseudonym", String(32), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("source_system", "source_event_id", "version"),
)

# A stay (vårdtillfälle) whose consent the patient withdrew: every later document of it is
# refused. Keyed by a keyed pseudonym of the source and its stay id, as patients are.
consent_withdrawal = Table(
    "consent_withdrawal",
    metadata,
    Column("stay", String(32), primary_key=True),
    Column("source_system", String(40), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("withdrawn_at", UtcDateTime, nullable=False),
)
