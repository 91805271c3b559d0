"""The webhook dispatcher: delivers to rest-hook subscribers, as loops inside the router.

::

    dispatch_due ──outbox──▶ carebridge.outbound.webhooks.v1 ──▶ WebhookDispatcher
                                                                   │ signed POST
                                                                   ▼
    delivery log ◀── outcome + processed-command record ──── subscriber's answer
                     (one transaction; offset committed after it)

The guarantees are those of a journal adapter's delivery. The command comes through the
outbox, so nothing dispatched is lost; the processed-command record is written in the same
transaction as the outcome, so a redelivered command is not POSTed again, and the Kafka
offset is committed only after that commit (:func:`consume_forever`). If the process dies
between the POST and the commit, the command is read again and POSTed again with the same
``Idempotency-Key`` (the message id, also ``MessageHeader.id``), and the subscriber dedupes
it; each POST carries a ``Bundle.id`` of its own. A command whose attempt is no longer the
delivery's current one (timed out and retried, or the delivery already resolved) is skipped.
Outcomes go through :func:`apply_outcome`, so retries with back-off, the circuit breaker per
destination (here: per subscription) and dead letter with an alert apply unchanged; per
patient ordering comes from the router's hold-back.

**A subscriber's 2xx is its acknowledgement.** There is no receipt channel for webhooks, so
a rest-hook delivery goes from ``dispatched`` straight to ``confirmed`` on ok. A subscription
that is off or gone ends its deliveries as a fatal error, "subscription ended". The
router's sender (:mod:`services.router.subscriptions.guard`) checks the callback again before
each POST and pins it to the checked address; a refusal is a fatal error too, "endpoint
refused: …" (a name that does not resolve: transient).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import topics, tracing
from services.messaging.envelope import (
    BundleIdSource,
    ResponseCode,
    fresh_bundle_id,
    stamp_bundle_id,
)
from services.messaging.families import is_versioned
from services.messaging.journal_client import FatalDeliveryError, TransientDeliveryError
from services.messaging.kafka import IncomingRecord
from services.messaging.processed import already_processed, mark_processed
from services.messaging.supersession import mark_superseded
from services.messaging.webhook_client import Webhook, WebhookSender
from services.router.alerting.events import Severity
from services.router.alerting.incidents import Affected, raise_alert
from services.router.routing.deliveries import (
    RoutingRules,
    apply_outcome,
    delivery_rows,
    dispatch_due,
    quarantine_untrusted,
)
from services.router.routing.domain import AlertKind, DeliveryState
from services.router.routing.tables import delivery
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.store import WebhookTarget

log = logging.getLogger(__name__)

CONSUMER = topics.WEBHOOK_GROUP
"""Kafka consumer group, and the consumer name of the processed-command records."""

SUBSCRIPTION_ENDED = "subscription ended"
UNSIGNABLE = "secret_undecryptable: its key left ROUTER_PAYLOAD_KEYS; restore it, then replay"


@dataclass(frozen=True, slots=True)
class WebhookCommand:
    """The headers of one record on the webhook topic."""

    delivery_id: int
    attempt: int
    subscription_id: str
    message_id: str
    event: str
    superseded_by: str | None
    trace_id: str | None = None  # of the record's traceparent: for logs

    @property
    def key(self) -> str:
        return f"{self.delivery_id}#{self.attempt}"

    @classmethod
    def read(cls, record: IncomingRecord) -> WebhookCommand | None:
        h = record.headers
        delivery_id, attempt = h.get("delivery-id", ""), h.get("attempt", "")
        sub, message_id = h.get("subscription-id"), h.get("message-id")
        if not (delivery_id.isdigit() and attempt.isdigit() and sub and message_id):
            return None
        return cls(
            int(delivery_id),
            int(attempt),
            sub,
            message_id,
            h.get("event", ""),
            h.get("superseded-by") or None,
            tracing.trace_id_of(h.get(tracing.HEADER)),
        )


@dataclass
class WebhookDispatcher:
    sessions: async_sessionmaker[AsyncSession]
    rules: RoutingRules
    sender: WebhookSender
    clock: Callable[[], datetime]
    relay_wake: asyncio.Event | None = None
    max_concurrency: int = 16
    # Bundle.id of each POST (every attempt gets its own; the Idempotency-Key, the message
    # id, stays)
    bundle_ids: BundleIdSource = fresh_bundle_id

    async def handle_batch(self, records: list[IncomingRecord]) -> None:
        """One subscriber's records of one patient in order; the rest in parallel."""
        groups: dict[tuple[str | None, str | None], list[IncomingRecord]] = {}
        for record in records:
            groups.setdefault((record.key, record.headers.get("subscription-id")), []).append(
                record
            )
        limit = asyncio.Semaphore(self.max_concurrency)

        async def in_order(group: list[IncomingRecord]) -> int:
            applied = 0
            async with limit:
                for record in group:
                    applied += await self.deliver(record)
            return applied

        applied = sum(await asyncio.gather(*(in_order(g) for g in groups.values())))
        if applied:  # a resolved delivery may release the patient's next one
            async with self.sessions.begin() as session:
                patients = {r.key for r in records if r.key}  # the rest: the tick
                await dispatch_due(session, self.rules, self.clock(), patients=patients)
            if self.relay_wake is not None:
                self.relay_wake.set()

    async def deliver(self, record: IncomingRecord) -> bool:
        """POST one command and apply its outcome; True if an outcome was applied."""
        if record.untrusted is not None:  # a forged command goes nowhere
            async with self.sessions.begin() as session:
                await quarantine_untrusted(session, record, self.rules, self.clock())
            return False
        command = WebhookCommand.read(record)
        if command is None:
            log.error(
                "webhook command without its headers skipped",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            )
            return False
        async with self.sessions() as session:
            if await already_processed(session, CONSUMER, command.key):
                log.info("webhook command already handled", extra=_ids(command))
                return False
            row = await _delivery(session, command.delivery_id)
            target = await subscription_store.webhook_target(session, command.subscription_id)
        if row is None or not _current(row, command):
            log.info("stale webhook command skipped", extra=_ids(command))
            return False
        code, detail, status = await self._post(record, command, target)
        async with self.sessions.begin() as session:
            if await already_processed(session, CONSUMER, command.key):
                return False  # a concurrent redelivery got here first
            row = await _delivery(session, command.delivery_id)
            if row is not None and status == SIGNATURE_REFUSED:
                await raise_alert(
                    session,
                    kind=AlertKind.SIGNATURE_REFUSED,
                    destination=row.destination,
                    event_code=row.event_code,
                    affected=Affected.of(row, self.rules.keyring),
                    now=self.clock(),
                    severity=Severity.WARNING,
                    sinks=self.rules.alert_sinks,
                )
            if row is not None:
                await apply_outcome(
                    session,
                    row,
                    attempt_no=command.attempt,
                    code=code,
                    detail=detail,
                    rules=self.rules,
                    now=self.clock(),
                    ok_state=DeliveryState.CONFIRMED,
                )
            await mark_processed(session, CONSUMER, command.key)
        log.info(
            "webhook outcome", extra={**_ids(command), "outcome": code.value, "detail": detail}
        )
        return True

    async def _post(
        self, record: IncomingRecord, command: WebhookCommand, target: WebhookTarget | None
    ) -> tuple[ResponseCode, str, int | None]:
        """(outcome, detail, the subscriber's HTTP status when it answered an error)."""
        if target is not None and target.secret_unreadable:
            return ResponseCode.FATAL_ERROR, UNSIGNABLE, None
        if target is None or not target.deliverable or target.secret is None:
            return ResponseCode.FATAL_ERROR, SUBSCRIPTION_ENDED, None
        try:
            receipt = await self.sender.send(
                Webhook(
                    url=target.endpoint,
                    body=_body(record, command, self.bundle_ids()),
                    secret=target.secret,
                    idempotency_key=command.message_id,
                    event=command.event,
                    subscription_id=command.subscription_id,
                )
            )
        except TransientDeliveryError as exc:
            return ResponseCode.TRANSIENT_ERROR, exc.reason, exc.http_status
        except FatalDeliveryError as exc:
            return ResponseCode.FATAL_ERROR, exc.reason, exc.http_status
        return ResponseCode.OK, f"HTTP {receipt.http_status} in {receipt.latency_ms:.0f} ms", None


SIGNATURE_REFUSED = 401  # the subscriber refused our signature (see webhook_client)


def _body(record: IncomingRecord, command: WebhookCommand, bundle_id: str) -> bytes:
    """The FHIR message as it is, with this send's own ``Bundle.id``; an older version that
    arrived after a newer one carries the MessageHeader's ``superseded-by`` extension naming
    the newer message, as primary care's copy does, so a subscriber never mistakes it for
    the current one. Built after the command's signature was checked; the subscriber's
    signature covers these bytes."""
    bundle = json.loads(record.value)
    if command.superseded_by is not None and is_versioned(command.event):
        mark_superseded(bundle, command.superseded_by)
    return stamp_bundle_id(bundle, bundle_id).encode()


async def _delivery(session: AsyncSession, delivery_id: int) -> Any:
    return (await session.execute(delivery_rows().where(delivery.c.id == delivery_id))).first()


def _current(row: Any, command: WebhookCommand) -> bool:
    return bool(row.state == DeliveryState.DISPATCHED.value and row.attempts == command.attempt)


def _ids(command: WebhookCommand) -> dict[str, Any]:
    """What may be logged about a command: ids only, never patient data."""
    return {
        "message_id": command.message_id,
        "delivery_id": command.delivery_id,
        "subscription": command.subscription_id,
        "attempt": command.attempt,
        "trace_id": command.trace_id,
    }
