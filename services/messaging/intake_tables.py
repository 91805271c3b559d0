"""The adapters' intake table: every accepted native event, keyed by its business key."""

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
