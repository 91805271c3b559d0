"""HTTP edge helpers every service uses: OperationOutcome errors, bearer checks, and reading
a JSON body with a size limit."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

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
