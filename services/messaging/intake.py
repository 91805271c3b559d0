"""Durable intake of native events: validate, translate, and store the intake record and its
outbox row in one transaction, so a 2xx to the source means the message cannot be lost.
The business key (source, event id, version) makes a repeat return the first message id.

Exceptions::

    IntakeError
     ├── ConflictingResend   same business key, different content
     ├── StayWithdrawn       the patient withdrew consent for the document's stay
     └── UnknownCancelled    a cancellation (makulering) names no message this adapter
                             accepted from its sender for the same patient
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import topics
from services.messaging.cancellation_intake import (
    Original,
    cancelled_originals,
    refused_as_unknown,
    unknown_cancelled_violation,
)
from services.messaging.consent import WITHDRAWAL_FAMILY
from services.messaging.envelope import (
    BundleIdSource,
    BusinessKey,
    fresh_bundle_id,
    message_id_of,
    sent_as,
)
from services.messaging.identifiers import pseudonym
from services.messaging.intake_tables import intake_record
from services.messaging.kafka import OutgoingRecord
from services.messaging.native import E, InboundFamily, InvalidEvent
from services.messaging.outbox import add_to_outbox
from services.messaging.tracing import HEADER as TRACEPARENT
from services.messaging.tracing import TraceContext, new_trace
from services.messaging.withdrawals import (
    record_withdrawals,
    refused_for_withdrawal,
    stay_key,
    withdrawn_stays,
    withdrawn_violation,
)


class IntakeError(Exception):
    """Base of intake failures that are the caller's fault."""


class ConflictingResend(IntakeError):
    """The business key was accepted before with different content."""

    def __init__(self, message_id: str) -> None:
        super().__init__("event id and version already accepted with different content")
        self.message_id = message_id


class StayWithdrawn(IntakeError):
    """The patient withdrew consent for the stay this (new) document is about."""

    def __init__(self) -> None:
        super().__init__("consent for the stay was withdrawn")


class UnknownCancelled(IntakeError):
    """The cancellation names a message the adapter never accepted from the sender for this
    patient, or another cancellation (services.messaging.cancellation_intake)."""

    def __init__(self) -> None:
        super().__init__("the cancelled message is unknown")


@dataclass(frozen=True, slots=True)
class IntakeEntry:
    message_id: str
    key: BusinessKey
    payload_sha256: str
    event_code: str
    pseudonym: str
    received_at: datetime
    stay: str | None = None  # the stay key (services.messaging.withdrawals) it is about
    withdraws: bool = False  # a consent withdrawal: it withdraws consent for ``stay``
    cancels: BusinessKey | None = None  # a cancellation: the sender's message it cancels


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: str
    duplicate: bool
    pseudonym: str | None = None  # keyed pseudonym of the patient: may be logged


class IntakeStore(Protocol):
    async def record(self, entry: IntakeEntry, outgoing: OutgoingRecord) -> Accepted:
        """Store durably, or recognise a repeat; raise ConflictingResend on a changed repeat
        and StayWithdrawn for a new document of a stay whose consent was withdrawn. The stay
        an entry ``withdraws`` is stored in the same transaction."""


def payload_digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def accept_event(
    document: Any,
    family: InboundFamily[E],
    *,
    store: IntakeStore,
    pseudonym_key: str,
    now: datetime,
    regional_reserve_oid: str | None,
    trace: TraceContext | None = None,
    bundle_ids: BundleIdSource = fresh_bundle_id,
) -> Accepted:
    """Raises ``InvalidEvent`` (bad input, or a stay whose consent the patient withdrew) or
    ``ConflictingResend``. The inbound record
    carries ``trace`` (a new trace if None) as its ``traceparent`` header.
    ``regional_reserve_oid`` is the region whose reserve numbers the source uses (None: a
    regional reserve number is refused). The inbound record is one send of the message:
    its ``Bundle.id`` comes fresh from ``bundle_ids``; the message id (MessageHeader.id)
    is what the record's ``message-id`` header and every dedup use."""
    event = family.parse(document, now=now, regional_reserve_oid=regional_reserve_oid)
    bundle = family.to_bundle(event, now=now, regional_reserve_oid=regional_reserve_oid)
    message_id = message_id_of(bundle)
    patient = pseudonym(pseudonym_key, event.patient_identifier().in_region(regional_reserve_oid))
    code = event.event_code().value
    stay = event.stay()
    cancels = event.cancels()
    stay_id = (
        None if stay is None else stay_key(pseudonym_key, event.business_key().source, stay[1])
    )
    entry = IntakeEntry(
        message_id=message_id,
        key=event.business_key(),
        payload_sha256=payload_digest(document),
        event_code=code,
        pseudonym=patient,
        received_at=now,
        stay=stay_id,
        withdraws=family.family == WITHDRAWAL_FAMILY,
        cancels=None if cancels is None else cancels[1],
    )
    outgoing = OutgoingRecord(
        topic=topics.INBOUND,
        key=patient,
        value=sent_as(bundle, bundle_ids()),
        headers={
            "message-id": message_id,
            "event": code,
            TRACEPARENT: (trace or new_trace()).traceparent,
        },
    )
    try:
        accepted = await store.record(entry, outgoing)
    except StayWithdrawn:
        raise InvalidEvent([withdrawn_violation(stay[0] if stay else "$")]) from None
    except UnknownCancelled:
        raise InvalidEvent([unknown_cancelled_violation(cancels[0] if cancels else "$")]) from None
    return replace(accepted, pseudonym=patient)


class SqlIntakeStore:
    """Each event in its own transaction, after a duplicate check of its own. The adapters
    use :class:`services.messaging.intake_group.GroupedIntakeStore`, which writes
    concurrent events together and falls back to this one event at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], owner: str) -> None:
        self._sessions = sessions
        self._owner = owner

    async def record(self, entry: IntakeEntry, outgoing: OutgoingRecord) -> Accepted:
        existing = await self._existing(entry.key)
        if existing is not None:
            return answer_as_repeat(entry, *existing)
        if refused_for_withdrawal(entry, await withdrawn_stays(self._sessions, [entry])):
            raise StayWithdrawn()
        if entry.cancels is not None:
            async with self._sessions() as session:
                known = await cancelled_originals(session, [entry])
            if refused_as_unknown(entry, known):
                raise UnknownCancelled()
        try:
            async with self._sessions.begin() as session:
                await session.execute(intake_record.insert(), intake_row(entry))
                await record_withdrawals(session, [entry])
                await add_to_outbox(session, self._owner, outgoing)
        except IntegrityError:
            # A concurrent identical POST won the race; answer as its repeat.
            existing = await self._existing(entry.key)
            if existing is None:
                raise
            return answer_as_repeat(entry, *existing)
        return Accepted(entry.message_id, duplicate=False)

    async def _existing(self, key: BusinessKey) -> tuple[str, str] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(intake_record.c.message_id, intake_record.c.payload_sha256).where(
                        intake_record.c.source_system == key.source,
                        intake_record.c.source_event_id == key.source_event_id,
                        intake_record.c.version == key.version,
                    )
                )
            ).first()
        return None if row is None else (row.message_id, row.payload_sha256)


def intake_row(entry: IntakeEntry) -> dict[str, Any]:
    """The ``intake_record`` row of ``entry``."""
    return dict(
        message_id=entry.message_id,
        source_system=entry.key.source,
        source_event_id=entry.key.source_event_id,
        version=entry.key.version,
        payload_sha256=entry.payload_sha256,
        event_code=entry.event_code,
        pseudonym=entry.pseudonym,
        received_at=entry.received_at,
    )


def answer_as_repeat(entry: IntakeEntry, message_id: str, payload_sha256: str) -> Accepted:
    """The answer to ``entry`` when its business key was stored first as ``message_id``
    with ``payload_sha256``: the same id again, or ConflictingResend for changed content."""
    if payload_sha256 != entry.payload_sha256:
        raise ConflictingResend(message_id)
    return Accepted(message_id, duplicate=True)


class FakeIntakeStore:
    """In-memory store for unit tests of the HTTP layer."""

    def __init__(self) -> None:
        self.entries: dict[BusinessKey, IntakeEntry] = {}
        self.outbox: list[OutgoingRecord] = []
        self.withdrawn_stays: set[str] = set()

    async def record(self, entry: IntakeEntry, outgoing: OutgoingRecord) -> Accepted:
        if entry.key in self.entries:
            first = self.entries[entry.key]
            return answer_as_repeat(entry, first.message_id, first.payload_sha256)
        if refused_for_withdrawal(entry, self.withdrawn_stays):
            raise StayWithdrawn()
        known = {k: Original(e.pseudonym, e.event_code) for k, e in self.entries.items()}
        if refused_as_unknown(entry, known):
            raise UnknownCancelled()
        self.entries[entry.key] = entry
        self.outbox.append(outgoing)
        if entry.withdraws and entry.stay is not None:
            self.withdrawn_stays.add(entry.stay)
        return Accepted(entry.message_id, duplicate=False)
