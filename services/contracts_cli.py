"""``make contracts``: run every contract fixture through its translator, compare it with its
golden output, validate every JSON Schema, and print a table. ``--update`` rewrites goldens.

Fixture layout: ``contracts/fixtures/<source>/<family>/<name>.input.json`` with golden
outputs beside it (``<name>.fhir.json`` for a native → FHIR translator, ``<name>.treserva.json``
for FHIR → Treserva). Translation time is the fixed :data:`FIXTURE_NOW`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from services.messaging.contracts import CONTRACTS_DIR

FIXTURE_NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
FIXTURES = CONTRACTS_DIR / "fixtures"

Translator = Callable[[dict[str, Any]], dict[str, Any]]


def _takecare_admission_to_fhir(doc: dict[str, Any]) -> dict[str, Any]:
    from services.adapter_takecare.admission import parse_admission
    from services.adapter_takecare.translation import to_bundle

    result: dict[str, Any] = json.loads(
        to_bundle(parse_admission(doc), now=FIXTURE_NOW).model_dump_json(exclude_none=True)
    )
    return result


def _fhir_admission_to_treserva(doc: dict[str, Any]) -> dict[str, Any]:
    from fhir.resources.R4B.bundle import Bundle

    from services.adapter_treserva.translation import to_treserva_notice

    bundle = Bundle.model_validate(_takecare_admission_to_fhir(doc))
    return to_treserva_notice(bundle)


# (fixture folder, golden suffix) → translator
TRANSLATORS: dict[tuple[str, str], Translator] = {
    ("takecare/admission-notice", "fhir"): _takecare_admission_to_fhir,
    ("takecare/admission-notice", "treserva"): _fhir_admission_to_treserva,
}


@dataclass(frozen=True)
class Result:
    fixture: str
    golden: str
    status: str  # "ok" | "DIFFERS" | "MISSING" | "ERROR: ..."


def fixture_inputs(folder: str) -> list[Path]:
    return sorted((FIXTURES / folder).glob("*.input.json"))


def golden_path(input_path: Path, suffix: str) -> Path:
    return input_path.with_name(input_path.name.replace(".input.json", f".{suffix}.json"))


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def check_fixtures(*, update: bool = False) -> list[Result]:
    results = []
    for (folder, suffix), translate in TRANSLATORS.items():
        for path in fixture_inputs(folder):
            golden = golden_path(path, suffix)
            name = f"{folder}/{path.name}"
            try:
                actual = render(translate(json.loads(path.read_text(encoding="utf-8"))))
            except Exception as exc:  # reported in the table, not hidden
                results.append(Result(name, golden.name, f"ERROR: {type(exc).__name__}: {exc}"))
                continue
            if update:
                golden.write_text(actual, encoding="utf-8")
            if not golden.exists():
                results.append(Result(name, golden.name, "MISSING"))
            elif golden.read_text(encoding="utf-8") != actual:
                results.append(Result(name, golden.name, "DIFFERS"))
            else:
                results.append(Result(name, golden.name, "ok"))
    return results


def check_schemas() -> list[Result]:
    results = []
    for path in sorted(CONTRACTS_DIR.rglob("*.schema.json")):
        try:
            Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
            status = "ok"
        except Exception as exc:
            status = f"ERROR: {type(exc).__name__}"
        results.append(Result(str(path.relative_to(CONTRACTS_DIR)), "(schema)", status))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--update", action="store_true", help="rewrite golden outputs")
    args = parser.parse_args(argv)
    rows = check_schemas() + check_fixtures(update=args.update)
    width = max(len(r.fixture) for r in rows)
    print(f"{'contract / fixture':<{width}}  {'golden':<48}  result")
    for r in rows:
        print(f"{r.fixture:<{width}}  {r.golden:<48}  {r.status}")
    failed = [r for r in rows if r.status != "ok"]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
