"""What the person on duty sees first: deliveries by state over the last 24 hours, health
per destination, and the incidents still open. Metadata only."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging import topics
from services.messaging.metrics import ConsumerLag, Lag
from services.router.ops import queries
from services.router.routing import clock_jumps
from services.router.routing.circuit import CircuitState
from services.router.routing.domain import AlertState, DeliveryState
from services.router.routing.tables import delivery, subscription

WINDOW = timedelta(hours=24)
log = logging.getLogger(__name__)


async def read_lag(app: Any) -> Lag | None:
    """The lag from the probe the service put on ``app.state.consumer_lag``; None when there
    is none or the broker does not answer (the page must still load)."""
    probe: ConsumerLag | None = getattr(app.state, "consumer_lag", None)
    if probe is None:
        return None
    try:
        return await probe.lag()
    except Exception:  # the broker is away: the page says "unknown"
        log.warning("consumer lag unavailable for the dashboard")
        return None


def _idle(name: str) -> dict[str, Any]:
    return {
        "destination": name,
        "circuit": CircuitState.CLOSED.value,
        "failuresInARow": 0,
        "probeAt": None,
        "states": {},
        "oldestUnconfirmedSince": None,
    }


def lag_by_destination(lag: Lag) -> dict[str, int]:
    """Records waiting on each destination's topic for its consumer (webhook subscribers
    share one topic, shown as ``webhooks``)."""
    found: dict[str, int] = {}
    for (_, topic), n in lag.items():
        if topic == topics.WEBHOOKS:
            found["webhooks"] = found.get("webhooks", 0) + n
        for dest in topics.DESTINATIONS:
            if topic == topics.outbound(dest):
                found[dest] = found.get(dest, 0) + n
    return found


async def overview(
    session: AsyncSession, now: datetime, *, lag: Lag | None = None
) -> dict[str, Any]:
    """``lag`` is None when the broker could not be asked (the page then says so)."""
    since = now - WINDOW
    # Grouped by an expression, not the column: otherwise SQLite (no statistics) walks all of
    # ix_delivery_due for the grouping instead of the last day of ix_delivery_created.
    state = (delivery.c.state + "").label("state")
    rows = (
        await session.execute(
            select(state, func.count().label("n"))
            .where(delivery.c.created_at >= since)
            .group_by(state)
        )
    ).all()
    states = {s.value: 0 for s in DeliveryState}
    states.update({str(r.state): int(r.n) for r in rows})
    destinations = await queries.destination_health(session)
    # a destination with nothing waiting is healthy, and is shown as such
    known = {d["destination"] for d in destinations}
    found = await session.execute(
        select(subscription.c.id).where(subscription.c.status == "active")
    )
    active: list[str] = list(found.scalars())
    destinations += [_idle(name) for name in active if name not in known]
    destinations.sort(key=lambda d: str(d["destination"]))
    by_destination = lag_by_destination(lag) if lag is not None else None
    for item in destinations:
        item["consumerLag"] = (
            None if by_destination is None else by_destination.get(item["destination"], 0)
        )
    incidents = await queries.list_alerts(session, state=AlertState.OPEN.value)
    incidents += await queries.list_alerts(session, state=AlertState.ACKNOWLEDGED.value)
    return {
        "since": since.isoformat(),
        "until": now.isoformat(),
        "states": states,
        "total": sum(states.values()),
        "destinations": destinations,
        "incidents": incidents,
        "openIncidents": len(incidents),
        "clockJumps": [
            {
                "detectedAt": j.detected_at.isoformat(),
                "seconds": round(j.seconds, 1),
                "timersMoved": j.timers_moved,
                "alertsHeldUntil": j.alerts_held_until.isoformat(),
                "holding": j.alerts_held_until > now,
            }
            for j in reversed(await clock_jumps.recent(session, now))  # newest first
        ],
    }
