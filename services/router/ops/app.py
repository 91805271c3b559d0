"""The router's ops API (JSON). Metadata only: ids, pseudonyms, states, times; no payloads.
Every ``/api`` route needs an API client's key, and a role for what it does
(:mod:`services.router.ops.api_clients`); a refused key is recorded in the access log
(:mod:`services.router.ops.refused_tokens`), and so are replays and closed deliveries.
Subscriptions: see :mod:`services.router.ops.subscription_api`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.api_rate_limit import ApiRateLimit
from services.messaging.body_limits import JsonBodyLimits
from services.messaging.db import utcnow
from services.messaging.http import answer_store_outages
from services.messaging.http_edge import install_http_edge
from services.messaging.input_limits import RateLimiter
from services.messaging.problems import PROBLEM_DETAILS, install_error_handlers
from services.messaging.runtime import health as service_health
from services.router.alerting import incidents
from services.router.alerting.incidents import AlertSink
from services.router.audit.admin_actions import record_admin_action, replay_summary
from services.router.ops import dashboard, queries
from services.router.ops.alert_schemas import AlertListOut, AlertOut
from services.router.ops.api_clients import ApiCaller, ApiClients, as_operator
from services.router.ops.api_params import AlertIdPath
from services.router.ops.console.pages import error_page, install_console
from services.router.ops.delivery_schemas import (
    ClosedOut,
    DashboardOut,
    DeliveryStateCountsOut,
    DestinationListOut,
    ReplayAuditOut,
    ReplayCandidatesOut,
    ReplayResultOut,
)
from services.router.ops.deviation_api import deviation_routes
from services.router.ops.message_schemas import MessageDetailOut, MessagePageOut
from services.router.ops.metrics import install_metrics
from services.router.ops.notification_api import notification_routes
from services.router.ops.oidc.provider import RelyingPartyProvider
from services.router.ops.oidc.wiring import install_identity_provider
from services.router.ops.patient_api import patient_routes
from services.router.ops.payload_admin_api import payload_admin_routes
from services.router.ops.refused_tokens import RefusedTokens, authenticate_audited
from services.router.ops.statistics_api import statistics_routes
from services.router.ops.subscription_api import subscription_routes
from services.router.ops.unit_api import unit_routes
from services.router.routing.domain import AlertState, DeliveryState, IllegalTransition
from services.router.routing.replay import (
    NotClosable,
    ReplayFilter,
    audit_log,
    close,
    count_candidates,
    replay,
)
from services.router.settings import RouterSettings
from services.router.subscriptions.endpoints import Resolver, SystemResolver


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # accepted from older scripts and ignored: who acts is who the key or token names
    operator: str | None = Field(default=None, max_length=60)
    note: str = Field(min_length=3, max_length=500)


class ReplayRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    message_ids: list[str] = Field(default_factory=list, alias="messageIds", max_length=1000)
    destination: str | None = None
    event: str | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    reason: str = Field(min_length=3, max_length=500)
    # accepted from older scripts and ignored: who acts is who the key or token names
    operator: str | None = Field(default=None, max_length=60)
    force: bool = False


class CloseRequest(BaseModel):
    """Why an operator stops a delivery that has no receipt from being sent again."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)
    # accepted from older scripts and ignored: who acts is who the key or token names
    operator: str | None = Field(default=None, max_length=60)


Operator = Annotated[ApiCaller, Depends(as_operator)]

# Every /api route can answer these (the key check, then JsonBodyLimits, then FastAPI's
# own parsing of the body), so the OpenAPI says so once for all of them.
_API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "body is not JSON, or nests deeper than the limit"},
    401: {"description": "missing or wrong API key or token (WWW-Authenticate: Bearer)"},
    403: {"description": "the API client's role may not do this"},
    413: {"description": "body too large"},
    415: {"description": "a body that is not application/json"},
    429: {"description": "over the client's rate (Retry-After says when to come back)"},
}


def create_app(
    settings: RouterSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime] = utcnow,
    alert_sinks: Sequence[AlertSink] = (),
    resolver: Resolver | None = None,
    identity_provider: RelyingPartyProvider | None = None,
) -> FastAPI:
    """``resolver``: how subscription endpoints are resolved for their checks (the
    operating system's unless a test passes a fake)."""
    app = FastAPI(
        title="carebridge router", description="Delivery log, deliveries, alerts (operations API)"
    )
    app.state.settings = settings
    app.state.api_clients = ApiClients.build(settings.api_clients, settings.ops_token)
    install_identity_provider(app, settings, clock, identity_provider)
    install_error_handlers(app, PROBLEM_DETAILS, page=error_page)
    answer_store_outages(app)
    app.add_middleware(
        JsonBodyLimits,
        prefix="/api/",
        shape=PROBLEM_DETAILS,
        max_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
    )
    # added last, so it runs first: a throttled request is not even read
    app.add_middleware(
        ApiRateLimit,
        prefix="/api/",
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
    )
    # a refused token is recorded in the access log, at most once per address a minute
    app.state.refused_tokens = RefusedTokens(sessions, clock, time.monotonic)
    api = APIRouter(
        prefix="/api/v1", dependencies=[Depends(authenticate_audited)], responses=_API_ERRORS
    )

    @app.get("/health")
    async def health(request: Request) -> dict[str, str]:
        """The process answers; ``kafka`` says whether its Kafka side is ready yet."""
        return service_health(request.app)

    @api.get(
        "/messages",
        response_model=MessagePageOut,
        responses={422: {"description": "a bad filter or cursor"}},
    )
    async def messages(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        state: DeliveryState | None = None,
        event: Annotated[str | None, Query(description="family (event code)")] = None,
        since: Annotated[AwareDatetime | None, Query(description="received at or after")] = None,
        until: Annotated[AwareDatetime | None, Query(description="received before")] = None,
        source: str | None = None,
        destination: str | None = None,
        pseudonym: str | None = None,
        business_key: Annotated[str | None, Query(alias="businessKey")] = None,
        cursor: Annotated[str | None, Query(description="``next`` of the previous page")] = None,
    ) -> dict[str, Any]:
        """Messages newest first, filtered; page on with ``cursor`` set to the last ``next``
        (null on the last page)."""
        wanted = queries.MessageQuery(
            since=since,
            until=until,
            event_code=event,
            source=source,
            destination=destination,
            state=state.value if state else None,
            pseudonym=pseudonym,
            business_key=business_key,
        )
        async with sessions() as session:
            try:
                page = await queries.search_messages(session, wanted, limit=limit, cursor=cursor)
            except queries.InvalidCursor as exc:
                raise HTTPException(422, f"cursor: {exc}") from None
        return {"count": len(page.items), "items": page.items, "next": page.next_cursor}

    @api.get(
        "/messages/{message_id}",
        response_model=MessageDetailOut,
        responses={404: {"description": "no such message"}},
    )
    async def message(message_id: str) -> dict[str, Any]:
        async with sessions() as session:
            detail = await queries.message_detail(
                session,
                message_id,
                agreements=settings.payment_agreements_of(),
                directory=settings.municipality_directory(),
            )
        if detail is None:
            raise HTTPException(404, "no such message")
        return detail

    @api.get("/alerts", response_model=AlertListOut)
    async def alerts(state: AlertState | None = None) -> dict[str, Any]:
        async with sessions() as session:
            items = await queries.list_alerts(session, state=state.value if state else None)
        return {"count": len(items), "items": items}

    @api.get(
        "/alerts/{alert_id}",
        response_model=AlertOut,
        responses={404: {"description": "no such alert"}},
    )
    async def alert(alert_id: AlertIdPath) -> dict[str, Any]:
        """One incident, with what the broker will do next about it and when."""
        async with sessions() as session:
            found = await queries.alert_detail(session, alert_id)
        if found is None:
            raise HTTPException(404, "no such alert")
        return found

    async def _act(
        alert_id: int, body: AlertAction, action: str, caller: ApiCaller
    ) -> dict[str, Any]:
        step = incidents.OPERATOR_ACTIONS[action]
        async with sessions.begin() as session:
            try:
                done = await step(
                    session,
                    alert_id,
                    actor=caller.actor(),
                    note=body.note,
                    now=clock(),
                    sinks=alert_sinks,
                )
            except IllegalTransition as exc:
                raise HTTPException(409, f"the alert is {exc.current}: cannot {action}") from None
            if not done:
                raise HTTPException(404, "no such alert")
            found = await queries.alert_detail(session, alert_id)
        assert found is not None  # the step found it, in this transaction
        return found

    @api.post(
        "/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses={404: {}, 409: {}}
    )
    async def acknowledge_alert(
        alert_id: AlertIdPath, body: AlertAction, caller: Operator
    ) -> dict[str, Any]:
        """An operator takes the incident: reminders stop until it is resolved."""
        return await _act(alert_id, body, "acknowledge", caller)

    @api.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses={404: {}, 409: {}})
    async def resolve_alert(
        alert_id: AlertIdPath, body: AlertAction, caller: Operator
    ) -> dict[str, Any]:
        """Close the incident by hand (one whose cause clears closes itself)."""
        return await _act(alert_id, body, "resolve", caller)

    @api.post(
        "/replays",
        response_model=ReplayResultOut,
        responses={422: {"description": "no message ids and no filter"}},
    )
    async def replays(body: ReplayRequest, caller: Operator) -> dict[str, Any]:
        """Replay unconfirmed deliveries (dead-lettered, sent without a receipt, or waiting
        for their next attempt) by message id or filter: each is due at once with a fresh
        attempt budget. Audited; a superseded SIP or medication list is refused unless
        ``force``; one whose attempt is in flight is not taken."""
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
            now = clock()
            outcomes = await replay(
                session,
                wanted,
                actor=caller.actor(),
                reason=body.reason,
                force=body.force,
                now=now,
            )
            await record_admin_action(
                session,
                actor=caller.actor(),
                role=caller.role.value,
                action="replay",
                detail=replay_summary(outcomes, body.reason, force=body.force),
                now=now,
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

    @api.get("/replays/candidates", response_model=ReplayCandidatesOut)
    async def replay_candidates(
        destination: str | None = None,
        event: str | None = None,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
    ) -> dict[str, Any]:
        """How many deliveries a replay with this filter would go through, in all and per
        state (the same filter as ``POST /replays``; nothing is changed or audited)."""
        wanted = ReplayFilter(destination=destination, event_code=event, since=since, until=until)
        async with sessions() as session:
            by_state = await count_candidates(session, wanted)
        return {"count": sum(by_state.values()), "byState": by_state}

    @api.post(
        "/messages/{message_id}/deliveries/{destination}/close",
        response_model=ClosedOut,
        responses={
            404: {"description": "no such delivery"},
            409: {"description": "confirmed, already closed, or its attempt is in flight"},
        },
    )
    async def close_delivery(
        message_id: Annotated[str, FastApiPath(max_length=100)],
        destination: Annotated[str, FastApiPath(max_length=40)],
        body: CloseRequest,
        caller: Operator,
    ) -> dict[str, Any]:
        """Stop sending a delivery that has no receipt: the only way an unconfirmed
        delivery stops being sent again at its confirmation interval. It is dead-lettered
        with the reason, audited, and can still be replayed."""
        async with sessions.begin() as session:
            now = clock()
            try:
                found = await close(
                    session,
                    message_id,
                    destination,
                    actor=caller.actor(),
                    reason=body.reason,
                    now=now,
                )
            except NotClosable as exc:
                raise HTTPException(409, f"the delivery is {exc.state}: cannot close") from None
            if found:
                await record_admin_action(
                    session,
                    actor=caller.actor(),
                    role=caller.role.value,
                    action="delivery closed",
                    detail=f"{message_id} to {destination}; why: {body.reason}",
                    now=now,
                )
        if not found:
            raise HTTPException(404, "no such delivery")
        return {"closed": True, "messageId": message_id, "destination": destination}

    @api.get("/replays", response_model=ReplayAuditOut)
    async def replay_audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        async with sessions() as session:
            items = await audit_log(session, limit=limit)
        return {"count": len(items), "items": items}

    @api.get("/destinations", response_model=DestinationListOut)
    async def destinations() -> dict[str, Any]:
        """Health per destination: circuit breaker, unfinished deliveries by state, and the
        oldest unconfirmed delivery."""
        async with sessions() as session:
            items = await queries.destination_health(session)
        return {"count": len(items), "items": items}

    @api.get("/dashboard", response_model=DashboardOut)
    async def overview(request: Request) -> dict[str, Any]:
        """The console's first page: deliveries by state over the last 24 h, health per
        destination (with the consumer lag on its topic; null when the broker did not
        answer), open incidents."""
        lag = await dashboard.read_lag(request.app)
        async with sessions() as session:
            return await dashboard.overview(session, clock(), lag=lag)

    # a state with no delivery is left out, as state_counts leaves it out
    @api.get(
        "/deliveries/states",
        response_model=DeliveryStateCountsOut,
        response_model_exclude_unset=True,
    )
    async def delivery_states() -> dict[str, int]:
        async with sessions() as session:
            return await queries.state_counts(session)

    api.include_router(
        subscription_routes(
            sessions,
            clock,
            policy=settings.endpoint_policy(),
            resolver=resolver if resolver is not None else SystemResolver(),
        )
    )
    api.include_router(deviation_routes(sessions, clock))
    api.include_router(notification_routes(sessions))
    api.include_router(patient_routes(settings, sessions, clock))
    api.include_router(payload_admin_routes(settings, sessions, clock))
    api.include_router(unit_routes(sessions, clock))
    api.include_router(
        statistics_routes(
            sessions,
            clock,
            agreements=settings.payment_agreements_of(),
            directory=settings.municipality_directory(),
        )
    )
    app.include_router(api)
    install_console(app, settings, sessions, clock, alert_sinks)
    install_metrics(
        app,
        sessions,
        clock,
        token=settings.metrics_token,
        replay_window=timedelta(seconds=settings.replay_window_s),
    )
    clients: ApiClients = app.state.api_clients
    install_http_edge(
        app, settings, shape=PROBLEM_DETAILS, key_ok=lambda h: clients.identify(h) is not None
    )
    return app
