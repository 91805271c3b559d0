"""What one part of the router tells another, inside the transaction that caused it.

A package that changes something others keep books on announces it here as an event, and
the owners' handlers run at once, in the same transaction (so the change and its
consequences commit together, or neither does). :func:`_handlers` is the whole list:

- :class:`DeliveriesConfirmed`, raised by routing (a receipt, an acknowledged webhook),
  handled by deviations (what it counted late gets its final lateness).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class DeliveriesConfirmed:
    """These deliveries reached ``confirmed`` at ``at``."""

    delivery_ids: tuple[int, ...]
    at: datetime


Event = DeliveriesConfirmed
Handler = Callable[[AsyncSession, Any], Awaitable[None]]


def _handlers() -> dict[type, tuple[Handler, ...]]:
    # imported here: the owners import the routing package, which raises the events
    from services.router.deviations.records import on_deliveries_confirmed

    return {DeliveriesConfirmed: (on_deliveries_confirmed,)}


async def emit(session: AsyncSession, event: Event) -> None:
    """Run every handler of ``event`` in ``session``'s transaction."""
    for handler in _handlers().get(type(event), ()):
        await handler(session, event)
