"""Every route of an app as a target to attack: its method and path, and the query
parameters and body fields its OpenAPI operation documents (or else its endpoint's
parameters). The security tests send hostile values to each (tests/security)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from inspect import signature
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import Mount

_NOT_FIELDS = {"request", "operator", "caller", "return"}  # what FastAPI injects


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    query: tuple[str, ...]  # parameter names the route reads
    body: tuple[str, ...]  # field names of its JSON body or form
    form: bool  # the console's forms; else a JSON body


def targets(app: FastAPI) -> Iterator[Target]:
    """Every route and method of ``app`` (and one method each route does not take), with
    the names its OpenAPI operation documents, or else its endpoint's parameters."""
    spec = app.openapi()
    for route in iter_route_contexts(app.routes):
        path = str(route.path)
        if isinstance(route.original_route, Mount):
            yield Target("GET", f"{path}/{{file}}", (), (), False)
            continue
        methods = set(route.methods or {"GET"}) - {"HEAD"}
        for method in sorted(methods | {"PUT" if "PUT" not in methods else "PATCH"}):
            operation = spec["paths"].get(path, {}).get(method.lower())
            if operation is not None:
                query = tuple(p["name"] for p in operation.get("parameters", []))
                yield Target(method, path, query, _body_fields(spec, operation), False)
            else:
                names = _endpoint_parameters(route)
                yield Target(method, path, names, names, path.startswith("/console"))


def _body_fields(spec: dict[str, Any], operation: dict[str, Any]) -> tuple[str, ...]:
    content: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
    first: dict[str, Any] = next(iter(content.values()), {})
    schema: dict[str, Any] = first.get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return tuple(schema.get("properties", {}))


def _endpoint_parameters(route: RouteContext) -> tuple[str, ...]:
    if not isinstance(route.original_route, APIRoute) or route.endpoint is None:
        return ()
    return tuple(n for n in signature(route.endpoint).parameters if n not in _NOT_FIELDS)


def url(path: str, value: str) -> str:
    """``path`` with every path parameter set to ``value`` (percent-encoded)."""
    return re.sub(r"\{[^}]+\}", quote(value, safe=""), path)
