"""Raising alerts as grouped incidents: one open alert per (kind, destination, family), never
one per message. Each affected delivery is linked to it; the log line carries no patient data.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import serialize
from services.router.domain import AlertKind, AlertState
from services.router.tables import alert, alert_delivery

log = logging.getLogger(__name__)

_SUMMARY = {
    AlertKind.CONFIRMATION_OVERDUE: "{destination} has not confirmed {family} messages "
    "within the confirmation deadline",
    AlertKind.DELIVERY_FAILED: "{family} messages to {destination} failed permanently",
}


async def raise_alert(
    session: AsyncSession,
    *,
    kind: AlertKind,
    destination: str,
    event_code: str,
    delivery_id: int,
    now: datetime,
) -> int:
    """Open or extend the alert for this group; return its id."""
    await serialize(session, f"alert:{kind.value}:{destination}:{event_code}")
    existing = (
        await session.execute(
            select(alert.c.id)
            .where(
                alert.c.kind == kind.value,
                alert.c.destination == destination,
                alert.c.event_code == event_code,
                alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
            )
            .order_by(alert.c.id)
            .limit(1)
        )
    ).scalar()
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
                        affected=1,
                        summary=_SUMMARY[kind].format(destination=destination, family=event_code),
                    )
                )
            ).scalar_one()
        )
        log.warning(
            "alert opened",
            extra={
                "alert_id": alert_id,
                "kind": kind.value,
                "destination": destination,
                "family": event_code,
                "delivery_id": delivery_id,
            },
        )
    else:
        alert_id = int(existing)
        already = await session.scalar(
            select(alert_delivery.c.alert_id).where(
                alert_delivery.c.alert_id == alert_id, alert_delivery.c.delivery_id == delivery_id
            )
        )
        if already is not None:  # the same delivery failed again after a replay
            await session.execute(
                update(alert).where(alert.c.id == alert_id).values(last_seen_at=now)
            )
            return alert_id
        await session.execute(
            update(alert)
            .where(alert.c.id == alert_id)
            .values(affected=alert.c.affected + 1, last_seen_at=now)
        )
        log.warning(
            "alert extended",
            extra={
                "alert_id": alert_id,
                "kind": kind.value,
                "destination": destination,
                "family": event_code,
                "delivery_id": delivery_id,
            },
        )
    await session.execute(
        alert_delivery.insert().values(alert_id=alert_id, delivery_id=delivery_id)
    )
    return alert_id
