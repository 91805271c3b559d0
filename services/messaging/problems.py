"""Every refusal an app answers, in one shape per app, naming the field and the rule that
failed and never the value that was refused.

Two shapes, one per audience:

- an **OperationOutcome** (``application/fhir+json``) from an adapter, whose callers are
  journal systems speaking FHIR (the intake's own refusals are OperationOutcomes already,
  :mod:`services.messaging.http`);
- **problem details** (RFC 9457, ``application/problem+json``) from the router: its JSON
  API, ``/metrics`` and the API description. The console renders a page for people instead
  (``page`` of :func:`install_error_handlers`), with the same field names and no values.

Why FastAPI's defaults are replaced: its 422 lists each error with the ``input`` it refused
(the personnummer of a search) and ``ctx``, and its 404/405 come as bare JSON. Here a field
is named by where it was (``query.personnummer``, ``body.criteria.events[0]``; a part of that
path that the caller chose, such as a key of a free-form object, is shown as ``*``), the rule
by pydantic's error type (``string_too_long``), and the text is pydantic's, templated from
the schema (limits, allowed values), with the refused value cut out should it appear. A
validator's own message (``value_error``) must not repeat the value it refuses either: the
value is cut out of it too, and the tests walk every route of every app with a personnummer
in every parameter to hold all of this.

An ``HTTPException`` raised by a route keeps its status, its text and its headers
(``WWW-Authenticate``, ``Retry-After``); the texts name what was not found or not allowed,
never the value asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core.core_schema import ErrorType
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.messaging.http import FHIR_JSON, FhirJsonResponse

PROBLEM_JSON = "application/problem+json"

# pydantic's own error types: their text is templated from the schema, never from the input,
# except the tag of a tagged union, which is the caller's
_PYDANTIC_TYPES = frozenset(get_args(ErrorType)) - {"union_tag_invalid"}
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,63}")
_SHORTEST_CUT = 4  # a shorter value is not worth garbling a message for (no identifier is)
_FHIR_CODES = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}


@dataclass(frozen=True)
class FieldError:
    """One failed rule: where (``field``), which rule (``rule``), and what it asks for."""

    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "criteria", "events", 0)`` → ``body.criteria.events[0]``; a part that is
    not a name (a key the caller chose: a personnummer, say) becomes ``*``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = part if _NAME.fullmatch(part) else "*"
            path += f".{name}" if path else name
    return path or "$"


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """pydantic's errors without their ``input`` and ``ctx``."""
    found = []
    for error in errors:
        rule = str(error.get("type", "invalid"))
        message = str(error.get("msg", "")) if rule in _PYDANTIC_TYPES else ""
        message = _cut(message, error.get("input")) or "the value is not allowed here"
        found.append(FieldError(field_path(error.get("loc", ())), rule, message))
    return found


def _cut(message: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return message
    text = str(value).strip()
    if len(text) < _SHORTEST_CUT or text not in message:
        return message
    return message.replace(text, "…")


class ProblemJsonResponse(JSONResponse):
    media_type = PROBLEM_JSON


Render = Callable[[int, str, Sequence[FieldError], Mapping[str, str] | None], Response]


@dataclass(frozen=True)
class ErrorShape:
    """How one app answers a refusal, and how its OpenAPI describes that answer."""

    media_type: str
    schema_name: str
    schema: dict[str, Any]
    render: Render

    def __call__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return self.render(status, detail, errors, headers)


def _problem(
    status: int, detail: str, errors: Sequence[FieldError], headers: Mapping[str, str] | None
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    return ProblemJsonResponse(body, status_code=status, headers=dict(headers or {}))


def _outcome(
    status: int, detail: str, errors: Sequence[FieldError], headers: Mapping[str, str] | None
) -> Response:
    code = _FHIR_CODES.get(status, "processing" if status < 500 else "exception")
    issues: list[dict[str, Any]] = [
        {
            "severity": "error",
            "code": code,
            "diagnostics": f"{e.rule}: {e.message}",
            "expression": [e.field],
        }
        for e in errors
    ] or [{"severity": "error", "code": code, "diagnostics": detail}]
    return FhirJsonResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=status,
        headers=dict(headers or {}),
    )


_TEXT: dict[str, Any] = {"type": "string"}

PROBLEM_DETAILS = ErrorShape(
    PROBLEM_JSON,
    "Problem",
    {
        "type": "object",
        "description": "RFC 9457 problem details; errors names each failed rule",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": _TEXT,
            "title": _TEXT,
            "status": {"type": "integer"},
            "detail": _TEXT,
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "rule", "message"],
                    "properties": {"field": _TEXT, "rule": _TEXT, "message": _TEXT},
                },
            },
        },
    },
    _problem,
)
"""RFC 9457: ``type``, ``title``, ``status``, ``detail``, and ``errors`` (an extension
member) with one ``{field, rule, message}`` per failed rule."""

OPERATION_OUTCOME = ErrorShape(
    FHIR_JSON,
    "OperationOutcome",
    {
        "type": "object",
        "description": "FHIR R4 OperationOutcome; an issue's expression names the field",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": _TEXT,
                        "code": _TEXT,
                        "diagnostics": _TEXT,
                        "expression": {"type": "array", "items": _TEXT},
                    },
                },
            },
        },
    },
    _outcome,
)
"""A FHIR OperationOutcome: one issue per failed rule, its ``expression`` the field."""


ErrorPage = Callable[[Request, int, str, Sequence[FieldError]], Response | None]
"""A page for people instead of ``shape`` (the console's), or None where it does not apply."""


def install_error_handlers(
    app: FastAPI, shape: ErrorShape, *, page: ErrorPage | None = None
) -> None:
    """Answer every ``HTTPException`` (a route's, and Starlette's 404 and 405) and every
    request that fails its parameters' or body's validation in ``shape``, and say so in the
    app's OpenAPI: every 4xx an operation documents has ``shape``'s media type and schema
    (FastAPI's ``HTTPValidationError`` is gone)."""

    def answer(
        request: Request,
        status: int,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        if page is not None:
            shown = page(request, status, detail, errors)
            if shown is not None:
                return shown
        return shape(status, detail, errors, headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (204, 304):  # no body allowed
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        return answer(request, exc.status_code, detail, headers=exc.headers)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        return answer(request, 422, f"invalid request: {fields}", errors)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe_refusals(build(), shape)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def describe_refusals(spec: dict[str, Any], shape: ErrorShape) -> None:
    """Every documented 4xx answer of ``spec`` in ``shape``, changed in place."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas[shape.schema_name] = shape.schema
    content = {shape.media_type: {"schema": {"$ref": f"#/components/schemas/{shape.schema_name}"}}}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if str(status).startswith("4"):
                    response["content"] = content


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
