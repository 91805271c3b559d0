"""Response models of the incidents (``/api/v1/alerts``, and the dashboard's open ones): the
alert row as :func:`queries.list_alerts` and :func:`queries.alert_detail` read it, with what
the broker will do next about it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.router.alerting.events import Severity
from services.router.ops.schema_base import ResponseModel, Timestamp
from services.router.routing.domain import AlertState, DeliveryState


class NextStepOut(ResponseModel):
    """What the broker does next about the incident's deliveries (:func:`queries.next_steps`)."""

    action: Literal["send again", "operator", "none"]
    at: Timestamp | None = Field(description="when it sends again; null unless it will")
    text: str
    deliveries: dict[DeliveryState, int] = Field(description="the incident's deliveries by state")


class AlertOut(ResponseModel):
    id: int
    kind: str = Field(description="the failure class (an AlertKind value)")
    destination: str
    event_code: str
    state: AlertState
    severity: Severity
    opened_at: Timestamp
    last_seen_at: Timestamp
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None
    resolved_at: Timestamp | None
    resolved_by: str | None = Field(description='an operator, or "router" (cause cleared)')
    resolution: str | None
    affected: int = Field(description="deliveries or patients in this incident so far")
    summary: str
    notified_at: Timestamp | None = Field(description="the last notification")
    reminders: int
    next_step: NextStepOut | None = Field(description="null for an incident about no delivery")


class AlertListOut(ResponseModel):
    count: int
    items: list[AlertOut]
