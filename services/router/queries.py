"""Read models for the ops API: metadata only, never payloads. Message search (filters and
keyset pagination) lives in :mod:`services.router.message_search` and is re-exported here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.circuit import CircuitState, destination_circuit
from services.router.domain import UNFINISHED, DeliveryState
from services.router.message_search import (
    DELIVERY_FIELDS,
    MESSAGE_FIELDS,
    InvalidCursor,
    MessagePage,
    MessageQuery,
    iso,
    row_dict,
    search_messages,
)
from services.router.tables import (
    alert,
    delivery,
    delivery_attempt,
    delivery_transition,
    message,
)


async def list_messages(
    session: AsyncSession, *, limit: int, state: str | None = None, event_code: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` messages (kept for callers of the first API; see search_messages)."""
    page = await search_messages(
        session, MessageQuery(state=state, event_code=event_code), limit=limit
    )
    return page.items


async def message_detail(session: AsyncSession, message_id: str) -> dict[str, Any] | None:
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


async def list_alerts(session: AsyncSession, *, state: str | None) -> list[dict[str, Any]]:
    query = select(alert)
    if state is not None:
        query = query.where(alert.c.state == state)
    return [row_dict(r) for r in (await session.execute(query.order_by(alert.c.id.desc()))).all()]


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
    return row_dict(row) if row is not None else None


__all__ = [
    "InvalidCursor",
    "MessagePage",
    "MessageQuery",
    "alert_detail",
    "destination_health",
    "list_alerts",
    "list_messages",
    "message_detail",
    "search_messages",
    "state_counts",
]
