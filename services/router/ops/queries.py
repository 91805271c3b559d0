"""Read models for the ops API: metadata only, never payloads. Message search (filters and
keyset pagination) lives in :mod:`services.router.ops.message_search` and is re-exported here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.envelope import EventCode
from services.router.ops.message_search import (
    DELIVERY_FIELDS,
    MESSAGE_FIELDS,
    InvalidCursor,
    MessagePage,
    MessageQuery,
    iso,
    row_dict,
    search_messages,
)
from services.router.routing.circuit import CircuitState, destination_circuit
from services.router.routing.domain import UNFINISHED, DeliveryState
from services.router.routing.swedish_calendar import STOCKHOLM
from services.router.routing.tables import (
    alert,
    alert_delivery,
    delivery,
    delivery_attempt,
    delivery_transition,
    message,
)
from services.router.statistics.payment import MunicipalityDirectory
from services.router.statistics.payment_clock import PaymentAgreements, working_day_deadline


async def list_messages(
    session: AsyncSession, *, limit: int, state: str | None = None, event_code: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` messages (kept for callers of the first API; see search_messages)."""
    page = await search_messages(
        session, MessageQuery(state=state, event_code=event_code), limit=limit
    )
    return page.items


async def message_detail(
    session: AsyncSession,
    message_id: str,
    *,
    agreements: PaymentAgreements | None = None,
    directory: MunicipalityDirectory | None = None,
) -> dict[str, Any] | None:
    """A message and its deliveries, each with its attempts, transitions and deadlines: the
    legal one (``legal_due_at``) and, with ``agreements`` and ``directory``, the working-day
    one where an agreement counts working days (``working_due_at``, Stockholm time)."""
    row = (await session.execute(select(*MESSAGE_FIELDS).where(message.c.id == message_id))).first()
    if row is None:
        return None
    detail = row_dict(row)
    detail["deliveries"] = []
    for d in (
        await session.execute(
            select(*DELIVERY_FIELDS)
            .where(delivery.c.message_id == message_id)
            .order_by(delivery.c.id)
        )
    ).all():
        item = row_dict(d)
        due = working_due_at(row.event_code, d.destination, d.sent_at, agreements, directory)
        item["working_due_at"] = None if due is None else due.isoformat()
        item["deadline_time_zone"] = STOCKHOLM.key  # days and holidays are Swedish
        item["attempts_log"] = [
            row_dict(a)
            for a in (
                await session.execute(
                    select(
                        delivery_attempt.c.attempt_no,
                        delivery_attempt.c.dispatched_at,
                        delivery_attempt.c.completed_at,
                        delivery_attempt.c.outcome,
                        delivery_attempt.c.detail,
                    )
                    .where(delivery_attempt.c.delivery_id == d.id)
                    .order_by(delivery_attempt.c.attempt_no)
                )
            ).all()
        ]
        item["transitions"] = [
            row_dict(t)
            for t in (
                await session.execute(
                    select(
                        delivery_transition.c.from_state,
                        delivery_transition.c.to_state,
                        delivery_transition.c.at,
                        delivery_transition.c.reason,
                    )
                    .where(delivery_transition.c.delivery_id == d.id)
                    .order_by(delivery_transition.c.id)
                )
            ).all()
        ]
        detail["deliveries"].append(item)
    return detail


async def case_timeline(
    session: AsyncSession,
    case_id: str,
    *,
    agreements: PaymentAgreements | None = None,
    directory: MunicipalityDirectory | None = None,
) -> list[dict[str, Any]]:
    """Every message of a case (one stay, services.messaging.case) in time order: sent at
    the source, then received, then id; each with its deliveries (one per destination: its
    state, receiving unit and deadlines). Metadata only. Empty for an unknown case."""
    rows = (
        await session.execute(
            select(*MESSAGE_FIELDS)
            .where(message.c.case_id == case_id)
            .order_by(message.c.sent_at, message.c.received_at, message.c.id)
        )
    ).all()
    items = [row_dict(r) for r in rows]
    by_message: dict[str, list[dict[str, Any]]] = {m["id"]: [] for m in items}
    events = {m["id"]: m["event_code"] for m in items}
    if by_message:
        for d in (
            await session.execute(
                select(*DELIVERY_FIELDS)
                .where(delivery.c.message_id.in_(list(by_message)))
                .order_by(delivery.c.id)
            )
        ).all():
            item = row_dict(d)
            due = working_due_at(
                events[d.message_id], d.destination, d.sent_at, agreements, directory
            )
            item["working_due_at"] = None if due is None else due.isoformat()
            by_message[d.message_id].append(item)
    for m in items:
        m["deliveries"] = by_message[m["id"]]
    return items


def working_due_at(
    event_code: str,
    destination: str,
    sent_at: datetime | None,
    agreements: PaymentAgreements | None,
    directory: MunicipalityDirectory | None,
) -> datetime | None:
    """The working-day deadline of one delivery, in Stockholm time, where one applies: a
    ready-for-discharge notice sent to a municipality whose agreement counts working days
    (its days before it pays for the bed end then;
    :mod:`~services.router.statistics.payment_clock`)."""
    if event_code != EventCode.READY_FOR_DISCHARGE or sent_at is None:
        return None
    if agreements is None or directory is None:
        return None
    municipality = directory.municipality_of(destination)
    if municipality is None:
        return None
    return working_day_deadline(sent_at, agreements.of(municipality))


async def list_alerts(session: AsyncSession, *, state: str | None) -> list[dict[str, Any]]:
    query = select(alert)
    if state is not None:
        query = query.where(alert.c.state == state)
    items = [row_dict(r) for r in (await session.execute(query.order_by(alert.c.id.desc()))).all()]
    steps = await next_steps(session, [int(item["id"]) for item in items])
    return [{**item, "next_step": steps.get(int(item["id"]))} for item in items]


async def next_steps(session: AsyncSession, alert_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What the broker will do next about each incident's deliveries, and when: the earliest
    re-send of one sent without a receipt, the earliest next attempt of one waiting, and how
    many wait for a person (dead letters); incidents about no delivery are left out."""
    if not alert_ids:
        return {}
    rows = (
        await session.execute(
            select(
                alert_delivery.c.alert_id,
                delivery.c.state,
                func.count().label("n"),
                func.min(func.coalesce(delivery.c.resend_at, delivery.c.confirm_by)).label(
                    "resend_at"
                ),
                func.min(delivery.c.next_attempt_at).label("next_attempt_at"),
            )
            .join(delivery, delivery.c.id == alert_delivery.c.delivery_id)
            .where(alert_delivery.c.alert_id.in_(alert_ids))
            .group_by(alert_delivery.c.alert_id, delivery.c.state)
        )
    ).all()
    by_alert: dict[int, dict[str, Any]] = {}
    for r in rows:
        found = by_alert.setdefault(int(r.alert_id), {"counts": {}})
        found["counts"][str(r.state)] = int(r.n)
        if r.state == DeliveryState.SENT.value:
            found["resend_at"] = r.resend_at
        elif r.state == DeliveryState.PENDING.value:
            found["next_attempt_at"] = r.next_attempt_at
    return {alert_id: _next_step(found) for alert_id, found in by_alert.items()}


def _next_step(found: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = found["counts"]
    waiting = counts.get(DeliveryState.PENDING.value, 0) + counts.get(
        DeliveryState.DISPATCHED.value, 0
    )
    unconfirmed = counts.get(DeliveryState.SENT.value, 0)
    for_a_person = counts.get(DeliveryState.DEAD_LETTER.value, 0)
    moments = [t for t in (found.get("next_attempt_at"), found.get("resend_at")) if t is not None]
    if waiting or unconfirmed:
        parts = []
        if waiting:
            parts.append(f"{waiting} being sent or waiting for their next attempt")
        if unconfirmed:
            parts.append(
                f"{unconfirmed} sent without a receipt: sent again every confirmation "
                "interval until the receipt comes or an operator closes them"
            )
        if for_a_person:
            parts.append(f"{for_a_person} dead-lettered: replay or close them")
        action = "send again"
        text = "; ".join(parts)
    elif for_a_person:
        action, text = "operator", f"{for_a_person} dead-lettered: replay or close them"
    else:
        action, text = "none", "every affected delivery is confirmed"
    return {
        "action": action,
        "at": iso(min(moments)) if moments and action == "send again" else None,
        "text": text,
        "deliveries": counts,
    }


async def state_counts(session: AsyncSession) -> dict[str, int]:
    rows = (
        await session.execute(
            select(delivery.c.state, func.count().label("n")).group_by(delivery.c.state)
        )
    ).all()
    return {str(row.state): int(row.n) for row in rows}


async def destination_health(session: AsyncSession) -> list[dict[str, Any]]:
    """Per destination: its circuit, how many deliveries are unfinished in each state, and
    since when the oldest unconfirmed one has waited."""
    unfinished = [s.value for s in UNFINISHED] + [DeliveryState.DEAD_LETTER.value]
    counts = (
        await session.execute(
            select(
                delivery.c.destination,
                delivery.c.state,
                func.count().label("n"),
                func.min(delivery.c.created_at).label("oldest"),
            )
            .where(delivery.c.state.in_(unfinished))
            .group_by(delivery.c.destination, delivery.c.state)
        )
    ).all()
    circuits = {
        r.destination: r for r in (await session.execute(select(destination_circuit))).all()
    }
    found: dict[str, dict[str, Any]] = {}
    for name in sorted({r.destination for r in counts} | set(circuits)):
        c = circuits.get(name)
        found[name] = {
            "destination": name,
            "circuit": c.state if c else CircuitState.CLOSED.value,
            "failuresInARow": c.failures if c else 0,
            "probeAt": iso(c.probe_at) if c and c.probe_at else None,
            "states": {},
            "oldestUnconfirmedSince": None,
        }
    for r in counts:
        item = found[r.destination]
        item["states"][r.state] = int(r.n)
        if r.state != DeliveryState.DEAD_LETTER.value:
            oldest = item["oldestUnconfirmedSince"]
            since = iso(r.oldest)
            item["oldestUnconfirmedSince"] = since if oldest is None else min(oldest, since)
    return list(found.values())


async def alert_detail(session: AsyncSession, alert_id: int) -> dict[str, Any] | None:
    row = (await session.execute(select(alert).where(alert.c.id == alert_id))).first()
    if row is None:
        return None
    steps = await next_steps(session, [alert_id])
    return {**row_dict(row), "next_step": steps.get(alert_id)}


__all__ = [
    "InvalidCursor",
    "MessagePage",
    "MessageQuery",
    "alert_detail",
    "destination_health",
    "list_alerts",
    "list_messages",
    "message_detail",
    "next_steps",
    "search_messages",
    "state_counts",
    "working_due_at",
]
