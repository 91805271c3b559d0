"""The hot path's rows, typed: what the router reads of a delivery and its message
(:func:`services.router.routing.deliveries.delivery_rows`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class DeliveryRow:
    """A delivery joined with its message. ``state`` follows the moves a batch makes
    (:class:`services.router.routing.results.Moves`) before they are written."""

    id: int
    state: str
    destination: str
    attempts: int
    message_id: str
    pseudonym: str
    event_code: str
    payload: str
    superseded_by: str | None
    traceparent: str | None
    message_sent_at: datetime
    attempts_at_replay: int
    confirm_by: datetime
    resend_at: datetime | None
    created_at: datetime
    resend_every_s: float | None

    @classmethod
    def of(cls, row: Any) -> DeliveryRow:
        """From a row of ``delivery_rows()`` (extra columns are left out)."""
        m = row._mapping
        return cls(**{name: m[name] for name in cls.__slots__})
