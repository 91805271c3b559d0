"""The access log (Patientdatalagen 2008:355, HSLF-FS 2016:40): every view of patient data
by an operator, with who, when, which patient (by keyed pseudonym, never a personnummer),
what was seen and why. Rows are only ever inserted.

What counts as a view of patient data: opening a message's FHIR payload, and searching by
personnummer. Metadata views (states, times, pseudonyms) are not patient data here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import BigId, UtcDateTime, metadata


class AccessKind(enum.StrEnum):
    PAYLOAD_VIEW = "payload-view"
    PERSONNUMMER_SEARCH = "personnummer-search"


access_log = Table(
    "access_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("kind", String(30), nullable=False),  # an AccessKind value
    Column("pseudonym", String(32), nullable=True),
    Column("message_id", String(36), nullable=True),
    Column("reason", String(500), nullable=False),
    Index("ix_access_log_at", "at"),
    Index("ix_access_log_pseudonym", "pseudonym", "at"),
)


@dataclass(frozen=True, slots=True)
class Access:
    actor: str
    role: str
    kind: AccessKind
    reason: str
    pseudonym: str | None = None
    message_id: str | None = None


async def record_access(session: AsyncSession, access: Access, *, now: datetime) -> int:
    """Write the entry in the caller's transaction, before the data is shown."""
    result = await session.execute(
        access_log.insert()
        .returning(access_log.c.id)
        .values(
            at=now,
            actor=access.actor,
            role=access.role,
            kind=access.kind.value,
            pseudonym=access.pseudonym,
            message_id=access.message_id,
            reason=access.reason,
        )
    )
    return int(result.scalar_one())


async def list_access(
    session: AsyncSession, *, limit: int = 200, pseudonym: str | None = None
) -> list[dict[str, Any]]:
    query = select(access_log).order_by(access_log.c.id.desc()).limit(limit)
    if pseudonym is not None:
        query = query.where(access_log.c.pseudonym == pseudonym)
    rows = (await session.execute(query)).all()
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
        for r in rows
    ]
