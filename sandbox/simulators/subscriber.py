"""A runnable fake of a webhook subscriber: the region's coming communication platform.

API (port 8103): ``POST /webhooks/carebridge`` takes what a rest-hook subscription delivers.
It verifies ``X-Carebridge-Signature`` over the body as received against the shared secret
(401 on a missing, wrong or stale signature), needs an ``Idempotency-Key`` (400), stores each
key once (a repeat answers 200 and counts as a duplicate) and answers 200: the broker takes
that as the acknowledgement.

Control (port 8113, always up): ``PUT /_sim/fault`` with ``none``, ``down`` (the listener is
closed: connection refused), ``error`` (503), ``slow``, ``reject`` (422) and
``silent-drop`` (200, nothing stored: a webhook's 2xx is all the broker learns), as the
journal simulators have; ``GET /_sim/stats``, ``POST /_sim/reset``, and ``GET /_sim/received``: what
was stored, with the signature header and the raw body, so a test can check them itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.simulators.journal import FaultMode, JournalState, create_control_app
from sandbox.simulators.serving import run_until_signalled, serve
from services.messaging import sandbox_secrets
from services.messaging.signing import SIGNATURE_HEADER, SignatureError, verify
from services.messaging.webhook_client import EVENT_HEADER, SUBSCRIPTION_HEADER

log = logging.getLogger(__name__)

SANDBOX_SUBSCRIBER_SECRET = sandbox_secrets.SUBSCRIBER_SECRET
PATH = "/webhooks/carebridge"
STAT_NAMES = (
    "received",
    "stored",
    "duplicates",
    "bad_signatures",
    "errors",
    "rejected",
    "dropped",
)


class SubscriberSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_SUBSCRIBER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8103
    control_port: int = 8113
    secret: str = Field(default=SANDBOX_SUBSCRIBER_SECRET, min_length=16)  # as the API asks
    tolerance_s: float = 300.0


def new_state() -> JournalState:
    """The journal simulators' state (fault switch, records by key, counters)."""
    return JournalState(stats=dict.fromkeys(STAT_NAMES, 0))


def _problem(status: int, title: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status},
        status_code=status,
        media_type="application/problem+json",
    )


def create_api_app(
    state: JournalState,
    settings: SubscriberSimSettings,
    *,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    app = FastAPI(title="Subscriber simulator (the region's communication platform)")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(PATH)
    async def receive(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        body = await request.body()
        state.stats["received"] += 1
        signature = request.headers.get(SIGNATURE_HEADER)
        try:
            verify(settings.secret, body, signature, clock(), settings.tolerance_s)
        except SignatureError as exc:
            state.stats["bad_signatures"] += 1
            log.warning("webhook refused", extra={"why": type(exc).__name__})
            return _problem(401, f"signature refused: {type(exc).__name__}")
        if not idempotency_key:
            return _problem(400, "Idempotency-Key header is required")
        mode = state.fault.mode
        if mode is FaultMode.SLOW:
            await asyncio.sleep(state.fault.slow_s)
        if mode is FaultMode.ERROR:
            state.stats["errors"] += 1
            return _problem(503, "the platform is unavailable (fault switch)")
        if mode is FaultMode.REJECT:
            state.stats["rejected"] += 1
            return _problem(422, "rejected by fault switch")
        if mode is FaultMode.SILENT_DROP:
            state.stats["dropped"] += 1
            return JSONResponse({"status": "received"})
        if idempotency_key in state.records:
            state.stats["duplicates"] += 1
            return JSONResponse({"status": "duplicate"})
        try:
            document = json.loads(body)
        except ValueError:
            return _problem(400, "body is not JSON")
        state.records[idempotency_key] = {
            "messageId": idempotency_key,
            "event": request.headers.get(EVENT_HEADER),
            "subscription": request.headers.get(SUBSCRIPTION_HEADER),
            "contentType": request.headers.get("content-type"),
            "signature": signature,
            "rawBody": body.decode(),
            "resourceType": document.get("resourceType") if isinstance(document, dict) else None,
            "receivedAt": datetime.now(UTC).isoformat(),
        }
        state.stats["stored"] += 1
        return JSONResponse({"status": "received"})

    return app


def create_control(state: JournalState) -> FastAPI:
    control = create_control_app(state, name="Subscriber")

    @control.get("/_sim/received")
    async def received() -> dict[str, Any]:
        items = list(state.records.values())
        return {"count": len(items), "items": items}

    return control


async def run(settings: SubscriberSimSettings, stop: asyncio.Event) -> None:
    state = new_state()
    await serve(
        state,
        create_api_app(state, settings),
        create_control(state),
        host=settings.host,
        port=settings.port,
        control_port=settings.control_port,
        stop=stop,
    )


def main() -> None:
    settings = SubscriberSimSettings()
    run_until_signalled("sim_subscriber", lambda stop: run(settings, stop))


if __name__ == "__main__":
    main()
