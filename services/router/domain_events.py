"""What one part of the router tells another, inside the transaction that caused it.

A package that finds or changes something another package keeps books on announces it here
as an event, and the owner's handlers run at once, in the same transaction (so the change
and its consequences commit together, or neither does). :func:`_handlers` is the whole list:

- :class:`DeliveriesConfirmed`, raised by routing (a receipt, an acknowledged webhook),
  handled by deviations (a confirmation after the legal deadline is recorded as a deviation
  confirmed late; what it counted late gets its final lateness);
- :class:`IncidentFound`, raised by routing (a dead letter, a patient parked, a forged
  record, an overdue confirmation, a legal deadline at risk, a gap in a stay), handled by
  alerting (the incident opened or extended, its notices queued; a failed or late
  notification also counted as a deviation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from services.router.alerting.events import Severity
    from services.router.alerting.incidents import Affected, AlertSink
    from services.router.routing.domain import AlertKind


@dataclass(frozen=True, slots=True)
class DeliveriesConfirmed:
    """These deliveries reached ``confirmed`` at ``at``."""

    delivery_ids: tuple[int, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class IncidentFound:
    """Something a person must look at, about a destination and a family; ``affected``
    is the delivery or patient concerned (None: a party, such as a silent source).
    ``sinks`` are told of every change of the incident."""

    kind: AlertKind
    destination: str
    event_code: str
    affected: Affected | None
    now: datetime
    severity: Severity
    sinks: Sequence[AlertSink] = ()


Event = DeliveriesConfirmed | IncidentFound
Handler = Callable[[AsyncSession, Any], Awaitable[None]]


def _handlers() -> dict[type, tuple[Handler, ...]]:
    # imported here: the owners import the routing package, which raises the events
    from services.router.alerting.incidents import on_incident_found
    from services.router.deviations.late_confirmations import on_deliveries_confirmed

    return {
        DeliveriesConfirmed: (on_deliveries_confirmed,),
        IncidentFound: (on_incident_found,),
    }


async def emit(session: AsyncSession, event: Event) -> None:
    """Run every handler of ``event`` in ``session``'s transaction."""
    for handler in _handlers().get(type(event), ()):
        await handler(session, event)
