"""Alerts as incidents: one open incident per (kind, destination, family), never one per
message. Each affected delivery is linked to it; log lines carry no patient data.

Lifecycle (:mod:`services.router.routing.domain` holds the state machine)::

    open ──acknowledge──▶ acknowledged ──resolve──▶ resolved
      └───────────────resolve (an operator, or the cause cleared)──────▲

Every change is handed to the alert sinks as an :class:`AlertEvent` (notification channels,
deviation reports) in the same transaction, so a change and its notifications commit
together. Re-notification is throttled: an incident that stays open and unacknowledged is
re-announced as a reminder only after its severity's interval.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.care_facts import read_care_facts
from services.messaging.db import serialize
from services.messaging.envelope import EVENT_DISPLAY, EventCode
from services.messaging.payload_crypto import Keyring, PayloadCryptoError
from services.router.alerting.events import AlertChange, AlertEvent, Severity
from services.router.deviations.records import (
    DeviationKind,
    DeviationRejected,
    default_description,
    record_deviation,
)
from services.router.routing.domain import (
    SETTLED,
    AlertKind,
    AlertState,
    IllegalTransition,
    check_alert_transition,
)
from services.router.routing.tables import alert, alert_delivery, delivery, message

if TYPE_CHECKING:  # circuit imports this module
    from services.router.domain_events import IncidentFound
    from services.router.routing.circuit import CircuitPolicy

log = logging.getLogger(__name__)

AlertSink = Callable[[AsyncSession, AlertEvent], Awaitable[None]]
"""Told of every incident change inside the transaction that made it."""

_SUMMARY = {
    AlertKind.CONFIRMATION_OVERDUE: "{destination} has not confirmed {family} messages "
    "within the confirmation deadline",
    AlertKind.DELIVERY_FAILED: "{family} messages to {destination} failed permanently",
    AlertKind.DEADLINE_AT_RISK: "{family} messages to {destination} are near or past their "
    "legal deadline",
    AlertKind.SILENT_SOURCE: "no {family} messages from {destination} in the expected window: "
    "its trigger may be broken",
    AlertKind.DESTINATION_DOWN: "{destination} has not answered for longer than allowed: its "
    "circuit breaker is open and deliveries wait",
    AlertKind.PAYLOAD_UNDECRYPTABLE: "stored {family} messages for {destination} do not open "
    "with ROUTER_PAYLOAD_KEYS (a key removed too early?): they are dead-lettered; restore the "
    "key and replay them",
    AlertKind.UNTRUSTED_RECORD: "a record on {destination} failed its signature check and "
    "was quarantined: it changed nothing. Someone may be forging receipts or commands on "
    "Kafka, or a service signs with a key this router does not trust",
    AlertKind.EPISODE_GAP: "stays are missing a {family} (or {destination} never confirmed the "
    "admission notice it refers to)",
    AlertKind.SIGNATURE_REFUSED: "subscriber {destination} refuses the webhooks' signature "
    "(HTTP 401): a clock off by more than its tolerance, ours or its, or a secret rotated on one "
    "side only; the {family} notices are retried until it takes them, none is dropped",
    AlertKind.CONSENT_HOLD: "{family} messages to {destination} are held, not routed: the "
    "consent does not cover the unit they would be addressed to, or the patient withdrew "
    "consent for the stay; check the consent with the sender, nothing is sent until then",
    AlertKind.PATIENT_PARKED: "{destination} keeps answering one patient's {family} messages "
    "with an error while it takes the others: that patient's deliveries are parked (retried "
    "at the longest interval) and the circuit stays closed for everyone else; the delivery's "
    "last error says what the receiver refused",
}

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

# Kinds whose cause clears when every affected delivery is confirmed (an episode gap only
# when it names deliveries: an admission notice the receiver never confirmed).
_CLEARS_WHEN_CONFIRMED = frozenset(
    {
        AlertKind.CONFIRMATION_OVERDUE,
        AlertKind.DELIVERY_FAILED,
        AlertKind.DEADLINE_AT_RISK,
        AlertKind.EPISODE_GAP,
        AlertKind.PATIENT_PARKED,
        AlertKind.SIGNATURE_REFUSED,
    }
)


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    """How long an open, unacknowledged incident stays quiet before it is announced again;
    ``None``: never re-announced."""

    intervals: dict[Severity, timedelta | None] = field(
        default_factory=lambda: {
            Severity.INFO: None,
            Severity.WARNING: timedelta(hours=2),
            Severity.CRITICAL: timedelta(minutes=30),
        }
    )


@dataclass(frozen=True, slots=True)
class Affected:
    """The delivery that raised or joined an incident, and what the event may say of it."""

    delivery_id: int | None  # None: a patient-level gap with no delivery behind it
    message_id: str | None = None
    pseudonym: str | None = None
    sender_unit_hsa: str | None = None
    due_at: datetime | None = None
    # the unit the delivery was addressed to (issue 20): its fallback notice and deviation
    receiver_unit_hsa: str | None = None

    @classmethod
    def of(cls, row: Any, keyring: Keyring, *, due_at: datetime | None = None) -> Affected:
        """From a :func:`services.router.routing.deliveries.delivery_rows` row (its payload sealed
        with ``keyring``, or pruned)."""
        try:
            text = keyring.open(row.payload, message_id=row.message_id)
            facts = read_care_facts(json.loads(text))
        except PayloadCryptoError:  # its key is gone: the incident is raised without the unit
            facts = None
        except ValueError:  # a pruned payload, or not FHIR JSON: no sender unit then
            facts = None
        return cls(
            delivery_id=row.id,
            message_id=row.message_id,
            pseudonym=row.pseudonym,
            sender_unit_hsa=facts.sender_unit_hsa if facts else None,
            # the confirmation deadline unless a (legal) deadline is named
            due_at=due_at or getattr(row, "confirm_by", None),
            receiver_unit_hsa=getattr(row, "receiver_unit_hsa", None),
        )


async def on_incident_found(session: AsyncSession, event: IncidentFound) -> None:
    """The handler of :class:`~services.router.domain_events.IncidentFound`."""
    await raise_alert(
        session,
        kind=event.kind,
        destination=event.destination,
        event_code=event.event_code,
        affected=event.affected,
        now=event.now,
        severity=event.severity,
        sinks=event.sinks,
    )


async def raise_alert(
    session: AsyncSession,
    *,
    kind: AlertKind,
    destination: str,
    event_code: str,
    affected: Affected | None,
    now: datetime,
    severity: Severity = Severity.WARNING,
    sinks: Sequence[AlertSink] = (),
) -> int:
    """Open the incident for this group, or link the delivery to the open one (escalating
    it if ``severity`` is higher); return its id. ``affected`` is None for an incident about
    a party rather than a message (a silent source). A failed or late notification is also
    counted as a deviation (avvikelse i samverkan), once per delivery and kind."""
    alert_id = await _raise(
        session,
        kind=kind,
        destination=destination,
        event_code=event_code,
        affected=affected,
        now=now,
        severity=severity,
        sinks=sinks,
    )
    deviation = _DEVIATION_OF.get(kind)
    # an early warning (a deadline at 50 or 80 %) is not yet a deviation; its breach is
    counts = kind not in _WARNS_EARLY or severity is Severity.CRITICAL
    if affected is not None and deviation is not None and counts:
        await _count_deviation(session, deviation, destination, event_code, affected, now, alert_id)
    return alert_id


async def _raise(
    session: AsyncSession,
    *,
    kind: AlertKind,
    destination: str,
    event_code: str,
    affected: Affected | None,
    now: datetime,
    severity: Severity,
    sinks: Sequence[AlertSink],
) -> int:
    await serialize(session, f"alert:{kind.value}:{destination}:{event_code}")
    existing = (
        await session.execute(
            select(alert.c.id, alert.c.severity, alert.c.affected)
            .where(
                alert.c.kind == kind.value,
                alert.c.destination == destination,
                alert.c.event_code == event_code,
                alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
            )
            .order_by(alert.c.id)
            .limit(1)
        )
    ).first()
    where = {"kind": kind.value, "destination": destination, "family": event_code}
    if existing is None:
        alert_id = int(
            (
                await session.execute(
                    alert.insert()
                    .returning(alert.c.id)
                    .values(
                        kind=kind.value,
                        destination=destination,
                        event_code=event_code,
                        state=AlertState.OPEN.value,
                        opened_at=now,
                        last_seen_at=now,
                        notified_at=now,
                        affected=1,
                        severity=severity.value,
                        summary=_SUMMARY[kind].format(destination=destination, family=event_code),
                    )
                )
            ).scalar_one()
        )
        log.warning("alert opened", extra={"alert_id": alert_id, **where})
        if affected is not None and affected.delivery_id is not None:
            await _link(session, alert_id, affected.delivery_id)
        await _tell(session, sinks, alert_id, AlertChange.OPENED, affected, now)
        return alert_id
    alert_id = int(existing.id)
    values: dict[str, Any] = {"last_seen_at": now}
    linked = (
        affected is not None
        and affected.delivery_id is not None
        and await _link(session, alert_id, affected.delivery_id)
    )
    if linked:
        values["affected"] = alert.c.affected + 1
    escalates = _RANK[severity] > _RANK[Severity(existing.severity)]
    if escalates:
        values |= {"severity": severity.value, "notified_at": now}
    await session.execute(update(alert).where(alert.c.id == alert_id).values(**values))
    if escalates:
        log.warning("alert escalated", extra={"alert_id": alert_id, "severity": severity, **where})
        await _tell(session, sinks, alert_id, AlertChange.ESCALATED, affected, now)
    elif linked:
        log.warning("alert extended", extra={"alert_id": alert_id, **where})
        # ops hear of it at the next reminder; the patient's receiving unit must hear now
        await _tell(session, sinks, alert_id, AlertChange.AFFECTED, affected, now)
    return alert_id


_WARNS_EARLY = frozenset({AlertKind.DEADLINE_AT_RISK, AlertKind.EPISODE_GAP})

_PSEUDONYM = re.compile(r"[0-9a-f]{32}")

# incident kind → deviation kind (a deadline incident counts only once breached)
_DEVIATION_OF = {
    AlertKind.CONFIRMATION_OVERDUE: DeviationKind.NOT_CONFIRMED_IN_TIME,
    AlertKind.DELIVERY_FAILED: DeviationKind.DELIVERY_FAILED,
    AlertKind.PAYLOAD_UNDECRYPTABLE: DeviationKind.DELIVERY_FAILED,
    AlertKind.DEADLINE_AT_RISK: DeviationKind.LEGAL_DEADLINE_BREACHED,
    AlertKind.EPISODE_GAP: DeviationKind.EPISODE_GAP,
}


async def _count_deviation(
    session: AsyncSession,
    kind: DeviationKind,
    destination: str,
    event_code: str,
    affected: Affected,
    now: datetime,
    alert_id: int,
) -> None:
    source, occurred = "takecare", None
    if affected.message_id is not None:
        found = (
            await session.execute(
                select(message.c.source, message.c.sent_at).where(
                    message.c.id == affected.message_id
                )
            )
        ).first()
        if found is not None:
            source, occurred = found.source, found.sent_at
    try:
        await _record(
            session, kind, destination, event_code, affected, now, alert_id, source, occurred
        )
    except DeviationRejected as exc:  # never fail the delivery work over its bookkeeping
        log.error("deviation not recorded", extra={"alert_id": alert_id, "error": str(exc)})


async def _record(
    session: AsyncSession,
    kind: DeviationKind,
    destination: str,
    event_code: str,
    affected: Affected,
    now: datetime,
    alert_id: int,
    source: str,
    occurred: datetime | None,
) -> None:
    pseudonym = affected.pseudonym
    await record_deviation(
        session,
        kind=kind.value,
        family=event_code,
        source=source,
        destination=destination,
        detected_at=now,
        message_id=affected.message_id,
        delivery_id=affected.delivery_id,
        sender_unit_hsa=affected.sender_unit_hsa,
        receiver_unit_hsa=affected.receiver_unit_hsa,
        pseudonym=pseudonym if pseudonym and _PSEUDONYM.fullmatch(pseudonym) else None,
        occurred_at=occurred,
        due_at=affected.due_at,
        description=default_description(kind.value, _family_text(event_code), destination),
        alert_id=alert_id,
    )


def _family_text(event_code: str) -> str:
    known = {e.value: EVENT_DISPLAY[e] for e in EventCode}
    return known.get(event_code, event_code)


async def acknowledge(
    session: AsyncSession,
    alert_id: int,
    *,
    actor: str,
    note: str,
    now: datetime,
    sinks: Sequence[AlertSink] = (),
) -> bool:
    """An operator has taken the incident: reminders stop. False if it was not open."""
    return await _move(
        session,
        alert_id,
        AlertState.ACKNOWLEDGED,
        AlertChange.ACKNOWLEDGED,
        now,
        sinks,
        acknowledged_at=now,
        acknowledged_by=actor[:100],
        resolution=note[:500],
    )


async def resolve(
    session: AsyncSession,
    alert_id: int,
    *,
    actor: str,
    note: str,
    now: datetime,
    sinks: Sequence[AlertSink] = (),
) -> bool:
    return await _move(
        session,
        alert_id,
        AlertState.RESOLVED,
        AlertChange.RESOLVED,
        now,
        sinks,
        resolved_at=now,
        resolved_by=actor[:100],
        resolution=note[:500],
    )


OPERATOR_ACTIONS = {"acknowledge": acknowledge, "resolve": resolve}
"""What an operator may do to an incident, by the name the API and the console use."""


async def resolve_cleared(
    session: AsyncSession, now: datetime, sinks: Sequence[AlertSink] = ()
) -> int:
    """Resolve every incident whose cause has cleared: each delivery it names is confirmed
    (the destination recovered, or an operator's replay got through) or cancelled by its
    sender (nothing more is expected of it)."""
    link, d = alert_delivery.alias("link"), delivery.alias("d")
    unconfirmed = exists().where(
        and_(
            link.c.alert_id == alert.c.id,
            d.c.id == link.c.delivery_id,
            d.c.state.not_in([s.value for s in SETTLED]),  # a cancelled one is settled too
        )
    )
    ids: list[int] = list(
        (
            await session.execute(
                select(alert.c.id).where(
                    alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
                    alert.c.kind.in_([k.value for k in _CLEARS_WHEN_CONFIRMED]),
                    exists().where(alert_delivery.c.alert_id == alert.c.id),
                    ~unconfirmed,
                )
            )
        ).scalars()
    )
    resolved = 0
    for alert_id in ids:
        try:
            resolved += await resolve(
                session,
                int(alert_id),
                actor="router",
                note="cause cleared: every affected delivery is confirmed",
                now=now,
                sinks=sinks,
            )
        except IllegalTransition:
            # Another router resolved it between our read and now (two replicas on
            # PostgreSQL: their ticks race). Under the scale-out benchmark this ended one.
            continue
    return resolved


async def remind(
    session: AsyncSession,
    now: datetime,
    policy: ReminderPolicy,
    sinks: Sequence[AlertSink] = (),
) -> int:
    """Re-announce open, unacknowledged incidents whose quiet interval has passed."""
    rows = (
        await session.execute(
            select(alert.c.id, alert.c.severity, alert.c.notified_at).where(
                alert.c.state == AlertState.OPEN.value
            )
        )
    ).all()
    reminded = 0
    for row in rows:
        interval = policy.intervals.get(Severity(row.severity))
        if interval is None or row.notified_at is None or now - row.notified_at < interval:
            continue
        claimed = await session.execute(
            update(alert)
            .where(alert.c.id == row.id, alert.c.notified_at == row.notified_at)
            .values(notified_at=now, reminders=alert.c.reminders + 1)
        )
        if claimed.rowcount:  # type: ignore[attr-defined]
            await _tell(session, sinks, int(row.id), AlertChange.REMINDER, None, now)
            reminded += 1
    return reminded


async def _move(
    session: AsyncSession,
    alert_id: int,
    target: AlertState,
    change: AlertChange,
    now: datetime,
    sinks: Sequence[AlertSink],
    **values: Any,
) -> bool:
    # Compare and set: another replica or the watchdog may move the incident between the
    # read and the write (on PostgreSQL's READ COMMITTED); the write then finds the new
    # state, which is judged again: an incident resolved meanwhile is a 409, never a 404.
    for _ in range(len(AlertState)):
        current = await session.scalar(select(alert.c.state).where(alert.c.id == alert_id))
        if current is None:
            return False
        check_alert_transition(AlertState(current), target)
        moved = await session.execute(
            update(alert)
            .where(alert.c.id == alert_id, alert.c.state == current)
            .values(state=target.value, **values)
        )
        if moved.rowcount:  # type: ignore[attr-defined]
            break
    else:
        return False
    log.warning(f"alert {target.value}", extra={"alert_id": alert_id})
    await _tell(session, sinks, alert_id, change, None, now)
    return True


async def _link(session: AsyncSession, alert_id: int, delivery_id: int) -> bool:
    already = await session.scalar(
        select(alert_delivery.c.alert_id).where(
            alert_delivery.c.alert_id == alert_id, alert_delivery.c.delivery_id == delivery_id
        )
    )
    if already is not None:  # the same delivery failed again after a replay
        return False
    await session.execute(
        alert_delivery.insert().values(alert_id=alert_id, delivery_id=delivery_id)
    )
    return True


async def _tell(
    session: AsyncSession,
    sinks: Sequence[AlertSink],
    alert_id: int,
    change: AlertChange,
    affected: Affected | None,
    now: datetime,
) -> None:
    if not sinks:
        return
    row = (await session.execute(select(alert).where(alert.c.id == alert_id))).one()
    event = AlertEvent(
        alert_id=alert_id,
        change=change,
        kind=row.kind,
        severity=Severity(row.severity),
        destination=row.destination,
        family=row.event_code,
        summary=row.summary,
        affected=row.affected,
        at=now,
        pseudonym=affected.pseudonym if affected else None,
        message_id=affected.message_id if affected else None,
        sender_unit_hsa=affected.sender_unit_hsa if affected else None,
        receiver_unit_hsa=affected.receiver_unit_hsa if affected else None,
        due_at=affected.due_at if affected else None,
    )
    for sink in sinks:
        await sink(session, event)


DESTINATION_DOWN_FAMILY = "all"  # a destination-down incident is about every family


async def check_destinations(
    session: AsyncSession,
    now: datetime,
    limit: timedelta,
    sinks: Sequence[AlertSink] = (),
    policy: CircuitPolicy | None = None,
) -> int:
    """An incident per destination whose circuit stays open longer than ``limit``, a circuit
    that flaps (closes on one answer and opens again) included; it resolves itself when the
    circuit has closed and stayed closed (``policy.settle_s``)."""
    from services.router.routing.circuit import CircuitPolicy, open_longer_than

    policy = policy or CircuitPolicy()
    down = await open_longer_than(session, now, limit, policy)
    for destination in down:
        await raise_alert(
            session,
            kind=AlertKind.DESTINATION_DOWN,
            destination=destination,
            event_code=DESTINATION_DOWN_FAMILY,
            affected=None,
            now=now,
            severity=Severity.CRITICAL,
            sinks=sinks,
        )
    still_open = (
        await session.execute(
            select(alert.c.id, alert.c.destination).where(
                alert.c.kind == AlertKind.DESTINATION_DOWN.value,
                alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
            )
        )
    ).all()
    for row in still_open:
        if row.destination not in down and not await _circuit_open(
            session, row.destination, now, policy
        ):
            await resolve(
                session,
                int(row.id),
                actor="router",
                note="cause cleared: the destination answers again (circuit closed)",
                now=now,
                sinks=sinks,
            )
    return len(down)


async def _circuit_open(
    session: AsyncSession, destination: str, now: datetime, policy: CircuitPolicy
) -> bool:
    """Open, probing, or closed too recently to call it settled."""
    from services.router.routing.circuit import CircuitState, destination_circuit

    found = (
        await session.execute(
            select(destination_circuit.c.state, destination_circuit.c.closed_at).where(
                destination_circuit.c.destination == destination
            )
        )
    ).first()
    if found is None:
        return False
    return found.state != CircuitState.CLOSED.value or not policy.settled(found.closed_at, now)
