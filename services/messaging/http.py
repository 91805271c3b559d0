"""HTTP edge helpers every service uses: OperationOutcome errors, bearer checks, and reading
a JSON body with a size limit."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError

from services.messaging.db import store_unavailable

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


def operation_outcome(status: int, issues: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=status,
        media_type=FHIR_JSON,
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


class BodyError(Exception):
    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


async def read_json_body(request: Request, *, max_bytes: int) -> Any:
    """The parsed JSON body; raises :class:`BodyError` carrying a 413/415/400 response."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in {"application/json", FHIR_JSON}:
        raise BodyError(
            operation_outcome(
                415, [issue("not-supported", "Content-Type must be application/json")]
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
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
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
