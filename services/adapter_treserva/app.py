"""HTTP entrypoint of adapter_treserva: Treserva pushes its receipts (kvittens) here."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_treserva.receipts import InvalidReceipt, accept_receipt
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.db import utcnow
from services.messaging.http import BodyError, bearer_ok, issue, operation_outcome, read_json_body

log = logging.getLogger(__name__)


def create_app(
    settings: AdapterTreservaSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    relay_wake: asyncio.Event | None = None,
) -> FastAPI:
    app = FastAPI(
        title="carebridge adapter_treserva",
        description="FHIR messages → Treserva; Treserva's receipts → the router",
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/treserva/v1/kvittenser",
        status_code=202,
        responses={400: {}, 401: {}, 413: {}, 415: {}, 422: {}},
    )
    async def post_receipt(request: Request) -> Response:
        if not bearer_ok(request, settings.receipt_token):
            return operation_outcome(401, [issue("login", "missing or wrong bearer token")])
        try:
            document = await read_json_body(request, max_bytes=settings.max_body_bytes)
            duplicate = await accept_receipt(
                document, sessions=sessions, clock=utcnow, relay_wake=relay_wake
            )
        except BodyError as exc:
            return exc.response
        except InvalidReceipt as exc:
            return operation_outcome(
                422, [issue("invalid", v.message, expression=v.path or "$") for v in exc.violations]
            )
        log.info(
            "receipt accepted",
            extra={"message_id": document["meddelandeId"], "duplicate": duplicate},
        )
        return JSONResponse(
            {"kvittensId": document["kvittensId"], "duplicate": duplicate}, status_code=202
        )

    return app
