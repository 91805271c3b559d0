"""Service layer of a delivery to a destination journal: one delivery command from the
router → the family's pure translation → one POST to the journal's API → one delivery outcome
back to the router (outbox), recorded as processed in the same transaction. For a destination
confirmed by read-back, an accepted POST also schedules the record's read-back in that
transaction (:mod:`services.messaging.read_back`).

A redelivered command is recognised and not posted again; if the process dies between the
POST and the commit, the command is read again and posted again with the same
Idempotency-Key, and the journal dedupes it. A message the router marked as superseded (an
older version of a SIP or medication list that arrived after a newer one) is delivered with
the adapter's ``superseded_field`` set, so the journal files it without applying it.

A destination that takes the FHIR message as it is gets a fresh ``Bundle.id`` on every send
(``DeliveryDeps.bundle_ids``), while ``MessageHeader.id`` (the message id) stays: that is
the Idempotency-Key the journal dedupes on."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import read_back_store, topics
from services.messaging.case import case_id_of
from services.messaging.clock import boot_id
from services.messaging.envelope import (
    CONFIRM_BY_HEADER,
    FAILURE_HEADER,
    RECEIVER_UNIT_HEADER,
    BundleIdSource,
    EventCode,
    FailureKind,
    MalformedMessage,
    ResponseCode,
    System,
    fresh_bundle_id,
    read_envelope,
    response_message,
    to_json,
)
from services.messaging.families import is_versioned
from services.messaging.fhir_parts import TranslationError, stamp_receiver
from services.messaging.intake_first import IntakeFirst
from services.messaging.journal_client import (
    FatalDeliveryError,
    JournalClient,
    TransientDeliveryError,
)
from services.messaging.kafka import IncomingRecord, OutgoingRecord
from services.messaging.native import FHIR_MESSAGE, OutboundFamily
from services.messaging.outbox import add_to_outbox
from services.messaging.processed import already_processed, mark_processed
from services.messaging.quarantine import QuarantineNotice, keep_aside
from services.messaging.read_back_store import ReadBackTerms
from services.messaging.supersession import mark_superseded
from services.messaging.tracing import HEADER as TRACEPARENT
from services.messaging.tracing import TraceContext, from_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """What one adapter delivers: to which journal, which families, and how it marks an
    older version that arrives after a newer one."""

    system: System
    owner: str  # outbox owner and processed-event consumer prefix, e.g. "adapter_treserva"
    families: tuple[OutboundFamily, ...]
    # marks a document as superseded by the newer message id (see field_marker, message_marker)
    mark_superseded: Callable[[dict[str, Any], str], None]
    # names the receiving unit's HSA-id in a native document (issue 20); None: the
    # document is the FHIR message, whose MessageHeader.destination.receiver names it
    mark_receiver: Callable[[dict[str, Any], str], None] | None = None
    # names the case id (services.messaging.case) in a native document, so the journal can
    # echo it in documents that name no stay; None: the FHIR message carries it itself
    mark_case: Callable[[dict[str, Any], str], None] | None = None

    def family_for(self, event_code: str) -> OutboundFamily | None:
        return next((f for f in self.families if event_code in f.events), None)


def field_marker(name: str) -> Callable[[dict[str, Any], str], None]:
    """Mark a native document by setting ``name`` to the newer message id."""

    def mark(document: dict[str, Any], newer: str) -> None:
        document[name] = newer

    return mark


def message_marker(document: dict[str, Any], newer: str) -> None:
    """Mark a FHIR message Bundle as superseded: the MessageHeader's ``superseded-by``
    extension names the newer message (:mod:`services.messaging.supersession`)."""
    mark_superseded(document, newer)


@dataclass
class DeliveryDeps:
    sessions: async_sessionmaker[AsyncSession]
    client: JournalClient
    clock: Callable[[], datetime]
    destination: Destination
    # read with ``clock`` when a read-back is scheduled: its time left is measured on it
    # (services.messaging.read_back_store.remaining); None: by the wall clock only
    monotonic: Callable[[], float] | None = None
    relay_wake: asyncio.Event | None = None
    # POSTs in flight to the journal at once. A batch holds up to 500 patients; sending
    # them all at once queued most in the HTTP pool, where the wait counts against the
    # request timeout: under load they timed out, were retried and tripped the circuit.
    max_in_flight: int = 16
    # set: the destination is confirmed by read-back (alone or with receipts); what is
    # accepted is read back on these terms, and ``read_back_wake`` wakes the poller
    read_back: ReadBackTerms | None = None
    read_back_wake: asyncio.Event | None = None
    # the adapter's journals' POSTs go first (services.messaging.intake_first)
    intake: IntakeFirst | None = None
    # Bundle.id of each send of a FHIR message (every attempt, retry and replay gets its
    # own); the message id (MessageHeader.id, the Idempotency-Key) stays
    bundle_ids: BundleIdSource = fresh_bundle_id


async def handle_delivery_batch(records: list[IncomingRecord], *, deps: DeliveryDeps) -> None:
    """Records of one patient (Kafka key) are delivered in order; patients in parallel,
    at most ``deps.max_in_flight`` at a time."""
    by_key: dict[str | None, list[IncomingRecord]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    in_flight = asyncio.Semaphore(deps.max_in_flight)

    async def deliver_in_order(group: list[IncomingRecord]) -> None:
        for record in group:
            async with in_flight:
                if deps.intake is not None:
                    await deps.intake.turn()
                await deliver(record, deps=deps)

    await asyncio.gather(*(deliver_in_order(group) for group in by_key.values()))
    if deps.relay_wake is not None:
        deps.relay_wake.set()


async def deliver(record: IncomingRecord, *, deps: DeliveryDeps) -> None:
    message_id = record.headers.get("message-id")
    attempt = record.headers.get("attempt", "1")
    trace = from_headers(record.headers)  # this hop: the result record carries it on
    ids = {"message_id": message_id, "pseudonym": record.key, **trace.log_fields()}
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    if record.untrusted is not None:
        await quarantine(record, deps=deps)
        return
    if not message_id:
        log.error("delivery command without message-id skipped", extra=where)
        return
    event_key = f"{message_id}#{attempt}"
    consumer = f"{deps.destination.owner}:{deps.destination.system.value}"
    async with deps.sessions() as session:
        if await already_processed(session, consumer, event_key):
            log.info("delivery command already handled", extra={**ids, "attempt": attempt})
            return
    code, diagnostics, failure, path = await _post(record, message_id, deps)
    if deps.intake is not None:
        await deps.intake.turn()  # a journal's POST goes first (intake_first)
    read_back = deps.read_back if code is ResponseCode.OK else None  # accepted: read it back
    response = response_message(
        request_message_id=message_id,
        event=EventCode.DELIVERY_OUTCOME,
        responder=deps.destination.system,
        code=code,
        diagnostics=diagnostics,
        response_id=str(uuid.uuid4()),
        now=deps.clock(),
    )
    headers = {
        "message-id": message_id,
        "attempt": attempt,
        "delivery-id": record.headers.get("delivery-id", ""),
        TRACEPARENT: trace.traceparent,
    }
    if failure is not None:
        headers[FAILURE_HEADER] = failure.value
    async with deps.sessions.begin() as session:
        if await already_processed(session, consumer, event_key):
            return  # a concurrent redelivery got here first
        await add_to_outbox(
            session,
            deps.destination.owner,
            OutgoingRecord(
                topic=topics.RESULTS, key=message_id, value=to_json(response), headers=headers
            ),
        )
        await mark_processed(session, consumer, event_key)
        if read_back is not None and path is not None:
            await _schedule_read_back(session, read_back, record, message_id, path, trace, deps)
    if read_back is not None and deps.read_back_wake is not None:
        deps.read_back_wake.set()
    log.info(
        "delivery outcome",
        extra={**ids, "attempt": attempt, "outcome": code.value, "detail": diagnostics},
    )


async def quarantine(record: IncomingRecord, *, deps: DeliveryDeps) -> None:
    """A forged or altered delivery command is never posted to the journal: it is kept aside
    with its reason (``rejected_record``), and a quarantine notice on the results topic has
    the router raise its critical incident (:mod:`services.messaging.quarantine`), in one
    transaction, once per record. The router still waits for the real delivery's outcome,
    so nothing real is lost. Neither the log nor the notice carries anything of the record
    but where it was and the class of its signature error."""
    notice = QuarantineNotice.of(record)
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    consumer = f"{deps.destination.owner}:{deps.destination.system.value}"
    event_key = f"quarantined:{record.topic}/{record.partition}/{record.offset}"
    async with deps.sessions.begin() as session:
        if await already_processed(session, consumer, event_key):
            return  # redelivered: kept aside and reported already
        await keep_aside(session, record, f"untrusted: {record.untrusted}", deps.clock())
        await add_to_outbox(
            session, deps.destination.owner, notice.to_record(quarantined_by=deps.destination.owner)
        )
        await mark_processed(session, consumer, event_key)
    if deps.relay_wake is not None:
        deps.relay_wake.set()
    log.error("untrusted delivery command quarantined", extra={**where, "reason": notice.reason})


async def _schedule_read_back(
    session: AsyncSession,
    terms: ReadBackTerms,
    record: IncomingRecord,
    message_id: str,
    path: str,
    trace: TraceContext,
    deps: DeliveryDeps,
) -> None:
    now = deps.clock()
    monotonic = deps.monotonic() if deps.monotonic is not None else None
    await read_back_store.schedule(
        session,
        destination=deps.destination.system.value,
        message_id=message_id,
        path=path,
        deadline=terms.deadline(record.headers.get(CONFIRM_BY_HEADER), now),
        first_check_at=now + timedelta(seconds=terms.first_check_s),
        traceparent=trace.traceparent,
        now=now,
        monotonic=monotonic,
        boot=boot_id(),
    )


class Untranslatable(Exception):
    """A FHIR message this destination cannot take; ``reason`` names no patient data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def translate(
    value: str | bytes, destination: Destination, receiver: str | None = None
) -> tuple[str, OutboundFamily, dict[str, Any]]:
    """(event code, family, native document) of the FHIR message ``value`` for
    ``destination``, or :class:`Untranslatable`. ``receiver``: the receiving unit's HSA-id
    from the delivery command, stamped as ``MessageHeader.destination.receiver`` and, for a
    native document, in the destination's receiver field. A translator that fails in a way
    it should not (a bug: TypeError, AttributeError…) is caught here too and named by its
    class only, so one bad message is answered fatal and never stalls the destination's
    queue."""
    try:
        env = read_envelope(value)
        family = destination.family_for(env.event_code)
        if family is None:
            raise Untranslatable(f"{destination.system.display} takes no {env.event_code}")
        bundle = json.loads(value)
        if receiver is not None:
            stamp_receiver(bundle, destination.system, receiver)
        document = family.to_native(bundle)
        if receiver is not None and destination.mark_receiver is not None:
            destination.mark_receiver(document, receiver)
        case = case_id_of(bundle)
        if case is not None and destination.mark_case is not None:
            destination.mark_case(document, case)
        return env.event_code, family, document
    except (MalformedMessage, TranslationError) as exc:
        raise Untranslatable(f"cannot translate: {exc}"[:300]) from None
    except Untranslatable:
        raise
    except Exception as exc:
        log.error("translator failed", extra={"error": type(exc).__name__})
        raise Untranslatable(f"cannot translate: {type(exc).__name__} in the translator") from None


DESTINATION_WIDE = frozenset({429, 502, 503, 504})  # statuses about the whole destination


async def _post(
    record: IncomingRecord, message_id: str, deps: DeliveryDeps
) -> tuple[ResponseCode, str | None, FailureKind | None, str | None]:
    """(outcome, diagnostics, failure kind of a transient outcome, the path posted to)."""
    destination = deps.destination
    try:
        event_code, family, document = translate(
            record.value, destination, record.headers.get(RECEIVER_UNIT_HEADER)
        )
    except Untranslatable as exc:
        return ResponseCode.FATAL_ERROR, exc.reason, None, None
    newer = record.headers.get("superseded-by")
    if newer and is_versioned(event_code):
        destination.mark_superseded(document, newer)
    if family.schema == FHIR_MESSAGE:
        # this send's own Bundle.id, stamped on what is posted: the signed record is
        # verified and left as it is
        document["id"] = deps.bundle_ids()
    try:
        receipt = await deps.client.post(family.path, document, idempotency_key=message_id)
    except TransientDeliveryError as exc:
        wide = exc.http_status is None or exc.http_status in DESTINATION_WIDE
        kind = FailureKind.TRANSPORT if wide else FailureKind.RESPONSE
        return ResponseCode.TRANSIENT_ERROR, exc.reason, kind, family.path
    except FatalDeliveryError as exc:
        return ResponseCode.FATAL_ERROR, exc.reason, None, family.path
    detail = f"HTTP {receipt.http_status} in {receipt.latency_ms:.0f} ms"
    return ResponseCode.OK, detail, None, family.path
