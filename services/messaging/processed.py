"""Idempotent consumers: a record of which events a consumer has already applied.

A consumer inserts its (consumer, event key) row in the same transaction as its effect, so a
redelivered Kafka record, or a resent HTTP request, is recognised and skipped.
"""

from __future__ import annotations

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import UtcDateTime, metadata, utcnow

processed_event = Table(
    "processed_event",
    metadata,
    Column("consumer", String(40), nullable=False),
    Column("event_key", String(200), nullable=False),
    Column("processed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("consumer", "event_key"),
)


async def already_processed(session: AsyncSession, consumer: str, event_key: str) -> bool:
    found = await session.scalar(
        select(processed_event.c.event_key).where(
            processed_event.c.consumer == consumer, processed_event.c.event_key == event_key
        )
    )
    return found is not None


async def mark_processed(session: AsyncSession, consumer: str, event_key: str) -> None:
    await session.execute(
        processed_event.insert(),
        dict(consumer=consumer, event_key=event_key, processed_at=utcnow()),
    )
