"""A runnable fake of TakeCare (the hospital journal).

``POST /_sim/admissions {"count": n}`` emits n admission events to adapter_takecare, as
TakeCare's admission trigger would; with ``schedule_interval_s`` > 0 it also emits one per
interval. ``POST /api/v1/messages`` receives what the broker delivers to TakeCare (deduped on
``Idempotency-Key``) and ``GET /api/v1/messages`` lists it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messaging.http import bearer_ok
from services.simulators.samples import sample_admission

log = logging.getLogger(__name__)


class TakeCareSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_TAKECARE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8102
    intake_url: str = "http://127.0.0.1:8001/takecare/v1/admissions"
    intake_token: str = "sandbox-takecare-key"  # noqa: S105 (sandbox simulator)
    api_token: str = "sandbox-takecare-api-key"  # noqa: S105
    schedule_interval_s: float = 0.0


class EmitRequest(BaseModel):
    count: int = Field(default=1, ge=1, le=1000)


def create_app(
    settings: TakeCareSimSettings,
    *,
    intake_transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
) -> FastAPI:
    rng = rng or random.Random()
    received: dict[str, Any] = {}

    async def emit(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
        sent = []
        for _ in range(count):
            event = sample_admission(rng, now=datetime.now(UTC))
            try:
                res = await client.post(
                    settings.intake_url,
                    json=event,
                    headers={"authorization": f"Bearer {settings.intake_token}"},
                )
                status: int | None = res.status_code
                message_id = res.json().get("messageId") if res.status_code == 202 else None
            except httpx.HTTPError as exc:
                status, message_id = None, None
                log.warning("intake unreachable", extra={"error": type(exc).__name__})
            sent.append({"eventId": event["eventId"], "status": status, "messageId": message_id})
        return sent

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(transport=intake_transport, timeout=10.0) as client:
            app.state.client = client
            task = None
            if settings.schedule_interval_s > 0:

                async def scheduled() -> None:
                    while True:
                        await asyncio.sleep(settings.schedule_interval_s)
                        await emit(client, 1)

                task = asyncio.create_task(scheduled())
            yield
            if task is not None:
                task.cancel()

    app = FastAPI(title="TakeCare simulator", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/_sim/admissions")
    async def admissions(request: Request, body: EmitRequest | None = None) -> dict[str, Any]:
        return {"sent": await emit(request.app.state.client, (body or EmitRequest()).count)}

    @app.post("/api/v1/messages")
    async def receive(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        if not bearer_ok(request, settings.api_token):
            return JSONResponse({"title": "missing or wrong bearer token"}, status_code=401)
        if not idempotency_key:
            return JSONResponse({"title": "Idempotency-Key header is required"}, status_code=400)
        if idempotency_key in received:
            return JSONResponse({"status": "duplicate"}, status_code=200)
        received[idempotency_key] = await request.json()
        return JSONResponse({"status": "received"}, status_code=202)

    @app.get("/api/v1/messages")
    async def list_received() -> dict[str, Any]:
        return {"count": len(received), "items": list(received.values())}

    return app


def main() -> None:
    from services.messaging import logs

    logs.configure("sim_takecare")
    settings = TakeCareSimSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
