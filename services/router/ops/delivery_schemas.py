"""Response models of the delivery operations (``/api/v1/replays``, a delivery's close, the
per-state counts) and of the views per destination (``/api/v1/destinations`` and the
dashboard). Metadata only."""

from __future__ import annotations

from pydantic import Field

from services.router.ops.alert_schemas import AlertOut
from services.router.ops.schema_base import ResponseModel, Timestamp
from services.router.routing.circuit import CircuitState
from services.router.routing.domain import DeliveryState


class ReplayItemOut(ResponseModel):
    deliveryId: int
    messageId: str
    destination: str
    replayed: bool
    detail: str = Field(description="what was done, or why it was refused")


class ReplayResultOut(ResponseModel):
    replayed: int
    refused: int
    items: list[ReplayItemOut]


class ReplayCandidatesOut(ResponseModel):
    count: int
    byState: dict[DeliveryState, int] = Field(
        description="every replayable state (dead_letter, sent, pending), 0 where none"
    )


class ReplayAuditEntryOut(ResponseModel):
    """One replay or close, granted or refused, of one delivery."""

    id: int
    at: Timestamp
    actor: str
    reason: str
    delivery_id: int
    message_id: str
    forced: bool
    outcome: str = Field(description='"replayed" or why it was refused')


class ReplayAuditOut(ResponseModel):
    count: int
    items: list[ReplayAuditEntryOut]


class ClosedOut(ResponseModel):
    closed: bool
    messageId: str
    destination: str


class DeliveryStateCountsOut(ResponseModel):
    """Deliveries per state; a state with none is left out (read as 0)."""

    pending: int = 0
    dispatched: int = 0
    sent: int = 0
    confirmed: int = 0
    dead_letter: int = 0
    cancelled: int = 0  # stopped: the sender cancelled the message (makulering)


class DestinationHealthOut(ResponseModel):
    destination: str
    circuit: CircuitState
    failuresInARow: int
    probeAt: Timestamp | None = Field(description="when an open circuit is tried again")
    states: dict[DeliveryState, int] = Field(
        description="unfinished and dead-lettered deliveries by state"
    )
    oldestUnconfirmedSince: Timestamp | None


class DestinationListOut(ResponseModel):
    count: int
    items: list[DestinationHealthOut]


class DashboardDestinationOut(DestinationHealthOut):
    consumerLag: int | None = Field(
        description="records waiting on its topic; null when the broker did not answer"
    )


class ClockJumpOut(ResponseModel):
    detectedAt: Timestamp
    seconds: float = Field(description="how far the wall clock jumped; positive: forward")
    timersMoved: int
    alertsHeldUntil: Timestamp
    holding: bool = Field(description="alerts are still held back")


class DashboardOut(ResponseModel):
    """The console's first page (:func:`services.router.ops.dashboard.overview`)."""

    since: Timestamp
    until: Timestamp
    states: dict[DeliveryState, int] = Field(
        description="deliveries created in the window, by state (every state, 0 where none)"
    )
    total: int
    destinations: list[DashboardDestinationOut]
    incidents: list[AlertOut] = Field(description="open and acknowledged incidents")
    openIncidents: int
    clockJumps: list[ClockJumpOut] = Field(description="recent jumps of the clock, newest first")
