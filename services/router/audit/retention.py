"""Retention of payloads: a finished message's FHIR payload is removed after the retention
period (``ROUTER_PAYLOAD_RETENTION_DAYS``, 90 by default) while its metadata (ids, times,
states, every transition and attempt, the pseudonym) stays for statistics and audit.

A message is finished when every one of its deliveries is confirmed or dead-lettered and
the last of them changed state before the cut-off; a message with an unfinished delivery
(pending, dispatched, sent) keeps its payload whatever its age, because it may still be
sent. The payload becomes the marker ``pruned:v1:<time>``, never the data, and the console
and API say "pruned" (:class:`PayloadPruned`). A replay of a pruned message is refused.

Run by the router's tick loop at a low rate (``ROUTER_PAYLOAD_PRUNE_EVERY_S``) in small
batches, or by ``python -m services.router.ops.cli prune-payloads``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.routing.domain import DeliveryState
from services.router.routing.tables import PRUNED_PREFIX, delivery, message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRules:
    """How long payloads are kept (None: kept) and how often the tick prunes them."""

    payload_retention: timedelta | None = None
    prune_every: timedelta = timedelta(hours=1)


FINISHED = (
    DeliveryState.CONFIRMED.value,
    DeliveryState.DEAD_LETTER.value,
    DeliveryState.CANCELLED.value,
)


class PayloadPruned(LookupError):
    """The payload was removed after the retention period; the metadata is kept."""

    def __init__(self, message_id: str, pruned_at: str) -> None:
        super().__init__(f"payload of {message_id} pruned at {pruned_at}")
        self.pruned_at = pruned_at


def pruned_marker(now: datetime) -> str:
    return f"{PRUNED_PREFIX}{now.isoformat()}"


def pruned_at(stored: str) -> str | None:
    """When a payload was pruned (ISO time), or None for a payload still held."""
    return stored[len(PRUNED_PREFIX) :] if stored.startswith(PRUNED_PREFIX) else None


async def prune_payloads(
    session: AsyncSession, now: datetime, *, retention: timedelta, limit: int = 500
) -> int:
    """Prune up to ``limit`` finished messages older than ``retention``; the count pruned."""
    cutoff = now - retention
    unfinished_or_recent = exists().where(
        and_(
            delivery.c.message_id == message.c.id,
            (delivery.c.state.not_in(FINISHED)) | (delivery.c.updated_at > cutoff),
        )
    )
    ids: list[str] = list(
        (
            await session.execute(
                select(message.c.id)
                .where(
                    message.c.received_at <= cutoff,
                    ~message.c.payload.startswith(PRUNED_PREFIX),
                    ~unfinished_or_recent,
                )
                .order_by(message.c.received_at)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    # checked again in the UPDATE: a replay between the two statements keeps its payload
    done = await session.execute(
        update(message)
        .where(message.c.id.in_(ids), ~unfinished_or_recent)
        .values(payload=pruned_marker(now))
        .execution_options(synchronize_session=False)
    )
    count = int(done.rowcount)  # type: ignore[attr-defined]
    log.info("payloads pruned after the retention period", extra={"count": count})
    return count
