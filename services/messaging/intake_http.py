"""HTTP entrypoints an adapter offers its journal system, one pair per inbound family:

``POST /<system>/v1/<route>``
    202 ``{"messageId", "duplicate"}`` only after the message is stored durably (intake
    record + outbox row, one transaction). A repeat answers 202 with the same id and
    ``duplicate: true``; a changed repeat of the same event id and version answers 409.
``POST /<system>/v1/<route>/$validate``
    The same checks without storing anything: 200 with an informational OperationOutcome,
    or 422 naming every failing field and rule. For vendor developers.

Errors are OperationOutcomes: 400 not JSON, 401 bad token, 413 too large, 415 wrong type,
422 contract violation, 503 the database is unreachable (send again). Nothing about the
patient is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.envelope import System
from services.messaging.http import (
    BodyError,
    bearer_ok,
    issue,
    operation_outcome,
    read_json_body,
)
from services.messaging.intake import ConflictingResend, IntakeStore, accept_event
from services.messaging.native import InboundFamily, InvalidEvent, NativeEvent
from services.messaging.receipts import Receipt, accept_receipt
from services.messaging.tracing import HEADER as TRACEPARENT
from services.messaging.tracing import continue_or_start

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "body is not JSON"},
    401: {"description": "missing or wrong bearer token"},
    409: {"description": "event id and version accepted before with other content"},
    413: {"description": "body too large"},
    415: {"description": "Content-Type is not application/json"},
    422: {"description": "the document breaks its contract (OperationOutcome names each field)"},
    503: {"description": "the broker's store is unavailable for now; send again (Retry-After)"},
}


def violations_outcome(exc: InvalidEvent) -> JSONResponse:
    return operation_outcome(
        422,
        [
            issue("invalid", f"{v.rule}: {v.message}", expression=v.path or "$")
            for v in exc.violations
        ],
    )


def intake_router(
    *,
    prefix: str,
    families: Sequence[InboundFamily[Any]],
    store: IntakeStore,
    token: Callable[[], str],
    pseudonym_key: str,
    max_body_bytes: int,
    clock: Callable[[], datetime],
    on_accepted: Callable[[], None] = lambda: None,
) -> APIRouter:
    router = APIRouter(prefix=prefix)
    for family in families:
        _add_family(
            router,
            family,
            store=store,
            token=token,
            pseudonym_key=pseudonym_key,
            max_body_bytes=max_body_bytes,
            clock=clock,
            on_accepted=on_accepted,
        )
    return router


def _add_family(
    router: APIRouter,
    family: InboundFamily[NativeEvent],
    *,
    store: IntakeStore,
    token: Callable[[], str],
    pseudonym_key: str,
    max_body_bytes: int,
    clock: Callable[[], datetime],
    on_accepted: Callable[[], None],
) -> None:
    name = family.family

    async def post(request: Request) -> Response:
        if not bearer_ok(request, token()):
            return operation_outcome(401, [issue("login", "missing or wrong bearer token")])
        trace = continue_or_start(request.headers.get(TRACEPARENT))
        try:
            document = await read_json_body(request, max_bytes=max_body_bytes)
            accepted = await accept_event(
                document,
                family,
                store=store,
                pseudonym_key=pseudonym_key,
                now=clock(),
                trace=trace,
            )
        except BodyError as exc:
            return exc.response
        except InvalidEvent as exc:
            log.info(
                "event rejected",
                extra={
                    "family": name,
                    "violations": [f"{v.path or '$'}:{v.rule}" for v in exc.violations],
                    **trace.log_fields(),
                },
            )
            return violations_outcome(exc)
        except ConflictingResend as exc:
            log.warning(
                "conflicting resend", extra={"message_id": exc.message_id, **trace.log_fields()}
            )
            return operation_outcome(409, [issue("conflict", str(exc))])
        if not accepted.duplicate:
            on_accepted()
        log.info(
            "event accepted",
            extra={
                "family": name,
                "message_id": accepted.message_id,
                "pseudonym": accepted.pseudonym,
                "duplicate": accepted.duplicate,
                **trace.log_fields(),
            },
        )
        return JSONResponse(
            {"messageId": accepted.message_id, "duplicate": accepted.duplicate},
            status_code=202,
        )

    async def validate(request: Request) -> Response:
        if not bearer_ok(request, token()):
            return operation_outcome(401, [issue("login", "missing or wrong bearer token")])
        try:
            family.parse(await read_json_body(request, max_bytes=max_body_bytes))
        except BodyError as exc:
            return exc.response
        except InvalidEvent as exc:
            return violations_outcome(exc)
        return operation_outcome(
            200,
            [
                issue(
                    "informational",
                    f"valid {name} ({family.schema})",
                    severity="information",
                )
            ],
        )

    router.add_api_route(
        f"/{family.route}",
        post,
        methods=["POST"],
        status_code=202,
        summary=f"Push a {name} event",
        responses=_ERRORS,
        name=f"post_{family.route}",
    )
    router.add_api_route(
        f"/{family.route}/$validate",
        validate,
        methods=["POST"],
        summary=f"Check a {name} document against its contract without storing it",
        responses={k: v for k, v in _ERRORS.items() if k != 409},
        name=f"validate_{family.route}",
    )


def receipt_router(
    *,
    prefix: str,
    route: str,
    parse: Callable[[Any], Receipt],
    responder: System,
    owner: str,
    sessions: async_sessionmaker[AsyncSession],
    token: Callable[[], str],
    max_body_bytes: int,
    clock: Callable[[], datetime],
    relay_wake: asyncio.Event | None = None,
) -> APIRouter:
    """``POST <prefix>/<route>``: the journal's receipt (kvittens) of a delivered message."""
    router = APIRouter(prefix=prefix)

    async def post(request: Request) -> Response:
        if not bearer_ok(request, token()):
            return operation_outcome(401, [issue("login", "missing or wrong bearer token")])
        trace = continue_or_start(request.headers.get(TRACEPARENT))
        try:
            receipt = parse(await read_json_body(request, max_bytes=max_body_bytes))
            duplicate = await accept_receipt(
                receipt,
                responder=responder,
                owner=owner,
                sessions=sessions,
                clock=clock,
                relay_wake=relay_wake,
                trace=trace,
            )
        except BodyError as exc:
            return exc.response
        except InvalidEvent as exc:
            return violations_outcome(exc)
        log.info(
            "receipt accepted",
            extra={
                "message_id": receipt.message_id,
                "rejected": receipt.rejected,
                "duplicate": duplicate,
                **trace.log_fields(),
            },
        )
        return JSONResponse(
            {"receiptId": receipt.receipt_id, "duplicate": duplicate}, status_code=202
        )

    router.add_api_route(
        f"/{route}",
        post,
        methods=["POST"],
        status_code=202,
        summary="Receipt (kvittens) or rejection of a delivered message",
        responses={k: v for k, v in _ERRORS.items() if k != 409},
        name=f"post_{route}",
    )
    return router
