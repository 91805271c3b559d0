"""Receipts (kvittens) from a destination journal: the record is visible in the journal
(``confirmed``), or it was rejected after it had been accepted. Each adapter parses its
journal's native receipt into a :class:`Receipt`, and the read-back poller
(:mod:`services.messaging.read_back`) makes one when it finds the record in a journal that
pushes none; :func:`to_response` turns it into a FHIR response message for the router (pure),
and :func:`accept_receipt` stores that in the outbox, recorded once even if the journal sends
the receipt twice, and ends any read-back still pending for the message.

Exceptions::

    InvalidEvent (services.messaging.native)   the receipt breaks its contract
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import topics
from services.messaging.envelope import (
    EventCode,
    ReceiverEvidence,
    ResponseCode,
    System,
    fhir_instant,
    response_message,
    to_json,
)
from services.messaging.kafka import OutgoingRecord
from services.messaging.outbox import add_to_outbox
from services.messaging.processed import already_processed, mark_processed
from services.messaging.read_back_store import settle
from services.messaging.tracing import HEADER as TRACEPARENT
from services.messaging.tracing import TraceContext, new_trace

_RECEIPT_NAMESPACE = uuid.UUID("0b7c2f4e-91d5-5a0e-8d1c-3f2a6b9e4c70")
READ_BACK_PREFIX = "read-back:"  # the receipt id of a receipt made by a read-back


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: str  # the journal's own id of the receipt: dedup key
    message_id: str  # the broker message it is about
    rejected: bool
    reason: str | None  # why it was rejected; never patient data (the journal's code/text)
    # the journal's own id of the record and when it stored it, when it tells: the
    # evidence (pushed receipts: their record id and time; read-back: the GET's answer)
    record_id: str | None = None
    recorded_at: datetime | None = None


def to_response(receipt: Receipt, *, responder: System, now: datetime) -> Bundle:
    """The FHIR response message of a receipt; its id is stable per (journal, receipt id).
    The journal's record id and time travel as the receipt's evidence
    (:class:`~services.messaging.envelope.ReceiverEvidence`); a receipt from a read-back
    also names them in an informational OperationOutcome."""
    read_back = receipt.receipt_id.startswith(READ_BACK_PREFIX)
    if receipt.rejected:
        diagnostics: str | None = (receipt.reason or "rejected")[:200]
    elif read_back and (receipt.record_id is not None or receipt.recorded_at is not None):
        parts = ["read back from the journal"]
        if receipt.record_id is not None:
            parts.append(f"record {receipt.record_id[:64]}")
        if receipt.recorded_at is not None:
            parts.append(f"stored {fhir_instant(receipt.recorded_at)}")
        diagnostics = ", ".join(parts)
    else:
        diagnostics = None
    return response_message(
        request_message_id=receipt.message_id,
        event=EventCode.RECEIPT,
        responder=responder,
        code=ResponseCode.FATAL_ERROR if receipt.rejected else ResponseCode.OK,
        diagnostics=diagnostics,
        response_id=str(uuid.uuid5(_RECEIPT_NAMESPACE, f"{responder.value}|{receipt.receipt_id}")),
        now=now,
        evidence=ReceiverEvidence(receipt.record_id, receipt.recorded_at),
    )


async def accept_receipt(
    receipt: Receipt,
    *,
    responder: System,
    owner: str,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    relay_wake: asyncio.Event | None = None,
    trace: TraceContext | None = None,
) -> bool:
    """Store the receipt as a response message; return True if it was a duplicate. The
    result record carries ``trace`` (the journal's own ``traceparent``, or a new trace)."""
    response = to_response(receipt, responder=responder, now=clock())
    async with sessions.begin() as session:
        # any receipt, pushed or read back, ends the message's read-back (mode "both")
        await settle(session, responder.value, receipt.message_id)
        consumer = f"{owner}.receipt"
        if await already_processed(session, consumer, receipt.receipt_id):
            return True
        await add_to_outbox(
            session,
            owner,
            OutgoingRecord(
                topic=topics.RESULTS,
                key=receipt.message_id,
                value=to_json(response),
                headers={
                    "message-id": receipt.message_id,
                    TRACEPARENT: (trace or new_trace()).traceparent,
                },
            ),
        )
        await mark_processed(session, consumer, receipt.receipt_id)
    if relay_wake is not None:
        relay_wake.set()
    return False
