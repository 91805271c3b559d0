"""HTTP entrypoint of adapter_takecare: TakeCare pushes native admission events here.

``POST /takecare/v1/admissions`` answers 202 with the message id only after the message is
stored durably (intake record + outbox row, one transaction). A repeat of the same event
answers 202 with the same id and ``duplicate: true``; nothing new is created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.adapter_takecare.admission import InvalidAdmission
from services.adapter_takecare.intake import accept_admission
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_takecare.store import ConflictingResend, IntakeStore
from services.messaging.http import BodyError, bearer_ok, issue, operation_outcome, read_json_body

log = logging.getLogger(__name__)


def create_app(
    settings: AdapterTakeCareSettings,
    *,
    store: IntakeStore,
    clock: Callable[[], datetime],
    on_accepted: Callable[[], None] = lambda: None,
) -> FastAPI:
    app = FastAPI(
        title="carebridge adapter_takecare",
        description="TakeCare native events → FHIR R4 messages on Kafka",
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/takecare/v1/admissions",
        status_code=202,
        responses={400: {}, 401: {}, 409: {}, 413: {}, 415: {}, 422: {}},
    )
    async def post_admission(request: Request) -> Response:
        if not bearer_ok(request, settings.intake_token):
            return operation_outcome(401, [issue("login", "missing or wrong bearer token")])
        try:
            document = await read_json_body(request, max_bytes=settings.max_body_bytes)
            accepted = await accept_admission(
                document, store=store, pseudonym_key=settings.pseudonym_key, now=clock()
            )
        except BodyError as exc:
            return exc.response
        except InvalidAdmission as exc:
            log.info(
                "admission rejected",
                extra={"violations": [f"{v.path or '$'}:{v.rule}" for v in exc.violations]},
            )
            return operation_outcome(
                422, [issue("invalid", v.message, expression=v.path or "$") for v in exc.violations]
            )
        except ConflictingResend as exc:
            log.warning("conflicting resend", extra={"message_id": exc.message_id})
            return operation_outcome(409, [issue("conflict", str(exc))])
        if not accepted.duplicate:
            on_accepted()
        log.info(
            "admission accepted",
            extra={"message_id": accepted.message_id, "duplicate": accepted.duplicate},
        )
        return JSONResponse(
            {"messageId": accepted.message_id, "duplicate": accepted.duplicate},
            status_code=202,
            headers={"Location": f"/takecare/v1/admissions/{accepted.message_id}"},
        )

    return app
