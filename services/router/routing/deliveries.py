"""The router's service layer: accept inbound messages, dispatch deliveries, apply outcomes.

Every function takes an open transaction and the current time; the caller commits, then
commits the Kafka offset. State changes go through :func:`move`, which checks the state
machine, guards against a concurrent change (``WHERE state = <expected>``) and records the
transition.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging import topics, tracing
from services.messaging.care_facts import CareFacts, read_care_facts
from services.messaging.envelope import (
    CONFIRM_BY_HEADER,
    FAILURE_HEADER,
    RECEIVER_UNIT_HEADER,
    Envelope,
    EventCode,
    FailureKind,
    ResponseCode,
)
from services.messaging.families import is_versioned
from services.messaging.kafka import IncomingRecord, OutgoingRecord
from services.messaging.outbox import add_many_to_outbox, add_to_outbox
from services.messaging.payload_crypto import (
    SANDBOX_PAYLOAD_KEYS,
    Keyring,
    PayloadCryptoError,
    key_id_of,
)
from services.messaging.quarantine import MalformedNotice, QuarantineNotice, keep_aside
from services.router import domain_events
from services.router.alerting.events import Severity
from services.router.alerting.incidents import Affected, AlertSink
from services.router.routing import cancels, circuit, episodes
from services.router.routing.addressing import (
    ADDRESSED,
    Address,
    Addressing,
    Receivers,
    load_receivers,
)
from services.router.routing.circuit import CircuitPolicy
from services.router.routing.clock_jumps import Jump, on_our_scale
from services.router.routing.consent import (
    STAY_WITHDRAWN,
    UNIT_NOT_COVERED,
    routing_hold,
    unit_hold,
)
from services.router.routing.deadlines import Stage, legal_deadline, next_stage_at
from services.router.routing.domain import (
    STOPPED_BY_CANCELLATION,
    AlertKind,
    DeliveryState,
    FamilyPolicy,
    RetryPolicy,
    check_delivery_transition,
)
from services.router.routing.tables import (
    delivery,
    delivery_attempt,
    delivery_transition,
    message,
    subscription,
)
from services.router.subscriptions.matching import ChannelType, Subscription, route

log = logging.getLogger(__name__)

OUTBOX_OWNER = "router"


@dataclass(frozen=True)
class RoutingRules:
    policies: dict[str, FamilyPolicy]
    attempt_timeout: timedelta
    rng: random.Random
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    instance: str = "router"  # this replica's name: it sweeps only what it dispatched
    alert_sinks: tuple[AlertSink, ...] = ()  # told of every incident change
    sip_in_working_days: bool = False  # a regional agreement may count the 3 days so
    # seals message.payload at rest; the service passes RouterSettings.keyring()
    keyring: Keyring = field(default_factory=lambda: Keyring.from_setting(SANDBOX_PAYLOAD_KEYS))
    # at most this many deliveries in flight (dispatched, no outcome yet) per destination;
    # 0: no limit. The attempt timeout starts at dispatch, so without a window a backlog
    # queued on Kafka ahead of a slow adapter times out and is sent again (see dispatch_due)
    max_in_flight: int = 0
    # addressing by unit (services.router.routing.addressing); None: no delivery names a unit
    addressing: Addressing | None = None

    def retry(self, event_code: str) -> RetryPolicy:
        policy = self.policies.get(event_code)
        return policy.retry if policy else RetryPolicy()


async def move(
    session: AsyncSession,
    row: Any,
    target: DeliveryState,
    *,
    now: datetime,
    reason: str,
    **values: Any,
) -> bool:
    """Transition one delivery; False if another worker changed it first."""
    current = DeliveryState(row.state)
    check_delivery_transition(current, target)
    if target is DeliveryState.CONFIRMED:
        values["legal_check_at"] = None  # delivered in law's sense: no more deadline checks
    result = await session.execute(  # SET from the parameters: a cheaper cache key
        update(delivery).where(delivery.c.id == row.id, delivery.c.state == current.value),
        {"state": target.value, "updated_at": now, **values},
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return False
    if target is DeliveryState.CONFIRMED:  # deviations close what they counted for it
        await domain_events.emit(session, domain_events.DeliveriesConfirmed((row.id,), at=now))
    await session.execute(
        delivery_transition.insert(), transition_row(row.id, current, target, now, reason)
    )
    if target in PUBLISHED_STATES:
        await add_to_outbox(session, OUTBOX_OWNER, delivery_event(row, target, now))
    return True


def transition_row(
    delivery_id: int,
    current: DeliveryState | None,
    target: DeliveryState,
    now: datetime,
    reason: str,
) -> dict[str, Any]:
    """One row of a delivery's timeline (``delivery_transition``)."""
    return dict(
        delivery_id=delivery_id,
        from_state=None if current is None else current.value,
        to_state=target.value,
        at=now,
        reason=reason,
    )


PUBLISHED_STATES = frozenset(
    {
        DeliveryState.SENT,
        DeliveryState.CONFIRMED,
        DeliveryState.DEAD_LETTER,
        DeliveryState.CANCELLED,  # stopped: its sender cancelled the message (makulering)
    }
)


def delivery_event(row: Any, state: DeliveryState, now: datetime) -> OutgoingRecord:
    """The public record of a delivery's progress (topics.EVENTS): ids, family, destination
    and state only. No payload, no pseudonym, no reason text (it may quote a journal)."""
    value = {
        "type": "delivery-state",
        "messageId": row.message_id,
        "family": getattr(row, "event_code", None),
        "destination": row.destination,
        "state": state.value,
        "at": now.isoformat(),
    }
    return OutgoingRecord(
        topic=topics.EVENTS,
        key=row.message_id,
        value=json.dumps(value, separators=(",", ":")),
        headers={"event": "delivery-state"},
    )


def log_ids(row: Any) -> dict[str, Any]:
    """What a log line about one delivery carries: ids and the trace, never patient data."""
    return {
        "message_id": row.message_id,
        "delivery_id": row.id,
        "destination": row.destination,
        "pseudonym": row.pseudonym,
        "trace_id": tracing.trace_id_of(row.traceparent),
    }


async def reject_record(
    session: AsyncSession, record: IncomingRecord, reason: str, now: datetime
) -> None:
    log.warning(
        "record rejected",
        extra={
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,
            "trace_id": tracing.trace_id_of(record.headers.get(tracing.HEADER)),
        },
    )
    await keep_aside(session, record, reason, now)


async def quarantine_untrusted(
    session: AsyncSession, record: IncomingRecord, rules: RoutingRules, now: datetime
) -> None:
    """A record whose signature does not hold changes nothing: it is kept aside with its
    reason, and a critical incident is raised (one per topic while open). A forged receipt
    must never confirm a delivery, so the confirmation deadline's alert still comes."""
    reason = f"untrusted: {record.untrusted}"
    await reject_record(session, record, reason, now)
    await _untrusted_record_incident(session, record.topic, rules, now)


async def report_quarantined(
    session: AsyncSession, record: IncomingRecord, rules: RoutingRules, now: datetime
) -> None:
    """An adapter's quarantine notice (:mod:`services.messaging.quarantine`): the delivery
    command it refused raises the same critical incident as a record the router refused
    itself. The adapter kept the command aside in its own database; only the adapter that
    reads the command's topic may report on it."""
    try:
        notice = QuarantineNotice.read(record)
    except MalformedNotice as exc:
        await reject_record(session, record, str(exc), now)
        return
    reader = topics.DELIVERED_BY_TOPIC[notice.topic]
    if record.signer is not None and record.signer != reader:
        wrong = replace(record, untrusted=f"WrongSigner: {record.signer} reported for {reader}")
        await quarantine_untrusted(session, wrong, rules, now)
        return
    log.error(
        "an adapter quarantined an untrusted record",
        extra={
            "topic": notice.topic,
            "partition": notice.partition,
            "offset": notice.offset,
            "reason": notice.reason,
            "reported_by": record.signer or reader,
        },
    )
    await _untrusted_record_incident(session, notice.topic, rules, now)


async def _untrusted_record_incident(
    session: AsyncSession, topic: str, rules: RoutingRules, now: datetime
) -> None:
    await domain_events.emit(
        session,
        domain_events.IncidentFound(
            kind=AlertKind.UNTRUSTED_RECORD,
            destination=topic,
            event_code="record-signature",
            affected=None,
            now=now,
            severity=Severity.CRITICAL,
            sinks=rules.alert_sinks,
        ),
    )


# --- inbound -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound message of a Kafka batch: its envelope and its record."""

    env: Envelope
    record: IncomingRecord


async def accept_messages(
    session: AsyncSession,
    batch: Sequence[Inbound],
    rules: RoutingRules,
    now: datetime,
    subscriptions: Sequence[Subscription],
    jumps: Sequence[Jump] = (),
) -> list[int]:
    """Store a batch's messages and one pending delivery per matching subscription (its id
    is the delivery's destination); return the delivery ids, in the batch's order.
    ``jumps``: the wall clock's recent jumps, to put the source's timestamp on the router's
    scale (services.router.routing.clock_jumps).

    Set-based: one statement each for the duplicate check, the versions of the batch's
    documents, the patients' current episodes, the messages, the deliveries and their
    first transitions, whatever the batch's size. A message already stored (same id, or
    same business key under a new id), or earlier in the batch, is skipped."""
    parsed_all = [_parse(item.record) for item in batch]
    cases = [facts.case_id for _, facts in parsed_all]
    fresh, withdrawn = await _not_stored(session, batch, cases)
    if not fresh:
        return []
    versions = await _Versions.load(session, [m.env for m in fresh])
    book = await episodes.load_current(session, [m.record.key for m in fresh if m.record.key])
    cancel_book = await cancels.CancelBook.load(session, [(m.env, m.record.value) for m in fresh])
    plans: dict[str, cancels.Plan] = {}  # cancellation id → where it goes
    messages: list[dict[str, Any]] = []
    accepted: list[_Accepted] = []
    parsed_of = {id(item): found for item, found in zip(batch, parsed_all, strict=True)}
    for item in fresh:
        bundle, facts = parsed_of[id(item)]
        env, record = item.env, item.record
        stream, version, newer = versions.place(env)
        held = routing_hold(env.event_code, bundle, env.source_system)
        if facts.case_id is not None:
            if env.event_code == EventCode.CONSENT_WITHDRAWN:
                withdrawn.add(facts.case_id)  # what follows it in the batch is held too
            elif held is None and facts.case_id in withdrawn and not cancels.is_cancellation(env):
                held = STAY_WITHDRAWN  # a cancellation still goes: it shares nothing new
        trace = tracing.from_headers(record.headers)  # the router's hop, continued per delivery
        destinations = route(subscriptions, env.event_code, env.source_system)
        if cancels.is_cancellation(env):  # to where the message it cancels went
            plan = cancel_book.plan(env, record.key, subscriptions, destinations)
            plans[env.message_id] = plan
            destinations, held = plan.destinations, held or plan.unrouted
        messages.append(
            dict(
                id=env.message_id,
                event_code=env.event_code,
                source=env.source_system,
                business_key=str(env.business_key) if env.business_key else None,
                pseudonym=record.key,
                sent_at=env.timestamp,
                received_at=now,
                payload=rules.keyring.seal(record.value.decode(), message_id=env.message_id),
                stream=stream,
                version=version,
                superseded_by=newer,
                traceparent=trace.traceparent,
                unrouted_reason=held,
                case_id=facts.case_id,  # pseudonymous: never logged beside patient data
            )
        )
        if newer is not None:
            log.info(
                "older version arrived after a newer one",
                extra={"message_id": env.message_id, "superseded_by": newer, "version": version},
            )
        if held is not None:
            destinations = ()
            log.warning(
                "message not routed",
                extra={"message_id": env.message_id, "family": env.event_code, "reason": held},
            )
        elif not destinations:
            log.warning(
                "message has no route",
                extra={"message_id": env.message_id, "family": env.event_code},
            )
        accepted.append(_Accepted(item, destinations, newer, facts, bundle, held))
        cancel_book.note(env, record.key, [d.id for d in destinations])
        log.info(
            "message accepted",
            extra={
                "message_id": env.message_id,
                "family": env.event_code,
                "pseudonym": record.key,
                "destinations": [d.id for d in destinations],
                **trace.log_fields(),
            },
        )
    receivers = (
        await load_receivers(session, rules.addressing.defaults)
        if rules.addressing is not None and any(a.destinations for a in accepted)
        else None
    )
    addresses: dict[tuple[str, str], Address] = {}
    held_for_unit: list[tuple[_Accepted, str]] = []  # and the destination it was held for
    for i, a in enumerate(accepted):
        cancelling = plans.get(a.item.env.message_id)
        named = {  # a cancellation: the unit the message it cancels went to (or refused)
            d.id: cancel_book.address(cancelling, d.id)
            if cancelling is not None
            else receivers.address(d.id, a.facts)
            if receivers
            else Address()
            for d in a.destinations
        }
        uncovered = [
            d
            for d, at in named.items()
            if unit_hold(a.item.env.event_code, a.bundle, d, at.unit_hsa)
        ]
        if uncovered:  # the whole message, as for a basis that misses a receiver
            accepted[i] = a = replace(a, destinations=(), held=UNIT_NOT_COVERED)
            messages[i]["unrouted_reason"] = UNIT_NOT_COVERED
            held_for_unit.extend((a, d) for d in uncovered)
            log.warning(
                "message not routed",
                extra={
                    "message_id": a.item.env.message_id,
                    "family": a.item.env.event_code,
                    "reason": UNIT_NOT_COVERED,
                },
            )
        addresses.update({(a.item.env.message_id, d): at for d, at in named.items()})
    await session.execute(message.insert(), messages)
    await _alert_consent_holds(session, accepted, held_for_unit, rules, now)
    rows: list[dict[str, Any]] = []
    reasons: list[str] = []
    refused: dict[tuple[str, str], str] = {}  # (message, destination) → why no unit
    for a in accepted:
        env = a.item.env
        deadline = rules.policies[env.event_code].confirmation_deadline
        terms = {**_NO_LEGAL_TERMS, **_legal_terms(env, a.facts, now)}  # one shape for all rows
        cancelling = plans.get(env.message_id)
        for dest in a.destinations:
            address = addresses[env.message_id, dest.id]
            if address.refused is not None:
                why = address.refused
                refused[env.message_id, dest.id] = (
                    why if cancelling is not None else f"unaddressable: {why}"
                )
            cancel_book.note_unit(env.message_id, dest.id, address.unit_hsa)
            rows.append(
                dict(
                    message_id=env.message_id,
                    destination=dest.id,
                    state=DeliveryState.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    confirm_by=on_our_scale(env.timestamp, now, jumps) + deadline,
                    resend_every_s=deadline.total_seconds(),
                    **terms,
                    receiver_unit_hsa=address.unit_hsa,
                    created_at=now,
                    updated_at=now,
                )
            )
            reasons.append("routed" if a.newer is None else f"routed as superseded by {a.newer}")
    stopped = cancels.stopped_originals(plans)
    if not rows:
        await _stop_cancelled(session, stopped, now)
        await _track_episodes(session, accepted, rules, now, book)
        return []
    # One insert, then the ids by (message, destination), which is unique: SQLite returns
    # the ids of a multi-row insert in no promised order, so RETURNING would go a row at a time
    await session.execute(delivery.insert(), rows)
    found = await session.execute(
        select(delivery.c.id, delivery.c.message_id, delivery.c.destination).where(
            delivery.c.message_id.in_(sorted({r["message_id"] for r in rows}))
        )
    )
    ids = {(r.message_id, r.destination): int(r.id) for r in found}
    created = [ids[(r["message_id"], r["destination"])] for r in rows]
    await session.execute(
        delivery_transition.insert(),
        [
            transition_row(delivery_id, None, DeliveryState.PENDING, now, reason)
            for delivery_id, reason in zip(created, reasons, strict=True)
        ],
    )
    await _stop_cancelled(session, stopped, now)
    await _track_episodes(session, accepted, rules, now, book)
    if refused:
        created = await _refuse_unaddressable(session, created, ids, refused, rules, now)
    return created


async def _stop_cancelled(session: AsyncSession, stopped: dict[str, str], now: datetime) -> None:
    """Move each delivery of a cancelled message that has not reached its receiver to
    ``cancelled`` (services.router.routing.cancels); ``stopped``: cancelled message id → the
    cancellation's id."""
    if not stopped:
        return
    found = await session.execute(
        delivery_rows()
        .where(
            delivery.c.message_id.in_(sorted(stopped)),
            delivery.c.state.in_([s.value for s in STOPPED_BY_CANCELLATION]),
        )
        .order_by(delivery.c.id)
        .with_for_update(of=delivery)
    )
    for row in found.all():
        cancelled_by = stopped[row.message_id]
        await move(
            session,
            row,
            DeliveryState.CANCELLED,
            now=now,
            reason=f"cancelled by its sender (makulering {cancelled_by})",
            next_attempt_at=None,
            attempt_expires_at=None,
            resend_at=None,
            legal_check_at=None,
        )
        log.info(
            "delivery stopped: message cancelled",
            extra={**log_ids(row), "cancelled_by": cancelled_by},
        )


async def _refuse_unaddressable(
    session: AsyncSession,
    created: list[int],
    ids: dict[tuple[str, str], int],
    refused: dict[tuple[str, str], str],
    rules: RoutingRules,
    now: datetime,
) -> list[int]:
    """Dead-letter each delivery no unit could be named for, or of a cancellation the
    router cannot tie to a message it holds (services.router.routing.cancels), with its
    reason and a critical incident: never dropped in silence, never sent to a unit of
    another municipality. An operator fixes the directory and replays it. The rest are
    returned for dispatch."""
    dead = {ids[key]: reason for key, reason in refused.items()}
    found = await session.execute(delivery_rows().where(delivery.c.id.in_(sorted(dead))))
    for row in found.all():
        await dead_letter(
            session,
            row,
            now,
            reason=dead[row.id],
            keyring=rules.keyring,
            sinks=rules.alert_sinks,
        )
    return [i for i in created if i not in dead]


async def _track_episodes(
    session: AsyncSession,
    accepted: Sequence[_Accepted],
    rules: RoutingRules,
    now: datetime,
    book: episodes.EpisodeBook,
) -> None:
    """Move the patients' episodes on, in the batch's order, after the deliveries are
    stored (a later notice looks at its admission's, which may be in this batch)."""
    for a in accepted:
        await episodes.track(
            session,
            a.item.env,
            a.facts,
            a.item.record.key,
            now,
            book=book,
            sip_in_working_days=rules.sip_in_working_days,
            sinks=rules.alert_sinks,
        )
    await book.flush(session)


@dataclass(frozen=True, slots=True)
class _Accepted:
    item: Inbound
    destinations: Sequence[Subscription]
    newer: str | None  # a newer version of the document, already received
    facts: CareFacts
    bundle: dict[str, Any] | None = None  # the parsed message (None: not JSON)
    held: str | None = None  # why it is not routed


def _parse(record: IncomingRecord) -> tuple[dict[str, Any] | None, CareFacts]:
    """The record's Bundle (None: not JSON) and its care facts (none when unreadable)."""
    try:
        bundle: dict[str, Any] | None = json.loads(record.value)
    except ValueError:
        return None, CareFacts()
    try:
        return bundle, read_care_facts(bundle) if isinstance(bundle, dict) else CareFacts()
    except ValueError:
        return bundle, CareFacts()


async def _alert_consent_holds(
    session: AsyncSession,
    accepted: Sequence[_Accepted],
    held_for_unit: Sequence[tuple[_Accepted, str]],
    rules: RoutingRules,
    now: datetime,
) -> None:
    """A ``consent_hold`` incident for IT operations for each message held because its
    consent does not reach the addressed unit (per destination it was held for) or because
    the patient withdrew consent for its stay (per source). Nobody else is told: the unit
    the consent does not cover must not hear of the patient."""
    holds = [*held_for_unit]
    holds += [(a, a.item.env.source_system) for a in accepted if a.held == STAY_WITHDRAWN]
    for a, destination in holds:
        await domain_events.emit(
            session,
            domain_events.IncidentFound(
                kind=AlertKind.CONSENT_HOLD,
                destination=destination,
                event_code=a.item.env.event_code,
                affected=Affected(
                    delivery_id=None,
                    message_id=a.item.env.message_id,
                    pseudonym=a.item.record.key,
                    sender_unit_hsa=a.facts.sender_unit_hsa,
                ),
                now=now,
                severity=Severity.CRITICAL,
                sinks=rules.alert_sinks,
            ),
        )


_NO_LEGAL_TERMS: dict[str, Any] = {
    "legal_from": None,
    "legal_due_at": None,
    "legal_stage": int(Stage.ON_TRACK),
    "legal_check_at": None,
}


async def _not_stored(
    session: AsyncSession, batch: Sequence[Inbound], case_ids: Sequence[str | None]
) -> tuple[list[Inbound], set[str]]:
    """The batch's messages not stored yet, nor earlier in the batch (by id or business
    key), and which of ``case_ids`` the patient withdrew consent for (a consent withdrawal
    of the case is stored), with one statement: what the store knows of the batch."""
    ids = sorted({m.env.message_id for m in batch})
    keys = sorted({str(m.env.business_key) for m in batch if m.env.business_key})
    cases = sorted({c for c in case_ids if c is not None})
    known = message.c.id.in_(ids) | message.c.business_key.in_(keys)
    if cases:  # along ix_message_case
        known |= message.c.case_id.in_(cases) & (
            message.c.event_code == EventCode.CONSENT_WITHDRAWN.value
        )
    found = await session.execute(
        select(message.c.id, message.c.business_key, message.c.case_id, message.c.event_code).where(
            known
        )
    )
    seen_ids: dict[str, str] = {}
    seen_keys: dict[str, str] = {}
    withdrawn: set[str] = set()
    for row in found:
        if row.event_code == EventCode.CONSENT_WITHDRAWN.value and row.case_id in cases:
            withdrawn.add(str(row.case_id))
        seen_ids[row.id] = row.id
        if row.business_key:
            seen_keys[row.business_key] = row.id
    fresh = []
    for item in batch:
        env = item.env
        key = str(env.business_key) if env.business_key else None
        first = seen_ids.get(env.message_id) or (seen_keys.get(key) if key else None)
        if first is not None:
            log.info(
                "duplicate message skipped",
                extra={"message_id": env.message_id, "first_message_id": first},
            )
            continue
        seen_ids[env.message_id] = env.message_id
        if key:
            seen_keys[key] = env.message_id
        fresh.append(item)
    return fresh, withdrawn


@dataclass
class _Versions:
    """The stored versions of a batch's versioned documents (one statement), and those the
    batch adds as it is accepted: which newer version, if any, supersedes a message."""

    known: dict[str, list[tuple[int, str]]]  # stream -> (version, message id)

    @classmethod
    async def load(cls, session: AsyncSession, envs: Sequence[Envelope]) -> _Versions:
        streams = sorted({s for env in envs if (s := _stream(env)) is not None})
        known: dict[str, list[tuple[int, str]]] = {s: [] for s in streams}
        if streams:
            rows = await session.execute(
                select(message.c.stream, message.c.version, message.c.id).where(
                    message.c.stream.in_(streams), message.c.version.is_not(None)
                )
            )
            for row in rows:
                known[row.stream].append((int(row.version), row.id))
        return cls(known)

    def place(self, env: Envelope) -> tuple[str | None, int | None, str | None]:
        """(stream, version, id of a newer version already received) of ``env``, which
        then counts as received."""
        stream = _stream(env)
        if stream is None or env.business_key is None:
            return None, None, None
        version = env.business_key.version
        versions = self.known.setdefault(stream, [])
        newer = max((v for v in versions if v[0] > version), default=None)
        versions.append((version, env.message_id))
        return stream, version, newer[1] if newer else None


def _stream(env: Envelope) -> str | None:
    key = env.business_key
    if key is None or not is_versioned(env.event_code):
        return None
    return f"{key.source}|{key.source_event_id}"


def _legal_terms(env: Envelope, facts: CareFacts, now: datetime) -> dict[str, Any]:
    """The legal deadline columns of a new delivery (none for families without one)."""
    due = legal_deadline(env.event_code, facts, env.timestamp)
    if due is None:
        return {}
    started = min(facts.stay_started_at or env.timestamp, now)
    # The watchdog raises what is already late (its first check may be due at once).
    return {
        "legal_from": started,
        "legal_due_at": due,
        "legal_stage": int(Stage.ON_TRACK),
        "legal_check_at": next_stage_at(started, due, Stage.ON_TRACK),
    }


# --- dispatch ------------------------------------------------------------------------------


def delivery_rows() -> Any:
    return select(
        delivery.c.id,
        delivery.c.state,
        delivery.c.destination,
        delivery.c.attempts,
        delivery.c.message_id,
        message.c.pseudonym,
        message.c.event_code,
        message.c.payload,
        message.c.superseded_by,
        message.c.traceparent,
        message.c.sent_at.label("message_sent_at"),
        delivery.c.attempts_at_replay,
        delivery.c.confirm_by,
        delivery.c.resend_at,
        delivery.c.created_at,
        delivery.c.resend_every_s,
        delivery.c.receiver_unit_hsa,
    ).join(message, message.c.id == delivery.c.message_id)


def resend_interval(row: Any) -> timedelta:
    """How often a delivery that stays unconfirmed is sent again: the length of its
    confirmation deadline (a row of :func:`delivery_rows`), kept as a length so that moving
    the deadline past a clock jump (services.router.routing.clock_jumps) leaves it as it was."""
    if row.resend_every_s is not None:
        return max(timedelta(seconds=row.resend_every_s), timedelta(seconds=1))
    length: timedelta = row.confirm_by - row.created_at  # routed before migration 0023
    return max(length, timedelta(seconds=1))


def _suspected_dropped(table: Any, now: datetime, *, concat: bool) -> Any:
    """A delivery the receiver accepted but has not confirmed by its confirmation deadline:
    it may have been dropped silently. A patient's later deliveries to that destination
    wait behind it, as behind one not yet accepted: sent before it is re-sent, they would
    be stored ahead of it (a discharge notice before the admission notice it follows)."""
    state = table.c.state.concat("") if concat else table.c.state
    return and_(state == DeliveryState.SENT.value, table.c.confirm_by <= now)


def due_deliveries(
    dialect: str,
    now: datetime,
    *,
    closed: frozenset[str] | set[str] = frozenset(),
    only: list[int] | None = None,
    patients: set[str] | None = None,
    limit: int = 200,
    by_first: bool | None = None,
) -> Any:
    """The pending deliveries due at ``now`` that no earlier unresolved delivery of the same
    patient to the same destination holds back, oldest first, locked for this router.
    ``closed`` destinations are left out; ``only`` and ``patients`` narrow the candidates.

    For ``patients`` (a results batch's) the held-behind test is "the first unresolved
    delivery of its patient to its destination", read once per patient; otherwise (or with
    ``by_first=False``, which tests and benchmarks compare against) "no earlier unresolved
    delivery exists", tested for each candidate. Both let the same rows through."""
    unresolved = [DeliveryState.PENDING.value, DeliveryState.DISPATCHED.value]
    state: Any = delivery.c.state
    if by_first is None:
        by_first = patients is not None
    if by_first:
        if patients is None:
            raise ValueError("by_first reads the patients' deliveries: patients is required")
        # Each patient's first unresolved delivery to each destination, which is the only one
        # the test below would let through. That test reads every earlier delivery of a
        # candidate's patient for every candidate, so a patient with n deliveries in a
        # backlog cost n^2 lookups, on both backends: 100 patients took 180-420 ms at 119,000
        # pending in the 100k scale step, 44 % of the router (SQLite), and 20 patients 0.9 s
        # on PostgreSQL in bench/dispatch_speed.py. This reads each patient's deliveries once.
        # ``state || ''`` keeps the planners off the state indexes, which would walk every
        # pending delivery.
        first = (
            select(func.min(delivery.c.id))
            .select_from(delivery.join(message, message.c.id == delivery.c.message_id))
            .where(
                message.c.pseudonym.in_(sorted(patients)),
                or_(
                    delivery.c.state.concat("").in_(unresolved),
                    _suspected_dropped(delivery, now, concat=True),
                ),
            )
            .group_by(message.c.pseudonym, delivery.c.destination)
        )
        not_held: Any = delivery.c.id.in_(first)
        state = delivery.c.state.concat("")
    else:
        earlier = delivery.alias("earlier")
        earlier_msg = message.alias("earlier_msg")
        earlier_state: Any = earlier.c.state
        if dialect == "sqlite":
            # SQLite's planner otherwise reads the earlier deliveries by (state,
            # destination): every unresolved delivery to that destination, for each
            # candidate. With 15,000 pending in a backlog one scan took 62 s. ``state || ''``
            # cannot use that index, so it goes by the patient's messages
            # (ix_message_pseudonym) and their deliveries (message_id, destination) instead:
            # 0.3 s.
            earlier_state = earlier.c.state.concat("")
            if only is not None:
                # Likewise for the candidates: by (state, next_attempt_at) it walks every
                # pending delivery; at 37,000 pending in a drain that was 260 ms per Kafka
                # batch. Without the state index it starts from the ids: 16 ms.
                state = delivery.c.state.concat("")
        not_held = ~exists().where(
            and_(
                earlier.c.destination == delivery.c.destination,
                earlier.c.id < delivery.c.id,
                or_(
                    earlier_state.in_(unresolved),
                    _suspected_dropped(earlier, now, concat=dialect == "sqlite"),
                ),
                earlier_msg.c.id == earlier.c.message_id,
                earlier_msg.c.pseudonym == message.c.pseudonym,
            )
        )
    query = (
        delivery_rows()
        .add_columns(subscription.c.channel_type, subscription.c.endpoint)
        .outerjoin(subscription, subscription.c.id == delivery.c.destination)
        .where(
            state == DeliveryState.PENDING.value,
            delivery.c.next_attempt_at <= now,
            not_held,
        )
    )
    if closed:
        query = query.where(delivery.c.destination.not_in(sorted(closed)))
    if only is not None:
        query = query.where(delivery.c.id.in_(only))
    if patients is not None:
        query = query.where(message.c.pseudonym.in_(sorted(patients)))
    # Oldest due first, in the order of ix_delivery_due (its rowid breaks ties), so the full
    # scan stops at ``limit`` instead of testing every pending delivery for ``held`` and then
    # sorting them all by id (half the router's time in a 50k drain). A patient's order does
    # not depend on it: ``held`` lets only the earliest unresolved delivery through.
    # Replicas take disjoint rows: one locked by another router is left to it.
    return (
        query.order_by(delivery.c.next_attempt_at, delivery.c.id)
        .limit(limit)
        .with_for_update(of=delivery, skip_locked=True)
    )


async def dispatch_due(
    session: AsyncSession,
    rules: RoutingRules,
    now: datetime,
    *,
    only: list[int] | None = None,
    patients: set[str] | None = None,
    limit: int = 200,
    opened: dict[str, str] | None = None,
) -> int:
    """Publish a delivery command for every pending delivery that is due and not held back
    behind an earlier unresolved delivery of the same patient to the same destination.
    ``only`` narrows it to those deliveries, ``patients`` to those patients' (pseudonyms).
    ``opened``: payloads known in clear by message id (the batch that stored them), so that
    each payload is decrypted at most once per dispatch, not once per delivery.

    No destination gets more than ``rules.max_in_flight`` in flight: the rest stay pending
    until outcomes make room (the tick's full scan sends them). An attempt's timeout runs
    from its dispatch, so commands queued on Kafka behind thousands of others (a drain
    after an outage) would time out unread and be sent again, doubling the adapter's work
    and counting against the destination's circuit; the window keeps that queue short."""
    gate = await circuit.gate(session, now)
    in_flight = await _in_flight(session) if rules.max_in_flight else {}
    full = {d for d, n in in_flight.items() if n >= rules.max_in_flight}
    query = due_deliveries(
        session.get_bind().dialect.name,
        now,
        closed=gate.shut | full,  # an open circuit (until its probe time) or a full window
        only=only,
        patients=patients,
        limit=limit,
    )
    rows = _probes_first(list((await session.execute(query)).all()), gate)
    chosen: list[tuple[Any, int, OutgoingRecord]] = []
    receivers: Receivers | None = None  # read when a delivery still needs its unit
    probed: set[str] = set()
    opened = {} if opened is None else opened
    for row in rows:
        if rules.max_in_flight and in_flight.get(row.destination, 0) >= rules.max_in_flight:
            continue  # the window filled during this pass
        attempt = row.attempts + 1
        try:
            command = delivery_command(row, attempt, rules.keyring, opened)
        except PayloadCryptoError as exc:  # one bad payload must not stop the others
            await dead_letter(
                session,
                row,
                now,
                reason="not dispatched",
                sinks=rules.alert_sinks,
                keyring=rules.keyring,
                unopenable=exc,
            )
            continue
        if _unaddressed(row, rules):
            # routed before addressing, or replayed after being refused: named now, from
            # the directory as it is, or dead-lettered again with the reason
            if receivers is None:
                assert rules.addressing is not None
                receivers = await load_receivers(session, rules.addressing.defaults)
            address = receivers.address(row.destination, _facts(command.value))
            if address.unit_hsa is None:
                await dead_letter(
                    session,
                    row,
                    now,
                    reason=f"unaddressable: {address.refused or 'no receiving unit'}",
                    sinks=rules.alert_sinks,
                    keyring=rules.keyring,
                )
                continue
            await session.execute(
                update(delivery)
                .where(delivery.c.id == row.id)
                .values(receiver_unit_hsa=address.unit_hsa)
            )
            row = _with_unit(row, address.unit_hsa)
            command = delivery_command(row, attempt, rules.keyring, opened)
        if row.destination in gate.probing:
            if row.destination in probed:
                continue  # half-open: one probe at a time
            probed.add(row.destination)
            if not await circuit.probe_sent(session, row.destination, row.id, now):
                continue  # another router sends the probe
        chosen.append((row, attempt, command))
        in_flight[row.destination] = in_flight.get(row.destination, 0) + 1
    await _dispatch(session, chosen, rules, now)
    return len(chosen)


async def _dispatch(
    session: AsyncSession,
    chosen: Sequence[tuple[Any, int, OutgoingRecord]],
    rules: RoutingRules,
    now: datetime,
) -> None:
    """Move the chosen pending deliveries to dispatched, with their attempts and commands:
    one statement for each of the four tables, however many there are. The rows were
    locked by the query that chose them (PostgreSQL), or the transaction holds SQLite's
    write lock, so none can have changed since; a count that says otherwise fails the
    batch, which is then read again."""
    if not chosen:
        return
    for row, _, _ in chosen:
        check_delivery_transition(DeliveryState(row.state), DeliveryState.DISPATCHED)
    moved = await session.execute(
        update(delivery)
        .where(
            delivery.c.id == bindparam("row_id"),
            delivery.c.state == DeliveryState.PENDING.value,
        )
        .values(
            state=DeliveryState.DISPATCHED.value,
            attempts=bindparam("attempt"),
            attempt_expires_at=now + rules.attempt_timeout,
            dispatched_by=rules.instance,
            updated_at=now,
        ),
        [{"row_id": row.id, "attempt": attempt} for row, attempt, _ in chosen],
    )
    changed = moved.rowcount  # type: ignore[attr-defined]
    if session.get_bind().dialect.supports_sane_multi_rowcount and changed != len(chosen):
        raise DeliveryChangedUnderfoot(f"{len(chosen) - changed} deliveries changed underfoot")
    await session.execute(
        delivery_transition.insert(),
        [
            transition_row(
                row.id,
                DeliveryState.PENDING,
                DeliveryState.DISPATCHED,
                now,
                f"attempt {attempt} by {rules.instance}",
            )
            for row, attempt, _ in chosen
        ],
    )
    await session.execute(
        delivery_attempt.insert(),
        [
            dict(delivery_id=row.id, attempt_no=attempt, dispatched_at=now)
            for row, attempt, _ in chosen
        ],
    )
    await add_many_to_outbox(session, OUTBOX_OWNER, [command for _, _, command in chosen])
    for row, attempt, _ in chosen:
        log.info("delivery dispatched", extra={**log_ids(row), "attempt": attempt})


def _unaddressed(row: Any, rules: RoutingRules) -> bool:
    """A delivery to a destination addressed by unit that names none yet."""
    return (
        rules.addressing is not None
        and row.destination in ADDRESSED
        and row.receiver_unit_hsa is None
    )


def _facts(value: str) -> CareFacts:
    try:
        bundle = json.loads(value)
    except ValueError:
        return CareFacts()
    return read_care_facts(bundle) if isinstance(bundle, dict) else CareFacts()


@dataclass(frozen=True, slots=True)
class _Addressed:
    """A row of :func:`due_deliveries` with the unit it was just given."""

    row: Any
    receiver_unit_hsa: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def _with_unit(row: Any, unit_hsa: str) -> Any:
    return _Addressed(row, unit_hsa)


def _probes_first(rows: list[Any], gate: circuit.Gate) -> list[Any]:
    """For a destination about to send its one probe: a delivery of a patient outside the
    run of failures goes first, so the probe tests the destination and not the one record
    it keeps refusing (which would only open the circuit again). That patient's delivery
    is the probe only when nothing else is due."""
    if not gate.probing:
        return rows

    def rank(row: Any) -> int:
        avoid = gate.avoid.get(row.destination)
        return 1 if avoid is not None and row.pseudonym in avoid else 0

    return sorted(rows, key=rank)  # stable: the due order otherwise


async def _in_flight(session: AsyncSession) -> dict[str, int]:
    """Deliveries dispatched and not yet answered, per destination."""
    rows = await session.execute(
        select(delivery.c.destination, func.count())
        .where(delivery.c.state == DeliveryState.DISPATCHED.value)
        .group_by(delivery.c.destination)
    )
    return {str(row[0]): int(row[1]) for row in rows}


def delivery_command(
    row: Any, attempt: int, keyring: Keyring, opened: dict[str, str] | None = None
) -> OutgoingRecord:
    """The command for one attempt: to the subscription's topic (a journal adapter), or to
    the router's own webhook topic (a rest-hook subscriber). A delivery without a
    subscription row (made before subscriptions existed) goes to its destination's topic."""
    headers = {
        "message-id": row.message_id,
        "delivery-id": str(row.id),
        "attempt": str(attempt),
        "event": row.event_code,
        **({"superseded-by": row.superseded_by} if row.superseded_by else {}),
        # the receiving unit (signed with the record): the adapter addresses the journal's
        # unit by it and stamps MessageHeader.destination.receiver (issue 20)
        **({RECEIVER_UNIT_HEADER: row.receiver_unit_hsa} if row.receiver_unit_hsa else {}),
        tracing.HEADER: _next_hop(row),
    }
    if row.channel_type == ChannelType.REST_HOOK.value:
        topic = topics.WEBHOOKS
        headers["subscription-id"] = row.destination
    else:
        topic = row.endpoint or topics.outbound(row.destination)
        # until when the router waits for this attempt's receipt: an adapter confirming by
        # read-back reads the record back until then
        headers[CONFIRM_BY_HEADER] = awaited_until(row).isoformat()
    value = opened.get(row.message_id) if opened is not None else None
    if value is None:
        value = keyring.open(row.payload, message_id=row.message_id)  # Kafka gets plaintext
        if opened is not None:
            opened[row.message_id] = value
    return OutgoingRecord(topic=topic, key=row.pseudonym, value=value, headers=headers)


def awaited_until(row: Any) -> datetime:
    """When the watchdog next looks at a sent delivery still unconfirmed (alerts, sends it
    again): its confirmation deadline, or after a re-send the time of the next one."""
    confirm_by: datetime = row.confirm_by
    return max(confirm_by, row.resend_at) if row.resend_at is not None else confirm_by


def _next_hop(row: Any) -> str:
    """A new span in the message's trace (a new trace for a message stored without one)."""
    return tracing.continue_or_start(row.traceparent).traceparent


# --- outcomes and receipts -----------------------------------------------------------------


class DeliveryChangedUnderfoot(RuntimeError):
    """A delivery kept changing while a result was applied to it; the batch is retried."""


async def apply_result(
    session: AsyncSession, env: Envelope, record: IncomingRecord, rules: RoutingRules, now: datetime
) -> str | None:
    """Apply an outcome or receipt; returns the patient's pseudonym (whose next delivery it
    may release), None when the record was rejected."""
    row = (
        await session.execute(
            delivery_rows()
            .where(
                delivery.c.message_id == env.response_to,
                delivery.c.destination == env.source_system,
            )
            # replicas: an expiring attempt or a dispatch waits for this result, not the
            # other way round (PostgreSQL; SQLite has one writer and re-reads below)
            .with_for_update(of=delivery)
        )
    ).first()
    if row is None:
        await reject_record(session, record, "result for an unknown delivery", now)
        return None
    carrier = topics.DELIVERED_BY.get(row.destination)
    if record.signer is not None and record.signer != carrier:
        # Both adapters may write results; only the one that delivers to this destination
        # may answer for it (a takecare adapter must not confirm a notice to Treserva).
        wrong = replace(record, untrusted=f"WrongSigner: {record.signer} answered for {carrier}")
        await quarantine_untrusted(session, wrong, rules, now)
        return None
    if env.event_code == EventCode.DELIVERY_OUTCOME.value:
        attempt_text = record.headers.get("attempt", "")
        await apply_outcome(
            session,
            row,
            attempt_no=int(attempt_text) if attempt_text.isdigit() else row.attempts,
            code=ResponseCode(env.response_code or ResponseCode.FATAL_ERROR),
            detail=env.outcome_text,
            rules=rules,
            now=now,
            failure=_failure_kind(record),
        )
    elif env.event_code == EventCode.RECEIPT.value:
        await _apply_receipt(session, row, env, rules, now)
    else:
        await reject_record(session, record, f"unexpected result event {env.event_code}", now)
        return None
    pseudonym: str | None = row.pseudonym
    return pseudonym


def _failure_kind(record: IncomingRecord) -> FailureKind | None:
    """What a transient outcome says failed; an adapter that does not say is taken as the
    destination failing as a whole (as every transient failure was counted before)."""
    try:
        return FailureKind(record.headers.get(FAILURE_HEADER, ""))
    except ValueError:
        return None


async def apply_outcome(
    session: AsyncSession,
    row: Any,
    *,
    attempt_no: int,
    code: ResponseCode,
    detail: str | None,
    rules: RoutingRules,
    now: datetime,
    ok_state: DeliveryState = DeliveryState.SENT,
    failure: FailureKind | None = None,
) -> None:
    """Apply the result of one delivery attempt: record it, feed the destination's circuit,
    then move the delivery on (ok), retry it with back-off (transient) or dead-letter it
    with an alert (fatal). ``row`` is one of :func:`delivery_rows`.

    ``ok_state`` is where an ok takes the delivery: ``sent`` for a journal adapter (a
    receipt confirms later), ``confirmed`` for a webhook subscriber, whose 2xx is its
    acknowledgement.
    """
    completed = await session.execute(
        update(delivery_attempt)
        .where(
            delivery_attempt.c.delivery_id == row.id,
            delivery_attempt.c.attempt_no == attempt_no,
            delivery_attempt.c.outcome.is_(None),
        )
        .values(completed_at=now, outcome=code.value, detail=detail)
    )
    if completed.rowcount == 0:  # type: ignore[attr-defined]
        log.info("outcome already recorded", extra={**log_ids(row), "attempt": attempt_no})
        return
    state = DeliveryState(row.state)
    current = attempt_no == row.attempts and state is DeliveryState.DISPATCHED
    if code is ResponseCode.TRANSIENT_ERROR:
        await circuit.record_failure(
            session,
            row.destination,
            rules.circuit,
            now,
            patient=row.pseudonym,
            transport=failure is not FailureKind.RESPONSE,
        )
    else:  # ok, or a refusal of this message: the destination itself is up
        await circuit.record_success(session, row.destination, now)
    if code is ResponseCode.OK:
        # Any attempt's ok counts: the destination dedupes on the message id.
        if state in (DeliveryState.PENDING, DeliveryState.DISPATCHED):
            acknowledged = ok_state is DeliveryState.CONFIRMED
            await move(
                session,
                row,
                ok_state,
                now=now,
                reason=(
                    f"acknowledged by subscriber (attempt {attempt_no})"
                    if acknowledged
                    else f"accepted by destination (attempt {attempt_no})"
                ),
                sent_at=now,
                attempt_expires_at=None,
                **({"confirmed_at": now} if acknowledged else {}),
            )
    elif not current:
        log.info("stale outcome ignored", extra={**log_ids(row), "attempt": attempt_no})
    elif code is ResponseCode.TRANSIENT_ERROR:
        parked = failure is FailureKind.RESPONSE and (
            attempt_no - row.attempts_at_replay >= rules.circuit.failure_threshold
        )
        await retry_or_dead_letter(
            session, row, rules, now, reason=detail or "transient error", parked=parked
        )
    else:
        await dead_letter(
            session,
            row,
            now,
            reason=detail or "fatal error",
            sinks=rules.alert_sinks,
            keyring=rules.keyring,
        )


async def retry_or_dead_letter(
    session: AsyncSession,
    row: Any,
    rules: RoutingRules,
    now: datetime,
    *,
    reason: str,
    parked: bool = False,
) -> None:
    """Retry with back-off, or dead-letter once the round's attempts are spent or the
    message is too old. ``parked``: the receiver keeps refusing this patient's message while
    it takes others, so it is retried at the longest interval only, under its own incident
    (which a person must look at), never holding anyone else up; it is not dead-lettered
    by budget or age, since the receiver is up and may take it once its import is fixed:
    an operator closes it if it never will."""
    policy = rules.retry(row.event_code)
    if parked:
        await _park(session, row, rules, now, reason=reason, wait=policy.cap_s)
        return
    if policy.exhausted(row.attempts - row.attempts_at_replay):
        await dead_letter(
            session,
            row,
            now,
            reason=f"attempts spent; last: {reason}",
            sinks=rules.alert_sinks,
            keyring=rules.keyring,
        )
        return
    # A replayed delivery was asked for by an operator: its age no longer stops it.
    if not row.attempts_at_replay and policy.too_old(row.message_sent_at, now):
        await dead_letter(
            session,
            row,
            now,
            reason=f"older than {policy.max_age_s:.0f} s; last: {reason}",
            sinks=rules.alert_sinks,
            keyring=rules.keyring,
        )
        return
    delay = policy.delay(row.attempts, rules.rng)
    await move(
        session,
        row,
        DeliveryState.PENDING,
        now=now,
        reason=f"retry in {delay.total_seconds():.1f}s: {reason}"[:200],
        next_attempt_at=now + delay,
        attempt_expires_at=None,
        last_error=reason[:500],
    )


async def _park(
    session: AsyncSession, row: Any, rules: RoutingRules, now: datetime, *, reason: str, wait: float
) -> None:
    await domain_events.emit(
        session,
        domain_events.IncidentFound(
            kind=AlertKind.PATIENT_PARKED,
            destination=row.destination,
            event_code=row.event_code,
            affected=Affected.of(row, rules.keyring),
            now=now,
            severity=Severity.WARNING,
            sinks=rules.alert_sinks,
        ),
    )
    await move(
        session,
        row,
        DeliveryState.PENDING,
        now=now,
        reason=f"parked, retry in {wait:.0f}s: {reason}"[:200],
        next_attempt_at=now + timedelta(seconds=wait),
        attempt_expires_at=None,
        last_error=reason[:500],
    )


UNDECRYPTABLE = "payload_undecryptable"
"""The reason given when a delivery's stored payload does not open with the keyring."""


async def dead_letter(
    session: AsyncSession,
    row: Any,
    now: datetime,
    *,
    reason: str,
    keyring: Keyring,
    sinks: Sequence[AlertSink] = (),
    unopenable: PayloadCryptoError | None = None,
) -> None:
    """Dead-letter one delivery: publish the message to the dead-letter topic and raise a
    ``delivery_failed`` incident. A payload that does not open (``unopenable``, or found so
    here) cannot go to the topic: the delivery is dead-lettered as ``payload_undecryptable``
    with its own incident, for an operator to restore the key and replay it."""
    value: str | None = None
    if unopenable is None:
        try:
            value = keyring.open(row.payload, message_id=row.message_id)
        except PayloadCryptoError as exc:
            unopenable = exc
    if unopenable is not None:
        problem = f"{UNDECRYPTABLE} ({type(unopenable).__name__}, key {key_id_of(row.payload)})"
        reason = f"{problem}; {reason}"
    if not await move(
        session,
        row,
        DeliveryState.DEAD_LETTER,
        now=now,
        reason=reason[:200],
        last_error=reason[:500],
        attempt_expires_at=None,
    ):
        return
    if value is not None:
        await add_to_outbox(
            session,
            OUTBOX_OWNER,
            OutgoingRecord(
                topic=topics.DEAD_LETTER,
                key=row.pseudonym,
                value=value,
                headers={
                    "message-id": row.message_id,
                    "delivery-id": str(row.id),
                    "destination": row.destination,
                    "event": row.event_code,
                    "reason": reason[:200],
                    tracing.HEADER: _next_hop(row),
                },
            ),
        )
    log.warning("delivery dead-lettered", extra={**log_ids(row), "reason": reason[:200]})
    await domain_events.emit(
        session,
        domain_events.IncidentFound(
            kind=AlertKind.DELIVERY_FAILED
            if value is not None
            else AlertKind.PAYLOAD_UNDECRYPTABLE,
            destination=row.destination,
            event_code=row.event_code,
            affected=Affected.of(row, keyring),
            now=now,
            severity=Severity.CRITICAL,
            sinks=sinks,
        ),
    )


def receipt_evidence(env: Envelope) -> dict[str, Any]:
    """The delivery's columns of a receipt's evidence (the receiving journal's record id
    and time), only those the receipt carries: an older adapter's receipt carries none."""
    values: dict[str, Any] = {}
    if env.evidence.record_id:
        values["receiver_record_id"] = env.evidence.record_id
    if env.evidence.recorded_at is not None:
        values["receiver_recorded_at"] = env.evidence.recorded_at
    return values


async def keep_late_evidence(session: AsyncSession, delivery_id: int, env: Envelope) -> None:
    """A receipt for a delivery already confirmed (mode "both": the read-back came first, or
    a receipt without evidence did) fills in the evidence the delivery lacks; it never
    overwrites what the first receipt said."""
    values = {
        # bound with the column's type, so a time is stored as UTC like any other
        column: func.coalesce(delivery.c[column], bindparam(None, value, delivery.c[column].type))
        for column, value in receipt_evidence(env).items()
    }
    if values:
        await session.execute(
            update(delivery)
            .where(delivery.c.id == delivery_id, delivery.c.state == DeliveryState.CONFIRMED.value)
            .values(**values)
        )


async def _apply_receipt(
    session: AsyncSession, row: Any, env: Envelope, rules: RoutingRules, now: datetime
) -> None:
    unconfirmed = (DeliveryState.PENDING, DeliveryState.DISPATCHED, DeliveryState.SENT)
    if env.response_code is ResponseCode.OK:
        # A receipt may overtake the adapter's ok; it proves delivery either way. Another
        # worker (an attempt expiring, a retry being dispatched) may move the delivery
        # between our read and our write: read it again and apply the receipt to what it
        # is now, for a receipt never comes twice.
        for _ in range(5):
            state = DeliveryState(row.state)
            if state not in unconfirmed:
                log.info("receipt without effect", extra={**log_ids(row), "state": state.value})
                await keep_late_evidence(session, row.id, env)
                return
            values: dict[str, Any] = {"confirmed_at": now, "attempt_expires_at": None}
            values |= receipt_evidence(env)
            if state is not DeliveryState.SENT:
                values["sent_at"] = now
            if await move(
                session,
                row,
                DeliveryState.CONFIRMED,
                now=now,
                reason="receipt from destination",
                **values,
            ):
                return
            row = (await session.execute(delivery_rows().where(delivery.c.id == row.id))).one()
        raise DeliveryChangedUnderfoot(row.id)  # the batch is read again: nothing is lost
    state = DeliveryState(row.state)
    if state not in unconfirmed:
        log.info("receipt without effect", extra={**log_ids(row), "state": state.value})
    else:
        await dead_letter(
            session,
            row,
            now,
            reason=f"refused after acceptance: {env.outcome_text or 'no reason'}",
            sinks=rules.alert_sinks,
            keyring=rules.keyring,
        )
