"""What a confirmation means for the deviations: the handler of
:class:`~services.router.domain_events.DeliveriesConfirmed`.

A notice confirmed after its legal deadline (Lag 2017:612, ``delivery.legal_due_at``) is a
deviation (avvikelse i samverkan) whether or not the watchdog noticed the breach first: the
watchdog may not have run between the deadline and the receipt (it was down, lost its lease,
the clock jumped, or the receipt simply came first). So the confirmation itself records the
breach, in the transaction that confirms, as a ``legal_deadline_breached`` deviation
*confirmed late*; when the watchdog had already recorded it, the same row is found (one
deviation per delivery and kind) and closed with the confirmation, never duplicated.

Then every open deviation of the confirmed deliveries is closed with its final lateness
(:func:`~services.router.deviations.records.close_deviations`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.envelope import EVENT_DISPLAY, EventCode
from services.router.deviations.records import (
    DeviationKind,
    DeviationRejected,
    close_deviations,
    record_deviation,
)
from services.router.domain_events import DeliveriesConfirmed
from services.router.routing.tables import delivery, message

log = logging.getLogger(__name__)

_PSEUDONYM = re.compile(r"[0-9a-f]{32}")


async def on_deliveries_confirmed(session: AsyncSession, event: DeliveriesConfirmed) -> None:
    """Record the late ones, then close every open deviation of the confirmed deliveries."""
    await record_confirmed_late(session, event.delivery_ids, event.at)
    await close_deviations(session, event.delivery_ids, event.at)


async def record_confirmed_late(
    session: AsyncSession, delivery_ids: Iterable[int], confirmed_at: datetime
) -> int:
    """Record a ``legal_deadline_breached`` deviation for each delivery confirmed after its
    legal deadline (idempotent: an existing one is kept); return how many were late. One
    statement finds them: most confirmations are in time, or have no legal deadline."""
    if confirmed_at.tzinfo is None:
        raise DeviationRejected("confirmed_at: needs a time zone")
    late = (
        await session.execute(
            select(
                delivery.c.id,
                delivery.c.destination,
                delivery.c.legal_due_at,
                message.c.id.label("message_id"),
                message.c.event_code,
                message.c.source,
                message.c.pseudonym,
                message.c.sent_at,
            )
            .join(message, message.c.id == delivery.c.message_id)
            .where(
                delivery.c.id.in_(sorted(set(delivery_ids))),
                delivery.c.legal_due_at.is_not(None),
                delivery.c.legal_due_at < confirmed_at,
            )
            .order_by(delivery.c.id)
        )
    ).all()
    for row in late:
        pseudonym = row.pseudonym if row.pseudonym and _PSEUDONYM.fullmatch(row.pseudonym) else None
        try:
            await record_deviation(
                session,
                kind=DeviationKind.LEGAL_DEADLINE_BREACHED.value,
                family=row.event_code,
                source=row.source,
                destination=row.destination,
                detected_at=confirmed_at,
                message_id=row.message_id,
                delivery_id=row.id,
                pseudonym=pseudonym,
                occurred_at=row.sent_at,
                due_at=row.legal_due_at,
                description=confirmed_late_description(row.event_code, row.destination),
            )
        except DeviationRejected as exc:  # never fail a confirmation over its bookkeeping
            # the message names the field, never its value
            log.error("deviation not recorded", extra={"delivery_id": row.id, "error": str(exc)})
    return len(late)


def confirmed_late_description(event_code: str, destination: str) -> str:
    known = {e.value: EVENT_DISPLAY[e] for e in EventCode}
    family = known.get(event_code, event_code)
    return f"{family} bekräftades av {destination} först efter lagstadgad tid."
