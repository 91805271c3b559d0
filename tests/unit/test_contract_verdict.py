"""The quick verdict (jsonschema-rs) agrees with jsonschema: on every fixture against every
contract, on native documents spoiled one way at a time in every field, and on what each
contract pattern means, character by character."""

import copy
import json
import math
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from services.messaging import contracts
from services.messaging.contract_verdict import NotPortable, portable_pattern, verdict_validator
from services.messaging.contracts import (
    CONTRACTS_DIR,
    Violation,
    quick_validator,
    validator,
    violations,
)
from services.router.deviations.export import to_json
from services.router.deviations.records import Deviation

FIXTURES = CONTRACTS_DIR / "fixtures"
CONTRACTS = sorted(str(p.relative_to(CONTRACTS_DIR)) for p in CONTRACTS_DIR.rglob("*.schema.json"))
SYSTEMS = {"takecare", "treserva"}
DATA_KEYWORDS = ("const", "enum", "default", "examples")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _keyword(keyword: str) -> list[Any]:
    """Every value of ``keyword`` in the contracts."""

    def walk(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == keyword:
                    yield value
                if key not in DATA_KEYWORDS:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return [found for c in CONTRACTS for found in walk(_load(CONTRACTS_DIR / c))]


def _contract_of(fixture: Path) -> str | None:
    """``<source>/<family>/<name>.input.json`` is the source's native document,
    ``<name>.<destination>.json`` the destination's; ``.fhir.json`` has no native contract."""
    kind = fixture.name.removesuffix(".json").rsplit(".", 1)[-1]
    system = fixture.parent.parent.name if kind == "input" else kind
    return f"{system}/{fixture.parent.name}.schema.json" if system in SYSTEMS else None


@cache
def _fixtures() -> tuple[Path, ...]:
    """Smallest first, so spoiling meets each field shape in the cheapest document."""
    return tuple(sorted(FIXTURES.rglob("*.json"), key=lambda p: (p.stat().st_size, p)))


def _deviation_export() -> dict[str, Any]:
    """The deviation contract has no fixture: an export the router makes."""
    at = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    full = Deviation(
        id=7,
        kind="not_confirmed_in_time",
        family="admission-notice",
        source="takecare",
        destination="treserva",
        detected_at=at,
        description="Inskrivningsmeddelandet bekräftades inte i tid av Treserva.",
        message_id="a1b2c3d4-0000-4000-8000-00000000000a",
        delivery_id=12,
        sender_unit_hsa="SE2321000222-AKUT",
        receiver_unit_hsa="SE2120000803-HSJV",
        pseudonym="3f2a9c0d4b5e6f708192a3b4c5d6e7f8",
        occurred_at=at,
        due_at=at,
        resolved_at=at,
        lateness_s=7201,
        alert_id=3,
    )
    sparse = Deviation(
        id=8,
        kind="a_new_rule",
        family="sip-invitation",
        source="treserva",
        destination="sub-0123456789abcdef",
        detected_at=at,
        description="Kallelse till SIP saknas.",
    )
    return to_json([full, sparse], generated_at=at, month="2026-11")


def _natives() -> Iterator[tuple[str, str, Any]]:
    """(contract, name, document) for every document that must satisfy its contract."""
    yield "deviations/deviation.schema.json", "deviation export", _deviation_export()
    for fixture in _fixtures():
        contract = _contract_of(fixture)
        if contract is not None and not fixture.name.startswith("refused-"):  # must be refused
            yield contract, fixture.name, _load(fixture)


@cache
def _strings() -> frozenset[str]:
    """Every text in the fixtures and the deviation export."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict | list):
            for child in node.values() if isinstance(node, dict) else node:
                yield from walk(child)

    return frozenset(text for _, _, document in _natives() for text in walk(document))


def _disagreements(pairs: Iterator[tuple[str, str, Any]]) -> tuple[list[str], int, int]:
    """Where the two verdicts differ, and how many documents were valid and invalid."""
    differ, valid, invalid = [], 0, 0
    for contract, label, document in pairs:
        expected = validator(contract).is_valid(document)
        check = quick_validator(contract)
        assert check is not None, contract
        if check.is_valid(document) != expected:
            differ.append(f"{contract} {label}: jsonschema says valid={expected}")
        valid, invalid = valid + expected, invalid + (not expected)
    return differ, valid, invalid


def test_every_contract_has_a_quick_validator():
    assert len(CONTRACTS) >= 15
    assert all(quick_validator(contract) is not None for contract in CONTRACTS)


def test_every_fixture_gets_the_same_verdict_from_every_contract():
    natives = list(_natives())
    assert len(_fixtures()) >= 90 and len(natives) >= 60
    assert all(validator(contract).is_valid(document) for contract, _, document in natives)

    documents = [(f.name, _load(f)) for f in _fixtures()]
    documents.append(("deviation export", _deviation_export()))
    differ, valid, invalid = _disagreements(
        (contract, name, document) for name, document in documents for contract in CONTRACTS
    )
    assert differ == []
    assert valid >= len(natives) and invalid > 1_000


@pytest.mark.slow
def test_spoiled_documents_get_the_same_verdict():
    """Each native document spoiled one way at a time in every field: removed, unknown, of
    the wrong type, breaking its pattern, an impossible date, whitespace the two regular
    expression engines disagree on, another value of its enum. A field shape already spoiled
    in a smaller document of the same contract is not spoiled again."""
    seen: set[tuple[str, str, str]] = set()

    def spoiled() -> Iterator[tuple[str, str, Any]]:
        for contract, name, document in _natives():
            for path, label, changed in _spoil(document):
                key = (contract, re.sub(r"\.\d+", ".*", path), label)
                if key not in seen:
                    seen.add(key)
                    yield contract, f"{name} {path} {label}", changed

    differ, valid, invalid = _disagreements(spoiled())
    assert differ == []
    assert valid > 500 and invalid > 5_000, (valid, invalid)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_left_to_jsonschema(value):
    """Python's json reads NaN and Infinity; Rust has no JSON value for them, so the quick
    verdict is "invalid" and jsonschema alone decides, as it did before."""
    fixture = FIXTURES / "takecare/medication-list/admission-structured-every-text-field.input.json"
    contract = "takecare/medication-list.schema.json"
    document = _load(fixture)
    document["items"][0]["dosage"]["dose"]["value"] = value
    check = quick_validator(contract)
    assert check is not None and not check.is_valid(document)
    assert (violations(contract, document) == []) == validator(contract).is_valid(document)


@pytest.mark.parametrize("pattern", sorted({p for p in _keyword("pattern") if isinstance(p, str)}))
def test_a_contract_pattern_means_to_rust_what_it_means_to_python(pattern):
    """Every code point where a pattern leans on a character class of Python's (``\\s``,
    ``\\S``), else the first 12,544 and a few chosen ones; and every text in the fixtures it
    matches with a newline after it, which Python's ``$`` lets through."""
    if re.search(r"\\[sS]", pattern):
        texts = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    else:
        texts = [chr(c) for c in [*range(0x3100), 0xFEFF, 0x1F600, sys.maxunicode]]
    matching = sorted(t for t in _strings() if re.search(pattern, t))[:50]
    assert matching, "no fixture has a text this pattern matches"
    texts += ["", "\n", "ab", "a\n", "a\n\n", "\na", "ab\nab"]
    texts += [variant for t in matching for variant in (t, t + "\n", t + "\n\n", t + "\nx")]
    python = {i for i, text in enumerate(texts) if re.search(pattern, text)}
    # jsonschema-rs builds an error per failing item: let the fewer fail
    mostly_matching = len(python) * 2 > len(texts)
    items = {"pattern": pattern} if mostly_matching else {"not": {"pattern": pattern}}
    check = verdict_validator({"type": "array", "items": items}, jsonschema_rs.Registry([]))
    flagged = {int(error.instance_path[0]) for error in check.iter_errors(texts)}
    rust = set(range(len(texts))) - flagged if mostly_matching else flagged
    assert [texts[i] for i in sorted(rust ^ python)] == []


@pytest.mark.parametrize(
    "pattern",
    [
        *(r"\d", r"\w+", r"\bx", r"\x41", r"\u00e5", r"(a)\1"),
        *(r"(?i)se", r"(?=a)", r"[]a]", r"[^]a]", r"[a&&b]", r"[a--b]", r"[[a]]"),
        *(r"^a{,3}$", r"a{", r"a}", r"{x}", r"^a*+a$", r"^a++$", r"a?+", r"^a{2}+$"),
    ],
)
def test_a_pattern_the_engines_may_read_differently_is_refused(pattern):
    with pytest.raises(NotPortable):
        portable_pattern(pattern)
    with pytest.raises(NotPortable):
        verdict_validator({"properties": {"a": {"pattern": pattern}}}, jsonschema_rs.Registry([]))


def test_a_pattern_in_data_is_left_alone():
    schema = {"const": {"pattern": r"\d"}, "properties": {"pattern": {"type": "string"}}}
    check = verdict_validator(schema, jsonschema_rs.Registry([]))
    assert check.is_valid({"pattern": r"\d"}) and not check.is_valid({"pattern": "1"})


def test_a_document_rust_cannot_take_is_judged_by_jsonschema():
    document = _load(FIXTURES / "takecare/admission-notice/personnummer-full.input.json")
    contract = "takecare/admission-notice.schema.json"
    document["admissionReason"] = "\ud800"  # a lone surrogate: no Rust string, but a Python one
    assert violations(contract, document) == []
    document["admissionReason"] = b"bytes"
    assert violations(contract, document) == [
        Violation("admissionReason", "type", "does not satisfy type: string")
    ]


def test_an_invalid_document_is_still_explained_in_full():
    document = _load(FIXTURES / "takecare/admission-notice/personnummer-full.input.json")
    del document["admissionReason"]
    document["occurredAt"] = "2026-02-30T10:00:00+01:00"
    document["surplus"] = 1
    found = violations("takecare/admission-notice.schema.json", document)
    assert [(v.path, v.rule) for v in found] == [
        ("admissionReason", "required"),
        ("occurredAt", "format"),
        ("surplus", "additionalProperties"),
    ]


# How a document is spoiled

ENUMS = [tuple(values) for values in _keyword("enum") if isinstance(values, list)]
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ANY_TYPE: list[Any] = [None, True, 7, 1.5, "x", [], {}]
TEXTS = ["", " ", "\x1c", "\x85", "\ufeff", "\u2028", "x" * 4001]
NUMBERS: list[Any] = [0, -1, 1.0, 2**31 - 1, 2**31, 2**64, 10**30, "1"]
DATE_TIMES = [
    "2026-02-30T10:00:00+01:00",
    "2026-06-30T23:59:60+02:00",
    "2026-06-30T24:00:00+02:00",
    "2026-13-01T10:00:00Z",
    "2026-06-30T12:00:00",
    "2026-06-30 12:00:00+02:00",
    "2026-06-30t12:00:00z",
    "2026-06-30T12:00:00+14:01",
    "2026-06-30T12:00:00-14:00",
    "2026-06-30T12:00:00.5+02:00",
    "2026-06-30T12:00+02:00",
    "٢٠٢٦-06-30T12:00:00+02:00",
]
DATES = ["2026-02-30", "2026-2-03", "20260203", "2026-02-03T00:00:00Z", "2026-02-03\n", "2026-W05"]


def _spoil(document: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, what was done, the whole document with that done), for every node."""
    yield from _variants(document, path)
    children = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else []
    )
    for key, child in children:
        inner = f"{path}.{key}" if path else str(key)
        for where, label, value in _spoil(child, inner):
            changed = copy.copy(document)
            changed[key] = value
            yield where, label, changed


def _variants(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """The node itself replaced by spoiled versions of it (a removal is its parent's)."""
    for other in ANY_TYPE:
        if type(other) is not type(node):
            yield path, f"type {type(other).__name__}", other
    if isinstance(node, dict):
        for key in node:
            yield path, f"without {key}", {k: v for k, v in node.items() if k != key}
        yield path, "unknown field", {**node, "unexpected": "x"}
    elif isinstance(node, list) and node:
        yield path, "empty", []
        yield path, "a duplicate", [*node, node[0]]
        yield path, "many", node * 40
        yield path, "null item", [*node, None]
    elif isinstance(node, bool):
        yield path, "flipped", not node
        yield path, "as number", int(node)
    elif isinstance(node, int | float):
        for i, other in enumerate(NUMBERS):
            yield path, f"number {i}", other
        yield path, "plus a half", node + 0.5
    elif isinstance(node, str):
        yield from _text_variants(node, path)


def _text_variants(text: str, path: str) -> Iterator[tuple[str, str, Any]]:
    spoiled = [
        *TEXTS,
        text + "\n",
        text + "!",
        " " + text,
        text[:-1],
        text + "0",
        text.upper(),
        text.lower(),
        text.replace("-", ""),
        text.replace("-", "+"),
    ]
    if DATE_TIME.match(text):
        spoiled += [*DATE_TIMES, text[:-6], text.replace("T", " ", 1), text.lower()]
    if DATE.match(text):
        spoiled += DATES
    if UUID.match(text):
        spoiled += [f"{{{text}}}", f"urn:uuid:{text}", text[:-1] + "g", text[:-1] + "-"]
    for i, other in enumerate(spoiled):
        yield path, f"text {i}", other
    for values in ENUMS:
        if text in values:
            for other in values:
                yield path, f"enum {other}", other


def test_a_service_builds_every_contracts_validators_at_start() -> None:
    """Not on the first event: that one paid the compiled verdict's first build."""
    contracts.quick_validator.cache_clear()
    contracts.validator.cache_clear()
    count = contracts.warm_up()
    assert count == len(list(contracts.CONTRACTS_DIR.rglob("*.schema.json"))) > 0
    assert contracts.quick_validator.cache_info().currsize == count
    assert contracts.validator.cache_info().currsize == count
