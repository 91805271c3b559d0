"""Contract tooling (``make contracts``).

``python -m sandbox.contracts_cli`` (check)
    Validates every JSON Schema, runs every fixture through its translators and compares the
    result with its golden file, checks each produced native document against the receiver's
    contract and each FHIR message against the R4B models, compares the checked-in OpenAPI
    documents with the apps, and prints a table. Exit 1 if anything differs.
    It also compares the FHIR conformance resources in ``contracts/fhir/`` (profiles,
    extensions, CodeSystems, ValueSets, NamingSystems, MessageDefinitions,
    CapabilityStatements) with what :mod:`sandbox.conformance` generates, and checks that the
    implementation guide under ``docs/guide/`` is up to date (:mod:`sandbox.guide`).
``python -m sandbox.contracts_cli --update``
    Rewrites the golden files, OpenAPI documents, conformance resources and the guide from
    the code (review the diff!).
``python -m sandbox.contracts_cli validate <contract> <file>``
    Checks one document a vendor developer hands in, e.g. ``validate takecare/medication-list
    my.json``, and names every failing field and rule. ``validate --list`` lists contracts.
    A native document that passes is translated to its FHIR message, and that goes through
    the reference FHIR validator (tools/fhir-validator in batch mode); ``--native-only``
    skips it. A FHIR Bundle (``"resourceType": "Bundle"``, contract ``fhir`` or any) goes
    through the validator alone. Its verdict is printed as an OperationOutcome (JSON on
    stdout), the same an adapter's ``POST /fhir/Bundle/$validate`` answers. Exit 1 on any
    error.

Fixture layout: ``contracts/fixtures/<source>/<family>/<name>.input.json`` is a native
document of the source system. Beside it, ``<name>.fhir.json`` is the FHIR message the
source adapter makes of it and ``<name>.<destination>.json`` the native document each
destination adapter makes of that message. Receipts (``<system>/receipt``) have only the
``.fhir.json`` response message. Translation time is the fixed :data:`FIXTURE_NOW`, and
regional reserve numbers belong to the sandbox's example region
(:data:`FIXTURE_REGIONAL_RESERVE_OID`). A fixture named ``refused-<name>.input.json`` is a
document the adapter must refuse: its golden ``.refused.json`` lists the violations (path,
rule, message) the 422 names, and it fails the check if the adapter accepts it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from jsonschema import Draft202012Validator

from sandbox import conformance, fhir_negative
from sandbox.guide import GuideError, build
from sandbox.guide.links import check_site
from sandbox.guide.load import GUIDE_DIR, read_inputs
from sandbox.guide.publish import stale_files, write_site
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.families import receipt as takecare_receipt
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.families import receipt as treserva_receipt
from services.messaging.contracts import CONTRACTS_DIR, violations
from services.messaging.envelope import System, to_json
from services.messaging.families import FAMILIES
from services.messaging.identifiers import EXAMPLE_REGIONAL_RESERVE_OID
from services.messaging.native import FHIR_MESSAGE, InboundFamily, InvalidEvent, OutboundFamily
from services.messaging.receipts import Receipt, to_response

FIXTURE_NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
FIXTURE_REGIONAL_RESERVE_OID = EXAMPLE_REGIONAL_RESERVE_OID
REFUSED_PREFIX = "refused-"
FIXTURES = CONTRACTS_DIR / "fixtures"
OPENAPI = CONTRACTS_DIR / "openapi"

INBOUND: dict[System, tuple[InboundFamily[Any], ...]] = {
    System.TAKECARE: takecare_families.INBOUND,
    System.TRESERVA: treserva_families.INBOUND,
}
RECEIPTS: dict[System, tuple[str, Callable[[Any], Receipt]]] = {
    System.TAKECARE: (takecare_receipt.SCHEMA, takecare_receipt.parse_receipt),
    System.TRESERVA: (treserva_receipt.SCHEMA, treserva_receipt.parse_receipt),
}


@dataclass(frozen=True)
class Result:
    subject: str
    check: str
    status: str  # "ok" | "DIFFERS" | "MISSING" | "ERROR: ..."


def render(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def fhir_json(bundle: Bundle) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(to_json(bundle))
    return doc


def inbound_family(source: System, name: str) -> InboundFamily[Any] | None:
    return next((f for f in INBOUND[source] if f.family == name), None)


def outbound_family(destination: System, event_code: str) -> OutboundFamily | None:
    return next((f for f in _outbound()[destination] if event_code in f.events), None)


def _outbound() -> dict[System, tuple[OutboundFamily, ...]]:
    from services.adapter_takecare.primary_care import FHIR_MESSAGES

    return {
        System.TAKECARE: takecare_families.OUTBOUND,
        System.TRESERVA: treserva_families.OUTBOUND,
        System.PRIMARY_CARE: (FHIR_MESSAGES,),
    }


def refusal(source: System, family: str, document: Any) -> dict[str, Any]:
    """The ``.refused.json`` golden of a fixture the adapter must refuse; ValueError if the
    adapter accepts it."""
    inbound = inbound_family(source, family)
    if inbound is None:
        raise LookupError(f"no inbound family {family!r} for {source.value}")
    try:
        inbound.parse(document, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    except InvalidEvent as exc:
        return {
            "refused": [
                {"path": v.path or "$", "rule": v.rule, "message": v.message}
                for v in exc.violations
            ]
        }
    raise ValueError("a refused- fixture was accepted")


def translate_fixture(source: System, family: str, document: Any) -> dict[str, dict[str, Any]]:
    """golden suffix → expected document, for one fixture input."""
    if family == "receipt":
        _, parse = RECEIPTS[source]
        return {"fhir": fhir_json(to_response(parse(document), responder=source, now=FIXTURE_NOW))}
    inbound = inbound_family(source, family)
    if inbound is None:
        raise LookupError(f"no inbound family {family!r} for {source.value}")
    region = FIXTURE_REGIONAL_RESERVE_OID
    event = inbound.parse(document, now=FIXTURE_NOW, regional_reserve_oid=region)
    bundle = fhir_json(inbound.to_bundle(event, now=FIXTURE_NOW, regional_reserve_oid=region))
    Bundle.model_validate(bundle)  # the wire form parses with the R4B models again
    outputs = {"fhir": bundle}
    catalogue = next(f for f in FAMILIES if f.name == family)
    for destination in catalogue.destinations(source):
        outbound = outbound_family(destination, event.event_code().value)
        if outbound is None:
            raise LookupError(f"{destination.value} has no outbound {event.event_code().value}")
        if outbound.schema == FHIR_MESSAGE:
            continue  # the FHIR message as it is (primary care): the .fhir.json golden
        native = outbound.to_native(bundle)
        broken = violations(outbound.schema, native)
        if broken:
            raise ValueError(
                f"{destination.value} document breaks {outbound.schema}: "
                + "; ".join(f"{v.path or '$'} {v.rule}" for v in broken[:5])
            )
        outputs[destination.value] = native
    return outputs


def fixture_inputs() -> Iterator[tuple[System, str, Path]]:
    for path in sorted(FIXTURES.glob("*/*/*.input.json")):
        yield System(path.parent.parent.name), path.parent.name, path


def fixtures_of(source: System, family: str) -> list[Path]:
    """The fixtures a family translates (the refused ones apart: see :func:`refused_of`)."""
    return [
        p
        for p in sorted((FIXTURES / source.value / family).glob("*.input.json"))
        if not p.name.startswith(REFUSED_PREFIX)
    ]


def refused_of(source: System, family: str) -> list[Path]:
    """The fixtures of documents a family must refuse (golden ``.refused.json``)."""
    return sorted((FIXTURES / source.value / family).glob(f"{REFUSED_PREFIX}*.input.json"))


def golden_path(input_path: Path, suffix: str) -> Path:
    return input_path.with_name(input_path.name.replace(".input.json", f".{suffix}.json"))


def check_fixtures(*, update: bool = False) -> list[Result]:
    results = []
    for source, family, path in fixture_inputs():
        name = str(path.relative_to(FIXTURES))
        document = json.loads(path.read_text("utf-8"))
        try:
            if path.name.startswith(REFUSED_PREFIX):
                outputs = {"refused": refusal(source, family, document)}
            else:
                outputs = translate_fixture(source, family, document)
        except (InvalidEvent, LookupError, ValueError) as exc:
            detail = exc.violations if isinstance(exc, InvalidEvent) else exc
            results.append(Result(name, "translate", f"ERROR: {type(exc).__name__}: {detail}"))
            continue
        for suffix, doc in outputs.items():
            golden = golden_path(path, suffix)
            actual = render(doc)
            if update:
                golden.write_text(actual, encoding="utf-8")
            if not golden.exists():
                status = "MISSING"
            elif golden.read_text(encoding="utf-8") != actual:
                status = "DIFFERS"
            else:
                status = "ok"
            results.append(Result(name, golden.name, status))
    return results


def check_schemas() -> list[Result]:
    results = []
    for path in sorted(CONTRACTS_DIR.rglob("*.schema.json")):
        try:
            Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
            status = "ok"
        except Exception as exc:  # reported in the table, not hidden
            status = f"ERROR: {type(exc).__name__}"
        results.append(Result(str(path.relative_to(CONTRACTS_DIR)), "schema", status))
    return results


def apps() -> dict[str, FastAPI]:
    """Each service's app, built with fakes: only its OpenAPI document is read."""
    from services.adapter_takecare.app import create_app as takecare_app
    from services.adapter_takecare.settings import AdapterTakeCareSettings
    from services.adapter_treserva.app import create_app as treserva_app
    from services.adapter_treserva.settings import AdapterTreservaSettings
    from services.messaging.db import make_engine, session_factory
    from services.messaging.intake import FakeIntakeStore
    from services.router.ops.app import create_app as router_app
    from services.router.settings import RouterSettings

    sessions = session_factory(make_engine("sqlite+aiosqlite://"))
    # the apps' OpenAPI documents, served in-process: the sandbox's settings, said explicitly
    return {
        "adapter_takecare": takecare_app(
            AdapterTakeCareSettings(environment="sandbox"),
            store=FakeIntakeStore(),
            sessions=sessions,
            clock=lambda: FIXTURE_NOW,
        ),
        "adapter_treserva": treserva_app(
            AdapterTreservaSettings(environment="sandbox"),
            store=FakeIntakeStore(),
            sessions=sessions,
            clock=lambda: FIXTURE_NOW,
        ),
        "router": router_app(RouterSettings(environment="sandbox"), sessions=sessions),
    }


def check_openapi(*, update: bool = False) -> list[Result]:
    results = []
    for name, app in apps().items():
        path = OPENAPI / f"{name}.json"
        actual = render(app.openapi())
        if update:
            OPENAPI.mkdir(exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        if not path.exists():
            status = "MISSING"
        else:
            status = "ok" if path.read_text(encoding="utf-8") == actual else "DIFFERS"
        results.append(Result(f"openapi/{name}.json", "openapi", status))
    return results


def check_conformance(*, update: bool = False) -> list[Result]:
    found = conformance.check(CONTRACTS_DIR / "fhir", update=update)
    return [Result(f"fhir/{name}", "conformance", status) for name, status in found.items()]


def check_negative(*, update: bool = False) -> list[Result]:
    """contracts/fhir-negative/: the spoiled goldens :mod:`sandbox.fhir_negative` makes (after
    the goldens: made of them); ``make contracts`` has the FHIR validator reject each."""
    found = fhir_negative.check(update=update)
    return [
        Result(f"fhir-negative/{name}", "negative set", status) for name, status in found.items()
    ]


def check_guide(*, update: bool = False) -> list[Result]:
    """The implementation guide under docs/guide/ is what ``make guide`` makes of
    contracts/fhir and the fixtures (rewritten with ``--update``, after the goldens)."""
    try:
        site = build(read_inputs())
    except (GuideError, OSError, ValueError) as exc:  # reported in the table, not hidden
        return [Result("docs/guide", "guide", f"ERROR: {type(exc).__name__}: {exc}")]
    problems = check_site(site)
    if problems:
        return [Result("docs/guide", "guide links", f"ERROR: {problems[0]} (+{len(problems) - 1})")]
    if update:
        write_site(site, GUIDE_DIR)
    stale = stale_files(site, GUIDE_DIR)
    status = "ok" if not stale else f"DIFFERS: {len(stale)} file(s), first {stale[0]}"
    return [Result("docs/guide", "guide (make guide)", status)]


def contract_names() -> list[str]:
    return sorted(
        str(p.relative_to(CONTRACTS_DIR)).removesuffix(".schema.json")
        for p in CONTRACTS_DIR.rglob("*.schema.json")
        if p.name != "common.schema.json"
    )


def validate_document(contract: str, document: Any) -> list[tuple[str, str, str]]:
    """(path, rule, message) of every violation; [] when the document is valid. An inbound
    contract also gets the checks a schema cannot make (Luhn, calendar dates, a birth date
    after today; a regional reserve number is taken as the sandbox's example region's)."""
    schema = f"{contract}.schema.json"
    for families in INBOUND.values():
        for family in families:
            if family.schema == schema:
                try:
                    family.parse(
                        document,
                        now=datetime.now(UTC),
                        regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
                    )
                except InvalidEvent as exc:
                    return [(v.path or "$", v.rule, v.message) for v in exc.violations]
                return []
    if not (CONTRACTS_DIR / schema).exists():
        raise LookupError(f"no contract {contract!r}; known: {', '.join(contract_names())}")
    return [(v.path or "$", v.rule, v.message) for v in violations(schema, document)]


def print_table(rows: list[Result]) -> None:
    width = max(len(r.subject) for r in rows)
    print(f"{'contract / fixture':<{width}}  {'check':<52}  result")
    for r in rows:
        print(f"{r.subject:<{width}}  {r.check:<52}  {r.status}")


def cmd_check(update: bool) -> int:
    rows = check_schemas() + check_fixtures(update=update) + check_openapi(update=update)
    rows += check_conformance(update=update)
    rows += check_negative(update=update)
    rows += check_guide(update=update)  # after the goldens and conformance: made of them
    print_table(rows)
    failed = [r for r in rows if r.status != "ok"]
    fixtures = len(list(fixture_inputs()))
    print(f"\n{len(rows) - len(failed)} of {len(rows)} checks ok ({fixtures} fixtures)")
    return 1 if failed else 0


def translated(contract: str, document: Any) -> dict[str, Any] | None:
    """The FHIR message an inbound contract's valid document becomes (the sandbox's example
    region for regional reserve numbers), or None for a contract no adapter takes in."""
    schema = f"{contract}.schema.json"
    for families in INBOUND.values():
        for family in families:
            if family.schema == schema:
                now = datetime.now(UTC)
                region = FIXTURE_REGIONAL_RESERVE_OID
                event = family.parse(document, now=now, regional_reserve_oid=region)
                return fhir_json(family.to_bundle(event, now=now, regional_reserve_oid=region))
    return None


def print_verdict(label: str, document: dict[str, Any]) -> int:
    """The reference validator's verdict on a FHIR resource: its OperationOutcome on stdout,
    a summary line on stderr; 1 if it has an error."""
    from sandbox.fhir_validator_process import batch_verdict

    verdict = batch_verdict(document)
    print(json.dumps(verdict.outcome, ensure_ascii=False, indent=2))
    print(
        f"{label}: {len(verdict.errors)} error(s), {len(verdict.warnings)} warning(s) "
        "from the reference FHIR validator",
        file=sys.stderr,
    )
    return 0 if verdict.valid else 1


def print_verdicts(files: list[str]) -> int:
    """Several FHIR messages through the reference validator in one JVM: one JSON line per
    file (``{"file", "outcome"}``) on stdout, a summary per file on stderr; 1 if any error."""
    from sandbox.fhir_validator_process import batch_verdicts

    verdicts = batch_verdicts([Path(f) for f in files])
    for file, verdict in zip(files, verdicts, strict=True):
        print(json.dumps({"file": file, "outcome": verdict.outcome}, ensure_ascii=False))
        print(
            f"{file}: {len(verdict.errors)} error(s), {len(verdict.warnings)} warning(s) "
            "from the reference FHIR validator",
            file=sys.stderr,
        )
    return 0 if all(v.valid for v in verdicts) else 1


def _is_bundle(file: str) -> bool:
    try:
        document = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("resourceType") == "Bundle"


def cmd_validate(
    contract: str | None, files: list[str], listing: bool, *, native_only: bool = False
) -> int:
    if contract is not None and contract.endswith(".json"):  # make validate FILE=x.fhir.json
        files, contract = [contract, *files], None
    if listing or not files:
        print("\n".join(contract_names()))
        return 0 if listing else 2
    if len(files) > 1:  # FHIR messages only, judged together (one JVM start for them all)
        if not all(_is_bundle(f) for f in files):
            print("several files: each must be a FHIR Bundle (JSON)", file=sys.stderr)
            return 2
        return print_verdicts(files)
    (file,) = files
    try:
        document = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{file}: cannot read JSON: {exc}", file=sys.stderr)
        return 2
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return print_verdict(file, document)
    if contract is None:
        print(f"{file}: not a FHIR Bundle; name its contract", file=sys.stderr)
        return 2
    try:
        found = validate_document(contract, document)
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if found:
        print(f"{file}: {len(found)} violation(s) of {contract}")
        for path, rule, message in found:
            print(f"  {path}: [{rule}] {message}")
        return 1
    bundle = None if native_only else translated(contract, document)
    if bundle is None:
        print(f"{file}: valid {contract}")
        return 0
    # stdout holds only the validator's OperationOutcome; what we say goes to stderr
    print(f"{file}: valid {contract}", file=sys.stderr)
    return print_verdict(f"{file} as its FHIR message", bundle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--update", action="store_true", help="rewrite goldens, OpenAPI and conformance resources"
    )
    sub = parser.add_subparsers(dest="command")
    validate = sub.add_parser(
        "validate", help="check a document against a contract, or FHIR messages"
    )
    validate.add_argument("contract", nargs="?", help="e.g. takecare/medication-list, or fhir")
    validate.add_argument(
        "files", nargs="*", help="the JSON document; several FHIR messages: one JSON line each"
    )
    validate.add_argument("--list", action="store_true", help="list the contracts")
    validate.add_argument(
        "--native-only", action="store_true", help="skip the reference FHIR validator"
    )
    args = parser.parse_args(argv)
    if args.command == "validate":
        return cmd_validate(args.contract, args.files, args.list, native_only=args.native_only)
    return cmd_check(args.update)


if __name__ == "__main__":
    sys.exit(main())
