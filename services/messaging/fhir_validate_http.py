"""The FHIR side of ``$validate``: what the reference validator (tools/fhir-validator, see
:mod:`services.messaging.fhir_validator`) says of a FHIR message, as an OperationOutcome.

``POST /fhir/Bundle/$validate``
    For vendors that send or receive FHIR messages directly: a FHIR message Bundle in, the
    validator's verdict out, exactly as it gave it: 200 when it found no error, else 422.
    Authenticated like the intake (the adapter's own system's key).

The native ``$validate`` endpoints (:mod:`services.messaging.intake_http`) ask the same
validator about the message their document translates to, through :func:`fhir_side`.

Not configured (no ``fhir_validator_url``): the FHIR endpoint answers 503 and a native
``$validate`` says in an informational issue that the FHIR side was not checked.
Configured but unreachable: 503 "reference validator unavailable", never a false "valid".
Our own diagnostics are fixed texts; only the validator's issues say more.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from services.messaging.fhir_validator import (
    FhirValidator,
    FhirValidatorUnavailable,
    FhirVerdict,
    outcome_issues,
)
from services.messaging.http import (
    BodyError,
    FhirJsonResponse,
    issue,
    operation_outcome,
    read_json_body,
)

if TYPE_CHECKING:
    from services.messaging.intake_http import IntakeGuard

log = logging.getLogger(__name__)

PATH = "/fhir/Bundle/$validate"
UNAVAILABLE = "reference validator unavailable: the FHIR side was not judged; try again"
NOT_CONFIGURED = "no reference FHIR validator is configured on this adapter"
NOT_CHECKED = "the FHIR side was not checked: no reference FHIR validator is configured"


def unavailable() -> JSONResponse:
    response = operation_outcome(503, [issue("transient", UNAVAILABLE)])
    response.headers["Retry-After"] = "5"
    return response


async def fhir_side(validator: FhirValidator | None, bundle: bytes) -> FhirVerdict | None:
    """The validator's verdict on ``bundle``; None when no validator is configured. Raises
    FhirValidatorUnavailable when one is configured but gives no verdict."""
    if validator is None:
        return None
    verdict = await validator.validate(bundle)
    log.info(
        "FHIR side validated",
        extra={"errors": len(verdict.errors), "warnings": len(verdict.warnings)},
    )
    return verdict


def combined(native: list[dict[str, Any]], verdict: FhirVerdict | None) -> JSONResponse:
    """The native checks' issues and the validator's: 422 if any is an error, else 200."""
    issues = list(native)
    if verdict is None:
        issues.append(issue("informational", NOT_CHECKED, severity="information"))
    else:
        issues += outcome_issues(verdict)
    failed = any(i["severity"] in ("fatal", "error") for i in issues)
    return operation_outcome(422 if failed else 200, issues)


def fhir_validate_router(guard: IntakeGuard, validator: FhirValidator | None) -> APIRouter:
    """``guard``: the adapter's intake guard (its own system's key, rate and body limits)."""
    router = APIRouter()

    async def validate(request: Request) -> Response:
        refused = guard.refusal(request, allowed=True, what="FHIR validation")
        if refused is not None:
            return refused
        try:
            document = await read_json_body(
                request, max_bytes=guard.max_body_bytes, max_depth=guard.max_depth
            )
        except BodyError as exc:
            return exc.response
        if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
            return operation_outcome(
                422, [issue("structure", "not a FHIR Bundle", expression="resourceType")]
            )
        if validator is None:
            return operation_outcome(503, [issue("not-supported", NOT_CONFIGURED)])
        try:
            verdict = await validator.validate(document)
        except FhirValidatorUnavailable:
            log.warning("reference validator unavailable")
            return unavailable()
        return FhirJsonResponse(verdict.outcome, status_code=200 if verdict.valid else 422)

    router.add_api_route(
        PATH,
        validate,
        methods=["POST"],
        summary="Check a FHIR message Bundle with the reference FHIR validator",
        response_class=FhirJsonResponse,
        responses={
            401: {"description": "missing or unknown bearer key"},
            403: {"description": "another system's key"},
            413: {"description": "body too large"},
            415: {"description": "Content-Type is not JSON"},
            422: {"description": "the validator found errors (or the body is not a Bundle)"},
            429: {"description": "too many requests from this client"},
            503: {"description": "no reference validator configured, or it is unavailable"},
        },
        name="validate_fhir_bundle",
        dependencies=_source_key(),
    )
    return router


def _source_key() -> list[Any]:
    # Only documents the scheme in the OpenAPI (as the intake's); the guard does the checking.
    return [
        Depends(
            HTTPBearer(
                auto_error=False,
                scheme_name="sourceSystemKey",
                description="the source system's own key (SHA-256 hash held by the broker)",
            )
        )
    ]
