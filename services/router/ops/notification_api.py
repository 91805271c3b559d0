"""The notification queue over the ops API (``/api/v1/notifications``): what each alert told
whom, on which channel, and whether it went out. A failed notification shows here with its
last error. Bodies are included: they carry no patient identity (see
:mod:`services.router.alerting.notices`); webhook payloads are not (the body says the same)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.alerting.events import AlertChange
from services.router.alerting.notifications import Channel, NotificationState
from services.router.ops.api_params import AlertIdQuery
from services.router.ops.schema_base import ResponseModel, Timestamp
from services.router.routing.tables import notification

_FIELDS = {
    "id": notification.c.id,
    "alertId": notification.c.alert_id,
    "change": notification.c.change,
    "channel": notification.c.channel,
    "recipient": notification.c.recipient,
    "state": notification.c.state,
    "attempts": notification.c.attempts,
    "nextAttemptAt": notification.c.next_attempt_at,
    "lastError": notification.c.last_error,
    "createdAt": notification.c.created_at,
    "sentAt": notification.c.sent_at,
    "subject": notification.c.subject,
    "body": notification.c.body,
}


class NotificationOut(ResponseModel):
    id: int
    alertId: int
    change: AlertChange = Field(description="the change of the alert it tells of")
    channel: Channel
    recipient: str = Field(description="a URL or an email address")
    state: NotificationState
    attempts: int
    nextAttemptAt: Timestamp
    lastError: str | None
    createdAt: Timestamp
    sentAt: Timestamp | None
    subject: str
    body: str


class NotificationListOut(ResponseModel):
    count: int
    items: list[NotificationOut]


def notification_routes(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    api = APIRouter(prefix="/notifications", tags=["notifications"])

    @api.get("", response_model=NotificationListOut)
    async def notifications(
        alert_id: AlertIdQuery = None,
        state: NotificationState | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """Queued, sent and failed alert notifications, newest first."""
        query = select(*(c.label(name) for name, c in _FIELDS.items()))
        if alert_id is not None:
            query = query.where(notification.c.alert_id == alert_id)
        if state is not None:
            query = query.where(notification.c.state == state.value)
        async with sessions() as session:
            rows = (
                await session.execute(query.order_by(notification.c.id.desc()).limit(limit))
            ).all()
        items = [
            {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r._mapping.items()}
            for r in rows
        ]
        return {"count": len(items), "items": items}

    return api
