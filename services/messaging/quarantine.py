"""Records kept aside, and how an adapter tells the router it quarantined an untrusted one.

Every service's database has ``rejected_record``: a Kafka record its consumer would not
apply (poison, or a signature that does not hold), by topic, partition and offset, with the
reason. The record itself is never stored, so nothing of a patient is.

A record whose signature does not hold (:mod:`services.messaging.record_signing`) changes
nothing and raises a critical ``untrusted_record`` incident. Incidents are the router's, so
an adapter that refuses a forged delivery command tells the router with a **quarantine
notice**: a small JSON record on the results topic, signed by the adapter like every result,
that names where the refused record was (topic, partition, offset) and why (the class of the
signature error). It carries nothing of the record: no value, no key, no header, so no patient
data, whatever a forger put there::

    forged command ──▶ adapter: rejected_record row + notice (outbox), one transaction
                                                     │ results topic, signed
                                                     ▼
                       router: critical untrusted_record incident for the command's topic
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TypeGuard

from sqlalchemy import Column, Integer, String, Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging import topics
from services.messaging.db import BigId, UtcDateTime, metadata
from services.messaging.kafka import IncomingRecord, OutgoingRecord

rejected_record = Table(
    "rejected_record",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigId, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)
"""Kafka records a consumer could not read or trust: kept for operations, skipped."""


async def keep_aside(
    session: AsyncSession, record: IncomingRecord, reason: str, now: datetime
) -> None:
    """Record, in the caller's transaction, that ``record`` was not applied and why."""
    await session.execute(
        rejected_record.insert().values(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason[:500],
            received_at=now,
        )
    )


NOTICE_EVENT = "record-quarantined"
"""The ``event`` header of a quarantine notice on the results topic."""

REASON_CODES = frozenset(
    {
        "UnsignedRecord",
        "MalformedSignature",
        "UnknownSigningKey",
        "BadRecordSignature",
        "WrongSigner",
    }
)
"""What a notice may say of why: the classes of ``RecordSignatureError``."""

UNKNOWN_REASON = "RecordSignatureError"


def reason_code(untrusted: str) -> str:
    """The error class that opens ``IncomingRecord.untrusted`` (``"<class>: <detail>"``).
    The detail may quote what a forger wrote (a signer's name, a key id); the code cannot."""
    code = untrusted.partition(":")[0].strip()
    return code if code in REASON_CODES else UNKNOWN_REASON


class MalformedNotice(ValueError):
    """A record with the notice's header that is not a notice."""


@dataclass(frozen=True, slots=True)
class QuarantineNotice:
    """Where the untrusted record was, and why it was not trusted."""

    topic: str
    partition: int
    offset: int
    reason: str  # one of REASON_CODES

    @classmethod
    def of(cls, record: IncomingRecord) -> QuarantineNotice:
        """The notice about an untrusted ``record`` (``record.untrusted`` set)."""
        reason = reason_code(record.untrusted or "")
        return cls(record.topic, record.partition, record.offset, reason)

    def to_record(self, *, quarantined_by: str) -> OutgoingRecord:
        value = {
            "type": NOTICE_EVENT,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "quarantinedBy": quarantined_by,
        }
        return OutgoingRecord(
            topic=topics.RESULTS,
            key=f"{self.topic}/{self.partition}/{self.offset}",  # never the patient's pseudonym
            value=json.dumps(value, separators=(",", ":")),
            headers={"event": NOTICE_EVENT},
        )

    @classmethod
    def read(cls, record: IncomingRecord) -> QuarantineNotice:
        """The notice a record on the results topic carries, or :class:`MalformedNotice`."""
        try:
            value = json.loads(record.value)
        except ValueError as exc:  # UnicodeDecodeError is one
            raise MalformedNotice("quarantine notice: not JSON") from exc
        if not isinstance(value, dict) or value.get("type") != NOTICE_EVENT:
            raise MalformedNotice("quarantine notice: not a notice")
        topic, partition, offset = value.get("topic"), value.get("partition"), value.get("offset")
        if topic not in topics.DELIVERED_BY_TOPIC:
            raise MalformedNotice("quarantine notice: not a delivery topic")
        if not _count(partition) or not _count(offset):
            raise MalformedNotice("quarantine notice: no partition and offset")
        reason = value.get("reason")
        return cls(topic, partition, offset, reason if reason in REASON_CODES else UNKNOWN_REASON)


def is_notice(record: IncomingRecord) -> bool:
    return record.topic == topics.RESULTS and record.headers.get("event") == NOTICE_EVENT


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
