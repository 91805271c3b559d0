"""Loading and applying the JSON Schemas in ``contracts/`` (draft 2020-12).

A violation names the JSON path and the rule that failed, never the submitted value: the
value may be patient data and violations are returned to callers and logged. For the same
reason a key the caller chose appears in a path only if it looks like a field name.

Nearly every document is valid, so :func:`violations` first asks a compiled validator
(jsonschema-rs, :mod:`services.messaging.contract_verdict`) for a verdict only, about a
hundred times faster, and runs jsonschema, which names each violation, only when that
verdict is "invalid".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from services.messaging.contract_verdict import NotPortable, verdict_registry, verdict_validator

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

log = logging.getLogger(__name__)
_FIELD_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,63}")


@dataclass(frozen=True, slots=True)
class Violation:
    path: str  # e.g. "patient.personalIdentityNumber"; "" for the document itself
    rule: str  # e.g. "required", "pattern", "format"
    message: str


@cache
def _contracts() -> tuple[dict[str, Any], ...]:
    return tuple(
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(CONTRACTS_DIR.rglob("*.schema.json"))
    )


@cache
def _registry() -> Registry[Any]:
    """Every contract by its ``$id``, so one contract may ``$ref`` another (common parts)."""
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        for schema in _contracts()
    )


def _schema(relative_path: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CONTRACTS_DIR / relative_path).read_text(encoding="utf-8"))
    return schema


@cache
def validator(relative_path: str) -> Draft202012Validator:
    schema = _schema(relative_path)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())


@cache
def _verdict_registry() -> jsonschema_rs.Registry:
    return verdict_registry(_contracts())


@cache
def quick_validator(relative_path: str) -> jsonschema_rs.Validator | None:
    """The compiled valid-or-not check of a contract, or None where a contract's pattern
    might be read differently by it or it cannot compile the contract (then jsonschema alone
    decides; tests/unit/test_contract_verdict.py fails)."""
    validator(relative_path)  # a contract that is not valid draft 2020-12 fails here, as before
    try:
        return verdict_validator(_schema(relative_path), _verdict_registry())
    except (NotPortable, jsonschema_rs.ValidationError) as exc:
        log.warning(
            "contract checked by jsonschema alone",
            extra={"contract": relative_path, "reason": type(exc).__name__},
        )
        return None


def _surely_valid(relative_path: str, document: Any) -> bool:
    """True only if the document is valid; False may also mean "ask jsonschema"."""
    check = quick_validator(relative_path)
    if check is None:
        return False
    try:
        return check.is_valid(document)
    except ValueError:  # not a JSON value (bytes, a set, a lone surrogate): jsonschema decides
        return False


def warm_up() -> int:
    """Build every contract's validators now, at a service's start, instead of on the first
    event: the compiled verdict's first build scans every Unicode character for its
    whitespace classes (about 0.1 s, more on a loaded machine), which the first admission
    notice after a start paid at intake and its receipt again (on Apache Kafka in CI that
    first notice outran its 3 s confirmation deadline and was sent twice). Returns how many
    contracts."""
    paths = sorted(
        str(path.relative_to(CONTRACTS_DIR)) for path in CONTRACTS_DIR.rglob("*.schema.json")
    )
    for relative in paths:
        validator(relative)
        quick_validator(relative)
    return len(paths)


def violations(relative_path: str, document: Any) -> list[Violation]:
    if _surely_valid(relative_path, document):
        return []
    found = []
    for err in _leaves(validator(relative_path).iter_errors(document)):
        path = ".".join(str(p) if isinstance(p, int) else _key(p) for p in err.absolute_path)
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
                where = f"{path}.{_key(name)}" if path else _key(name)
                found.append(Violation(where, rule, "unknown field"))
            continue
        found.append(Violation(path, rule, _describe(rule, err.validator_value)))
    return sorted(set(found), key=lambda v: (v.path, v.rule))


def _key(name: str) -> str:
    """An unknown key as a violation (and the log) names it: the caller chose it, and it may
    be anything, a personnummer too, so only a plain field name is repeated."""
    return name if _FIELD_NAME.fullmatch(name) else "*"


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
