"""HTTP edge helpers every service uses: OperationOutcome errors, bearer checks, and reading
a JSON body within limits (content type, size, nesting depth)."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError

from services.messaging.db import store_unavailable
from services.messaging.input_limits import json_depth_exceeds

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
JSON_MEDIA_TYPES = frozenset({"application/json", FHIR_JSON})
MAX_JSON_DEPTH = 32  # the contract fixtures nest 12 at most (a FHIR Bundle)


class FhirJsonResponse(JSONResponse):
    """A FHIR resource as JSON; as a route's ``response_class`` the OpenAPI says so too."""

    media_type = FHIR_JSON


def operation_outcome(status: int, issues: list[dict[str, Any]]) -> JSONResponse:
    return FhirJsonResponse(
        {"resourceType": "OperationOutcome", "issue": issues}, status_code=status
    )


def issue(
    code: str, diagnostics: str, *, expression: str | None = None, severity: str = "error"
) -> dict[str, Any]:
    found: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        found["expression"] = [expression]
    return found


def bearer_ok(request: Request, expected: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


def unauthorized() -> JSONResponse:
    """401 for a missing or unknown key, with the challenge RFC 6750 asks for."""
    response = operation_outcome(401, [issue("login", "missing or wrong bearer token")])
    response.headers["WWW-Authenticate"] = 'Bearer realm="carebridge"'
    return response


def forbidden(diagnostics: str) -> JSONResponse:
    return operation_outcome(403, [issue("forbidden", diagnostics)])


def too_many_requests(retry_after_s: int) -> JSONResponse:
    response = operation_outcome(
        429, [issue("throttled", f"too many requests; try again in {retry_after_s} s")]
    )
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


class BodyError(Exception):
    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


async def read_json_body(
    request: Request, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """The parsed JSON body; raises :class:`BodyError` carrying a 415/413/400 response.

    Checked in this order, each before any parsing: the media type, the declared and the
    actual size, the nesting depth (on the raw bytes), then ``json.loads``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise BodyError(
            operation_outcome(
                415,
                [
                    issue(
                        "not-supported",
                        "Content-Type must be application/json or application/fhir+json",
                    )
                ],
            )
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyError(_too_large(max_bytes))
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise BodyError(_too_large(max_bytes))
    if json_depth_exceeds(bytes(body), max_depth):
        raise BodyError(
            operation_outcome(
                400, [issue("too-costly", f"JSON nests deeper than {max_depth} levels")]
            )
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BodyError(
            operation_outcome(400, [issue("structure", "body is not valid JSON")])
        ) from None


def _too_large(max_bytes: int) -> JSONResponse:
    return operation_outcome(413, [issue("too-long", f"body exceeds {max_bytes} bytes")])


def answer_store_outages(app: FastAPI) -> None:
    """While the database is unreachable, answer 503 with Retry-After: intake refuses so the
    source keeps the event and sends it again (nothing is half-accepted), and the ops API
    says it is temporarily unavailable rather than failing."""

    async def store_error(_request: Request, exc: Exception) -> Response:
        if store_unavailable(exc):
            log.warning(
                "request refused: database unavailable", extra={"error": type(exc).__name__}
            )
            response = operation_outcome(
                503, [issue("transient", "the broker's store is unavailable; send again")]
            )
            response.headers["Retry-After"] = "1"
            return response
        log.error("database error", exc_info=exc)
        return operation_outcome(500, [issue("exception", "internal error")])

    app.add_exception_handler(DBAPIError, store_error)
    app.add_exception_handler(OSError, store_error)  # a refused connection, not wrapped
