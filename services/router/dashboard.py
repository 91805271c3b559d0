"""What the person on duty sees first: deliveries by state over the last 24 hours, health
per destination, and the incidents still open. Metadata only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.router import queries
from services.router.domain import AlertState, DeliveryState
from services.router.tables import delivery

WINDOW = timedelta(hours=24)


async def overview(session: AsyncSession, now: datetime) -> dict[str, Any]:
    since = now - WINDOW
    rows = (
        await session.execute(
            select(delivery.c.state, func.count().label("n"))
            .where(delivery.c.created_at >= since)
            .group_by(delivery.c.state)
        )
    ).all()
    states = {s.value: 0 for s in DeliveryState}
    states.update({str(r.state): int(r.n) for r in rows})
    incidents = await queries.list_alerts(session, state=AlertState.OPEN.value)
    incidents += await queries.list_alerts(session, state=AlertState.ACKNOWLEDGED.value)
    return {
        "since": since.isoformat(),
        "until": now.isoformat(),
        "states": states,
        "total": sum(states.values()),
        "destinations": await queries.destination_health(session),
        "incidents": incidents,
        "openIncidents": len(incidents),
    }
