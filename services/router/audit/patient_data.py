"""The only ways an operator reaches patient data: a message's FHIR payload, a search by
personnummer, and a case's timeline (every message of one stay). Each writes its access-log
entry in the same transaction, before anything is returned, so no view goes unlogged
(:mod:`services.router.audit.access_log`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.identifiers import (
    InvalidIdentifier,
    parse_patient_identifier,
    pseudonym,
    refuse_future_birth,
)
from services.messaging.payload_crypto import Keyring
from services.router.audit.access_log import Access, AccessKind, record_access
from services.router.audit.retention import pruned_at
from services.router.routing.tables import message


class NoSuchMessage(LookupError):
    pass


class NoSuchCase(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class PayloadView:
    """What an operator sees: the Bundle, or when it was pruned (metadata only then)."""

    bundle: dict[str, Any] | None
    pruned_at: str | None = None


async def open_payload(
    session: AsyncSession,
    message_id: str,
    *,
    keyring: Keyring,
    actor: str,
    role: str,
    reason: str,
    now: datetime,
) -> PayloadView:
    """The message's FHIR Bundle, decrypted; the access is logged first (an attempt on a
    pruned payload too). Raises NoSuchMessage."""
    row = (
        await session.execute(
            select(message.c.payload, message.c.pseudonym).where(message.c.id == message_id)
        )
    ).first()
    if row is None:
        raise NoSuchMessage(message_id)
    await record_access(
        session,
        Access(
            actor=actor,
            role=role,
            kind=AccessKind.PAYLOAD_VIEW,
            reason=reason,
            pseudonym=row.pseudonym,
            message_id=message_id,
        ),
        now=now,
    )
    when = pruned_at(row.payload)
    if when is not None:
        return PayloadView(bundle=None, pruned_at=when)
    found: dict[str, Any] = json.loads(keyring.open(row.payload, message_id=message_id))
    return PayloadView(bundle=found)


async def pseudonym_search(
    session: AsyncSession,
    raw_personnummer: str,
    *,
    key: str,
    actor: str,
    role: str,
    reason: str,
    now: datetime,
) -> str:
    """The keyed pseudonym to search by; the search is logged first. Raises
    InvalidIdentifier for something that is not a personnummer or samordningsnummer, or
    whose date of birth is after ``now``: no message can be about that patient."""
    identifier = parse_patient_identifier(raw_personnummer)
    refuse_future_birth(identifier, now=now)
    found = pseudonym(key, identifier)
    await record_access(
        session,
        Access(
            actor=actor,
            role=role,
            kind=AccessKind.PERSONNUMMER_SEARCH,
            reason=reason,
            pseudonym=found,
        ),
        now=now,
    )
    return found


async def open_case(
    session: AsyncSession,
    case_id: str,
    *,
    actor: str,
    role: str,
    reason: str,
    now: datetime,
) -> None:
    """Log the view of a case's timeline, once per patient its messages name (one, unless
    the stay's messages disagree), before the caller reads it in the same transaction. The
    entry's reason names the case: it is pseudonymous, and the auditor needs to know which
    messages were seen. Raises NoSuchCase when no message carries ``case_id``."""
    rows = (
        await session.execute(
            select(message.c.pseudonym, func.min(message.c.sent_at).label("first"))
            .where(message.c.case_id == case_id)
            .group_by(message.c.pseudonym)
            .order_by("first")
        )
    ).all()
    if not rows:
        raise NoSuchCase(case_id)
    for row in rows:
        await record_access(
            session,
            Access(
                actor=actor,
                role=role,
                kind=AccessKind.CASE_VIEW,
                reason=f"case {case_id}: {reason}"[:500],
                pseudonym=row.pseudonym,
            ),
            now=now,
        )


__all__ = [
    "InvalidIdentifier",
    "NoSuchCase",
    "NoSuchMessage",
    "PayloadView",
    "open_case",
    "open_payload",
    "pseudonym_search",
]
