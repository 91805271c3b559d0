"""The router's ops API (JSON). Metadata only: ids, pseudonyms, states, times; no payloads.
Every ``/api`` route needs the operator bearer token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.http import bearer_ok
from services.router import queries
from services.router.domain import AlertState, DeliveryState
from services.router.settings import RouterSettings


def require_operator(request: Request) -> None:
    settings: RouterSettings = request.app.state.settings
    if not bearer_ok(request, settings.ops_token):
        raise HTTPException(
            401, "missing or wrong operator token", headers={"WWW-Authenticate": "Bearer"}
        )


def create_app(settings: RouterSettings, *, sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    app = FastAPI(
        title="carebridge router", description="Delivery log, deliveries, alerts (operations API)"
    )
    app.state.settings = settings
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

    @api.get("/deliveries/states")
    async def delivery_states() -> dict[str, int]:
        async with sessions() as session:
            return await queries.state_counts(session)

    app.include_router(api)
    return app
