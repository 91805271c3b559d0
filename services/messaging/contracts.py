"""Loading and applying the JSON Schemas in ``contracts/`` (draft 2020-12).

A violation names the JSON path and the rule that failed, never the submitted value: the
value may be patient data and violations are returned to callers and logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


@dataclass(frozen=True, slots=True)
class Violation:
    path: str  # e.g. "patient.personalIdentityNumber"; "" for the document itself
    rule: str  # e.g. "required", "pattern", "format"
    message: str


@cache
def _registry() -> Registry[Any]:
    """Every contract by its ``$id``, so one contract may ``$ref`` another (common parts)."""
    pairs = []
    for path in sorted(CONTRACTS_DIR.rglob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        pairs.append(
            (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        )
    return Registry().with_resources(pairs)


@cache
def validator(relative_path: str) -> Draft202012Validator:
    schema = json.loads((CONTRACTS_DIR / relative_path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())


def violations(relative_path: str, document: Any) -> list[Violation]:
    found = []
    for err in _leaves(validator(relative_path).iter_errors(document)):
        path = ".".join(str(p) for p in err.absolute_path)
        rule = str(err.validator)
        if rule == "required" and isinstance(err.instance, dict):
            for name in list(err.validator_value):  # type: ignore[arg-type]
                if name not in err.instance:
                    where = f"{path}.{name}" if path else str(name)
                    found.append(Violation(where, rule, "missing required field"))
            continue
        if rule == "additionalProperties" and isinstance(err.instance, dict):
            allowed = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
            for name in sorted(k for k in err.instance if k not in allowed):
                where = f"{path}.{name}" if path else str(name)
                found.append(Violation(where, rule, "unknown field"))
            continue
        found.append(Violation(path, rule, _describe(rule, err.validator_value)))
    return sorted(set(found), key=lambda v: (v.path, v.rule))


def _leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The most specific errors: a failed ``oneOf``/``anyOf``/``if`` is explained by its
    sub-errors where they point deeper into the document."""
    for err in errors:
        deeper = [e for e in err.context or [] if len(e.absolute_path) > len(err.absolute_path)]
        if deeper and err.validator in ("oneOf", "anyOf"):
            yield from _leaves(deeper)
        else:
            yield err


def _describe(rule: str, expected: Any) -> str:
    if rule == "oneOf":
        return "must match exactly one of the allowed shapes (e.g. one identifier, not two)"
    if rule == "not":
        return "a field is present that is not allowed here"
    if rule in {
        "type",
        "format",
        "pattern",
        "const",
        "enum",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
    }:
        return f"does not satisfy {rule}: {expected}"
    return f"violates {rule}"
