"""Service layer of a delivery: one delivery command from the router → one POST to Treserva
→ one delivery outcome back to the router (outbox), recorded as processed in the same
transaction. A redelivered command is recognised and not posted again; if the process dies
between the POST and the commit, the command is read again and posted again with the same
Idempotency-Key, and Treserva dedupes it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_treserva.client import (
    FatalDeliveryError,
    TransientDeliveryError,
    TreservaClient,
)
from services.adapter_treserva.translation import TranslationError, to_treserva_notice
from services.messaging import topics
from services.messaging.envelope import (
    EventCode,
    MalformedMessage,
    ResponseCode,
    System,
    read_envelope,
    response_message,
    to_json,
)
from services.messaging.kafka import IncomingRecord, OutgoingRecord
from services.messaging.outbox import add_to_outbox
from services.messaging.processed import already_processed, mark_processed

log = logging.getLogger(__name__)

OUTBOX_OWNER = "adapter_treserva"
CONSUMER = "adapter_treserva.delivery"
SUPPORTED = {EventCode.ADMISSION_NOTICE.value}


@dataclass
class DeliveryDeps:
    sessions: async_sessionmaker[AsyncSession]
    client: TreservaClient
    clock: Callable[[], datetime]
    relay_wake: asyncio.Event | None = None


async def handle_delivery_batch(records: list[IncomingRecord], *, deps: DeliveryDeps) -> None:
    """Records of one patient (Kafka key) are delivered in order; patients in parallel."""
    by_key: dict[str | None, list[IncomingRecord]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)

    async def deliver_in_order(group: list[IncomingRecord]) -> None:
        for record in group:
            await deliver(record, deps=deps)

    await asyncio.gather(*(deliver_in_order(group) for group in by_key.values()))
    if deps.relay_wake is not None:
        deps.relay_wake.set()


async def deliver(record: IncomingRecord, *, deps: DeliveryDeps) -> None:
    message_id = record.headers.get("message-id")
    attempt = record.headers.get("attempt", "1")
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    if not message_id:
        log.error("delivery command without message-id skipped", extra=where)
        return
    event_key = f"{message_id}#{attempt}"
    async with deps.sessions() as session:
        if await already_processed(session, CONSUMER, event_key):
            log.info(
                "delivery command already handled",
                extra={"message_id": message_id, "attempt": attempt},
            )
            return
    code, diagnostics = await _post(record, message_id, deps)
    response = response_message(
        request_message_id=message_id,
        event=EventCode.DELIVERY_OUTCOME,
        responder=System.TRESERVA,
        code=code,
        diagnostics=diagnostics,
        response_id=str(uuid.uuid4()),
        now=deps.clock(),
    )
    headers = {
        "message-id": message_id,
        "attempt": attempt,
        "delivery-id": record.headers.get("delivery-id", ""),
    }
    async with deps.sessions.begin() as session:
        if await already_processed(session, CONSUMER, event_key):
            return  # a concurrent redelivery got here first
        await add_to_outbox(
            session,
            OUTBOX_OWNER,
            OutgoingRecord(
                topic=topics.RESULTS, key=message_id, value=to_json(response), headers=headers
            ),
        )
        await mark_processed(session, CONSUMER, event_key)
    log.info(
        "delivery outcome",
        extra={
            "message_id": message_id,
            "attempt": attempt,
            "outcome": code.value,
            "detail": diagnostics,
        },
    )


async def _post(
    record: IncomingRecord, message_id: str, deps: DeliveryDeps
) -> tuple[ResponseCode, str | None]:
    try:
        env = read_envelope(record.value)
        if env.event_code not in SUPPORTED:
            return ResponseCode.FATAL_ERROR, f"unsupported event {env.event_code}"
        notice = to_treserva_notice(Bundle.model_validate_json(record.value))
    except (MalformedMessage, TranslationError) as exc:
        return ResponseCode.FATAL_ERROR, f"cannot translate: {exc}"[:300]
    except ValidationError as exc:
        return ResponseCode.FATAL_ERROR, f"not a valid FHIR Bundle ({exc.error_count()} errors)"
    try:
        receipt = await deps.client.post_admission_notice(notice, idempotency_key=message_id)
    except TransientDeliveryError as exc:
        return ResponseCode.TRANSIENT_ERROR, exc.reason
    except FatalDeliveryError as exc:
        return ResponseCode.FATAL_ERROR, exc.reason
    return ResponseCode.OK, f"HTTP {receipt.http_status} in {receipt.latency_ms:.0f} ms"
