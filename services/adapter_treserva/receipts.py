"""Treserva's receipts (kvittens): the notice is visible in the Treserva journal
(``registrerad``), or was refused after it had been accepted (``avvisad``). Each becomes a
FHIR response message for the router; a receipt sent twice is recorded once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_treserva.delivery import OUTBOX_OWNER
from services.messaging import topics
from services.messaging.contracts import Violation, violations
from services.messaging.envelope import (
    EventCode,
    ResponseCode,
    System,
    response_message,
    to_json,
)
from services.messaging.kafka import OutgoingRecord
from services.messaging.outbox import add_to_outbox
from services.messaging.processed import already_processed, mark_processed

SCHEMA = "treserva/receipt.schema.json"
CONSUMER = "adapter_treserva.receipt"


class InvalidReceipt(ValueError):
    def __init__(self, found: list[Violation]) -> None:
        super().__init__(f"{len(found)} contract violation(s)")
        self.violations = found


async def accept_receipt(
    document: Any,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    relay_wake: asyncio.Event | None = None,
) -> bool:
    """Store the receipt as a response message; return True if it was a duplicate."""
    found = violations(SCHEMA, document)
    if found:
        raise InvalidReceipt(found)
    refused = document["status"] == "avvisad"
    message_id = document["meddelandeId"]
    response = response_message(
        request_message_id=message_id,
        event=EventCode.RECEIPT,
        responder=System.TRESERVA,
        code=ResponseCode.FATAL_ERROR if refused else ResponseCode.OK,
        diagnostics=(document.get("orsak") or "avvisad")[:200] if refused else None,
        response_id=str(uuid.uuid4()),
        now=clock(),
    )
    async with sessions.begin() as session:
        if await already_processed(session, CONSUMER, document["kvittensId"]):
            return True
        await add_to_outbox(
            session,
            OUTBOX_OWNER,
            OutgoingRecord(
                topic=topics.RESULTS,
                key=message_id,
                value=to_json(response),
                headers={"message-id": message_id},
            ),
        )
        await mark_processed(session, CONSUMER, document["kvittensId"])
    if relay_wake is not None:
        relay_wake.set()
    return False
