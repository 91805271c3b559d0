"""The router's ops API (JSON). Metadata only: ids, pseudonyms, states, times; no payloads.
Every ``/api`` route needs the operator bearer token. Subscriptions: see
:mod:`services.router.subscription_api`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import utcnow
from services.messaging.http import answer_store_outages, bearer_ok
from services.router import alerts as incidents
from services.router import queries
from services.router.alerts import AlertSink
from services.router.deviation_api import deviation_routes
from services.router.domain import AlertState, DeliveryState, IllegalTransition
from services.router.metrics import install_metrics
from services.router.notification_api import notification_routes
from services.router.replay import ReplayFilter, audit_log, replay
from services.router.settings import RouterSettings
from services.router.subscription_api import subscription_routes


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: str = Field(min_length=1, max_length=60)
    note: str = Field(min_length=3, max_length=500)


class ReplayRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    message_ids: list[str] = Field(default_factory=list, alias="messageIds", max_length=1000)
    destination: str | None = None
    event: str | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    reason: str = Field(min_length=3, max_length=500)
    operator: str = Field(min_length=1, max_length=60)
    force: bool = False


def require_operator(request: Request) -> None:
    settings: RouterSettings = request.app.state.settings
    if not bearer_ok(request, settings.ops_token):
        raise HTTPException(
            401, "missing or wrong operator token", headers={"WWW-Authenticate": "Bearer"}
        )


def create_app(
    settings: RouterSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime] = utcnow,
    alert_sinks: Sequence[AlertSink] = (),
) -> FastAPI:
    app = FastAPI(
        title="carebridge router", description="Delivery log, deliveries, alerts (operations API)"
    )
    app.state.settings = settings
    answer_store_outages(app)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_operator)])

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/messages")
    async def messages(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        state: DeliveryState | None = None,
        event: str | None = None,
    ) -> dict[str, Any]:
        async with sessions() as session:
            items = await queries.list_messages(
                session, limit=limit, state=state.value if state else None, event_code=event
            )
        return {"count": len(items), "items": items}

    @api.get("/messages/{message_id}")
    async def message(message_id: str) -> dict[str, Any]:
        async with sessions() as session:
            detail = await queries.message_detail(session, message_id)
        if detail is None:
            raise HTTPException(404, "no such message")
        return detail

    @api.get("/alerts")
    async def alerts(state: AlertState | None = None) -> dict[str, Any]:
        async with sessions() as session:
            items = await queries.list_alerts(session, state=state.value if state else None)
        return {"count": len(items), "items": items}

    async def _act(alert_id: int, body: AlertAction, action: str) -> dict[str, Any]:
        step = incidents.acknowledge if action == "acknowledge" else incidents.resolve
        async with sessions.begin() as session:
            try:
                done = await step(
                    session,
                    alert_id,
                    actor=f"{body.operator} (operator token)",
                    note=body.note,
                    now=clock(),
                    sinks=alert_sinks,
                )
            except IllegalTransition as exc:
                raise HTTPException(409, f"the alert is {exc.current}: cannot {action}") from None
            if not done:
                raise HTTPException(404, "no such alert")
            found = await queries.alert_detail(session, alert_id)
        return found or {}

    @api.post("/alerts/{alert_id}/acknowledge", responses={404: {}, 409: {}})
    async def acknowledge_alert(alert_id: int, body: AlertAction) -> dict[str, Any]:
        """An operator takes the incident: reminders stop until it is resolved."""
        return await _act(alert_id, body, "acknowledge")

    @api.post("/alerts/{alert_id}/resolve", responses={404: {}, 409: {}})
    async def resolve_alert(alert_id: int, body: AlertAction) -> dict[str, Any]:
        """Close the incident by hand (one whose cause clears closes itself)."""
        return await _act(alert_id, body, "resolve")

    @api.post("/replays", responses={422: {"description": "no message ids and no filter"}})
    async def replays(body: ReplayRequest) -> dict[str, Any]:
        """Replay dead-lettered deliveries by message id or filter. Audited; a superseded SIP
        or medication list is refused unless ``force``."""
        if not body.message_ids and not (body.destination or body.event):
            raise HTTPException(422, "name message ids, or filter by destination or event")
        wanted = ReplayFilter(
            message_ids=tuple(body.message_ids),
            destination=body.destination,
            event_code=body.event,
            since=body.since,
            until=body.until,
        )
        async with sessions.begin() as session:
            outcomes = await replay(
                session,
                wanted,
                actor=f"{body.operator} (operator token)",
                reason=body.reason,
                force=body.force,
                now=clock(),
            )
        return {
            "replayed": sum(o.replayed for o in outcomes),
            "refused": sum(not o.replayed for o in outcomes),
            "items": [
                {
                    "deliveryId": o.delivery_id,
                    "messageId": o.message_id,
                    "destination": o.destination,
                    "replayed": o.replayed,
                    "detail": o.detail,
                }
                for o in outcomes
            ],
        }

    @api.get("/replays")
    async def replay_audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        async with sessions() as session:
            items = await audit_log(session, limit=limit)
        return {"count": len(items), "items": items}

    @api.get("/destinations")
    async def destinations() -> dict[str, Any]:
        """Health per destination: circuit breaker, unfinished deliveries by state, and the
        oldest unconfirmed delivery."""
        async with sessions() as session:
            items = await queries.destination_health(session)
        return {"count": len(items), "items": items}

    @api.get("/deliveries/states")
    async def delivery_states() -> dict[str, int]:
        async with sessions() as session:
            return await queries.state_counts(session)

    api.include_router(subscription_routes(sessions, clock))
    api.include_router(deviation_routes(sessions, clock))
    api.include_router(notification_routes(sessions))
    app.include_router(api)
    install_metrics(app, sessions, clock)
    return app
