"""The only ways an operator reaches patient data: a message's FHIR payload, and a search by
personnummer. Each writes its access-log entry in the same transaction, before anything is
returned, so no view goes unlogged (:mod:`services.router.audit.access_log`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
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


__all__ = [
    "InvalidIdentifier",
    "NoSuchMessage",
    "PayloadView",
    "open_payload",
    "pseudonym_search",
]
