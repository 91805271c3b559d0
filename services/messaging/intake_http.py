"""HTTP entrypoints an adapter offers its journal system, one pair per inbound family:

``POST /<system>/v1/<route>``
    202 ``{"messageId", "duplicate"}`` only after the message is stored durably (intake
    record + outbox row, one transaction). A repeat answers 202 with the same id and
    ``duplicate: true``; a changed repeat of the same event id and version answers 409.
``POST /<system>/v1/<route>/$validate``
    The same checks without storing anything: 200 with an informational OperationOutcome,
    or 422 naming every failing field and rule. For vendor developers. When the adapter has
    a reference FHIR validator (``fhir_validator_url``), a document that passes is
    translated to its FHIR message and the validator's issues join the answer (422 if any
    is an error, 503 if the validator is unreachable); see
    :mod:`services.messaging.fhir_validate_http`.

Every request first shows a source system's key (``Authorization: Bearer``, see
:mod:`services.messaging.keys`); the key names the system, and a system may post only the
families the catalogue (:mod:`services.messaging.families`) lets it send, on its own intake.
Then the per-client rate limit, then the body limits (type, size, depth), then the contract.

Errors are OperationOutcomes: 400 not JSON or nested too deep, 401 no or unknown key (with
``WWW-Authenticate: Bearer``), 403 another system's key or a family the system does not
send, 413 too large, 415 not ``application/json`` or ``application/fhir+json``, 422 contract
violation, 429 over the rate (``Retry-After``), 503 the database is unreachable (send
again). Nothing refused is stored, and nothing about the patient is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.envelope import System, to_json
from services.messaging.families import may_send
from services.messaging.fhir_validate_http import combined, fhir_side, unavailable
from services.messaging.fhir_validator import FhirValidator, FhirValidatorUnavailable
from services.messaging.http import (
    MAX_JSON_DEPTH,
    BodyError,
    FhirJsonResponse,
    client_address,
    forbidden,
    issue,
    operation_outcome,
    read_json_body,
    too_many_requests,
    unauthorized,
)
from services.messaging.input_limits import RateLimiter
from services.messaging.intake import ConflictingResend, IntakeStore, accept_event
from services.messaging.keys import SystemKeys
from services.messaging.native import InboundFamily, InvalidEvent, NativeEvent
from services.messaging.receipts import Receipt, accept_receipt
from services.messaging.tracing import HEADER as TRACEPARENT
from services.messaging.tracing import continue_or_start

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "body is not JSON, or nests deeper than the limit"},
    401: {"description": "missing or unknown bearer key (WWW-Authenticate: Bearer)"},
    403: {"description": "the key's system may not send this family here"},
    409: {"description": "event id and version accepted before with other content"},
    413: {"description": "body too large"},
    415: {"description": "Content-Type is not application/json or application/fhir+json"},
    422: {"description": "the document breaks its contract (OperationOutcome names each field)"},
    429: {"description": "too many requests from this client; wait Retry-After seconds"},
    503: {"description": "the broker's store is unavailable for now; send again (Retry-After)"},
}


# Only documents the scheme in the OpenAPI; IntakeGuard does the checking.
_SOURCE_KEY = [
    Depends(
        HTTPBearer(
            auto_error=False,
            scheme_name="sourceSystemKey",
            description="the source system's own key (SHA-256 hash held by the broker)",
        )
    )
]


@dataclass(frozen=True)
class IntakeGuard:
    """Who may post to one system's intake, how often, and how large a body may be."""

    source: System  # the system whose intake this is
    keys: SystemKeys  # every known system's key hashes: a key names its system
    limiter: RateLimiter
    max_body_bytes: int
    max_depth: int = MAX_JSON_DEPTH

    def refusal(self, request: Request, *, allowed: bool, what: str) -> Response | None:
        """The 429/401/403 answer for this request, or None to go on.

        The rate limit comes first and counts per system once the key is known, else per
        peer address, so guessing keys is throttled too."""
        system = self.keys.identify(request.headers.get("authorization"))
        client = f"system:{system.value}" if system else f"address:{client_address(request)}"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            log.warning("request throttled", extra={"client": client, "what": what})
            return too_many_requests(wait)
        if system is None:
            log.warning("request refused: no or unknown key", extra={"what": what})
            return unauthorized()
        if system is not self.source or not allowed:
            log.warning(
                "request refused: system may not send this",
                extra={"system": system.value, "intake": self.source.value, "what": what},
            )
            return forbidden(f"{system.value} may not send {what} to this intake")
        return None


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
    guard: IntakeGuard,
    pseudonym_key: str,
    clock: Callable[[], datetime],
    regional_reserve_oid: str | None,
    on_accepted: Callable[[], None] = lambda: None,
    fhir_validator: FhirValidator | None = None,
) -> APIRouter:
    """``regional_reserve_oid``: the OID of the region whose reserve numbers the source
    uses; None refuses regional reserve numbers with a 422. ``fhir_validator``: the
    reference validator ``$validate`` asks about the FHIR side (None: not checked)."""
    router = APIRouter(prefix=prefix)
    for family in families:
        _add_family(
            router,
            family,
            store=store,
            guard=guard,
            pseudonym_key=pseudonym_key,
            clock=clock,
            regional_reserve_oid=regional_reserve_oid,
            on_accepted=on_accepted,
            fhir_validator=fhir_validator,
        )
    return router


def _add_family(
    router: APIRouter,
    family: InboundFamily[NativeEvent],
    *,
    store: IntakeStore,
    guard: IntakeGuard,
    pseudonym_key: str,
    clock: Callable[[], datetime],
    regional_reserve_oid: str | None,
    on_accepted: Callable[[], None],
    fhir_validator: FhirValidator | None,
) -> None:
    name = family.family
    allowed = may_send(guard.source, name)

    async def read(request: Request) -> Any:
        return await read_json_body(
            request, max_bytes=guard.max_body_bytes, max_depth=guard.max_depth
        )

    async def post(request: Request) -> Response:
        refused = guard.refusal(request, allowed=allowed, what=name)
        if refused is not None:
            return refused
        trace = continue_or_start(request.headers.get(TRACEPARENT))
        try:
            document = await read(request)
            accepted = await accept_event(
                document,
                family,
                store=store,
                pseudonym_key=pseudonym_key,
                now=clock(),
                regional_reserve_oid=regional_reserve_oid,
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
        refused = guard.refusal(request, allowed=allowed, what=name)
        if refused is not None:
            return refused
        now = clock()
        try:
            event = family.parse(
                await read(request), now=now, regional_reserve_oid=regional_reserve_oid
            )
        except BodyError as exc:
            return exc.response
        except InvalidEvent as exc:
            return violations_outcome(exc)
        native = issue("informational", f"valid {name} ({family.schema})", severity="information")
        if fhir_validator is None:
            return combined([native], None)
        bundle = family.to_bundle(event, now=now, regional_reserve_oid=regional_reserve_oid)
        try:
            verdict = await fhir_side(fhir_validator, to_json(bundle).encode())
        except FhirValidatorUnavailable:
            log.warning("reference validator unavailable", extra={"family": name})
            return unavailable()
        return combined([native], verdict)

    router.add_api_route(
        f"/{family.route}",
        post,
        methods=["POST"],
        status_code=202,
        summary=f"Push a {name} event",
        responses=_ERRORS,
        name=f"post_{family.route}",
        dependencies=_SOURCE_KEY,
    )
    router.add_api_route(
        f"/{family.route}/$validate",
        validate,
        methods=["POST"],
        summary=f"Check a {name} document against its contract without storing it",
        response_class=FhirJsonResponse,  # the 200 is an OperationOutcome
        responses={k: v for k, v in _ERRORS.items() if k != 409},
        name=f"validate_{family.route}",
        dependencies=_SOURCE_KEY,
    )


def receipt_router(
    *,
    prefix: str,
    route: str,
    parse: Callable[[Any], Receipt],
    responder: System,
    owner: str,
    sessions: async_sessionmaker[AsyncSession],
    guard: IntakeGuard,
    clock: Callable[[], datetime],
    relay_wake: asyncio.Event | None = None,
) -> APIRouter:
    """``POST <prefix>/<route>``: the journal's receipt (kvittens) of a delivered message;
    only the guard's own system may send it."""
    router = APIRouter(prefix=prefix)

    async def post(request: Request) -> Response:
        refused = guard.refusal(request, allowed=True, what="receipts")
        if refused is not None:
            return refused
        trace = continue_or_start(request.headers.get(TRACEPARENT))
        try:
            receipt = parse(
                await read_json_body(
                    request, max_bytes=guard.max_body_bytes, max_depth=guard.max_depth
                )
            )
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
        dependencies=_SOURCE_KEY,
    )
    return router
