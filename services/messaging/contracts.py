"""Loading and applying the JSON Schemas in ``contracts/`` (draft 2020-12).

A violation names the JSON path and the rule that failed, never the submitted value: the
value may be patient data and violations are returned to callers and logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


@dataclass(frozen=True, slots=True)
class Violation:
    path: str  # e.g. "patient.personalIdentityNumber"; "" for the document itself
    rule: str  # e.g. "required", "pattern", "format"
    message: str


@cache
def validator(relative_path: str) -> Draft202012Validator:
    schema = json.loads((CONTRACTS_DIR / relative_path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def violations(relative_path: str, document: Any) -> list[Violation]:
    found = []
    for err in sorted(validator(relative_path).iter_errors(document), key=lambda e: e.path):
        path = ".".join(str(p) for p in err.absolute_path)
        found.append(
            Violation(
                path=path,
                rule=str(err.validator),
                message=_describe(str(err.validator), err.validator_value),
            )
        )
    return found


def _describe(rule: str, expected: Any) -> str:
    if rule == "required":
        return f"missing required field(s): {', '.join(expected)}"
    if rule == "additionalProperties":
        return "unknown field(s) present"
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
