"""Every JSON answer of the ops API (``/api/v1``) has a typed schema in the router's OpenAPI
document: a response model with its fields, never a bare ``additionalProperties`` object
(what FastAPI writes for a ``dict[str, Any]`` return type) and never no schema at all (a
``Response`` returned without a declared model).

Inside a response, an object must name its fields or be a map with typed values (counts by
state); the only free-form parts are listed in ``FREE_FORM`` with the reason. Answers that
are not JSON (CSV, SVG, JSON Lines) are not checked here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.db import make_engine, session_factory
from services.router.ops.delivery_schemas import DeliveryStateCountsOut
from services.router.ops.deviation_api import DeviationOut
from services.router.routing.domain import DeliveryState
from tests.support.fuzz_apps import build_router

PREFIX = "/api/v1/"

# Where a response may hold an object that names no fields, and why. "Model.field[]" is an
# element of that field's array.
FREE_FORM = {
    "FhirMessageOut.entry[]": "FHIR resources of the stored message Bundle: each family's "
    "profile (contracts/) says what they hold, and the payload is returned as accepted",
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    # The OpenAPI does not depend on the database: the engine never connects.
    app = build_router(session_factory(make_engine("sqlite+aiosqlite://")))
    return app.openapi()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def json_responses(spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """("GET /api/v1/x 200", its schema or None) for every 2xx JSON answer under /api/v1."""
    for path, operations in spec["paths"].items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                where = f"{method.upper()} {path} {status}"
                content = response.get("content")
                if content is None:
                    if status != "204":
                        yield where, None  # a 2xx that says nothing about its body
                    continue
                for media_type, body in content.items():
                    if _is_json(media_type):
                        yield where, body.get("schema")


def _resolve(spec: dict[str, Any], schema: Any) -> tuple[str | None, Any]:
    """The component a ``$ref`` names (and its schema), or (None, the schema itself)."""
    if isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return name, spec["components"]["schemas"][name]
    return None, schema


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" or "additionalProperties" in schema


def _names_fields(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(schema.get("properties"))


def untyped_objects(spec: dict[str, Any], schema: Any, where: str) -> Iterator[str]:
    """Where inside ``schema`` an object names no fields and is no map of typed values."""
    seen: set[str] = set()

    def walk(node: Any, at: str) -> Iterator[str]:
        name, node = _resolve(spec, node)
        if name is not None:
            if name in seen:
                return
            seen.add(name)
            at = name
        if not isinstance(node, dict):
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, []):
                yield from walk(option, at)
        for field, sub in node.get("properties", {}).items():
            yield from walk(sub, f"{at}.{field}")
        if "items" in node:
            yield from walk(node["items"], f"{at}[]")
        values = node.get("additionalProperties")
        typed_map = isinstance(values, dict) and bool(values)
        if _is_object(node) and not node.get("properties") and not typed_map:
            yield at
            return
        if isinstance(values, dict):
            yield from walk(values, f"{at}{{}}")

    yield from walk(schema, where)


def test_every_json_answer_of_the_ops_api_is_a_model_with_fields(openapi):
    found = list(json_responses(openapi))
    assert len(found) > 20, "the ops API's operations were not found"
    untyped = []
    for where, schema in found:
        _, resolved = _resolve(openapi, schema)
        if not _names_fields(resolved):
            untyped.append(f"{where}: {json.dumps(schema)}")
    assert not untyped, "JSON answers without a typed schema:\n" + "\n".join(untyped)


def test_inside_an_answer_only_the_listed_parts_are_free_form(openapi):
    places = {
        place
        for where, schema in json_responses(openapi)
        if schema is not None
        for place in untyped_objects(openapi, schema, where)
    }
    unlisted = sorted(places - set(FREE_FORM))
    assert not unlisted, "objects with no fields and no typed values:\n" + "\n".join(unlisted)
    assert set(FREE_FORM) <= places, f"no longer free-form: {sorted(set(FREE_FORM) - places)}"


def test_the_walk_finds_a_bare_object_and_an_empty_schema():
    spec: dict[str, Any] = {
        "components": {"schemas": {"Page": {"properties": {"items": {"type": "array"}}}}},
        "paths": {
            "/api/v1/bare": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "additionalProperties": True}
                                }
                            }
                        }
                    }
                }
            },
            "/api/v1/raw": {
                "get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}
            },
            "/api/v1/csv": {
                "get": {"responses": {"200": {"content": {"text/csv": {}}}}},
            },
            "/api/v1/page": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Page"}
                                }
                            }
                        }
                    }
                }
            },
        },
    }
    found = dict(json_responses(spec))
    assert set(found) == {"GET /api/v1/bare 200", "GET /api/v1/raw 200", "GET /api/v1/page 200"}
    assert not _names_fields(_resolve(spec, found["GET /api/v1/bare 200"])[1])
    assert not _names_fields(_resolve(spec, found["GET /api/v1/raw 200"])[1])
    assert _names_fields(_resolve(spec, found["GET /api/v1/page 200"])[1])
    untyped_items = {"type": "array", "items": {"type": "object"}}
    assert list(untyped_objects(spec, untyped_items, "here")) == ["here[]"]
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert list(untyped_objects(spec, counts, "here")) == []


def test_the_state_counts_name_every_delivery_state():
    assert set(DeliveryStateCountsOut.model_fields) == {s.value for s in DeliveryState}


def test_the_deviation_model_has_the_export_contracts_fields():
    contract = json.loads(
        (CONTRACTS_DIR / "deviations" / "deviation.schema.json").read_text(encoding="utf-8")
    )
    deviation = contract["$defs"]["deviation"]
    assert list(DeviationOut.model_fields) == list(deviation["properties"])
    required = {n for n, f in DeviationOut.model_fields.items() if f.is_required()}
    assert required == set(deviation["required"])
