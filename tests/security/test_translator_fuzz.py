"""Hypothesis against the pure translators and the identifier check.

- Any JSON at all given to an inbound family (TakeCare's and Treserva's native → FHIR) or a
  receipt parser raises :class:`InvalidEvent` (what the intake turns into 422) or
  translates: never KeyError, TypeError, AttributeError or a pydantic error.
- A contract fixture with its free text replaced by hostile text (any unicode, SQL and HTML,
  up to the field's limit) is accepted, and the text arrives verbatim in the FHIR message and
  in the receiving journal's document.
- Any change to a FHIR message on its way out (a node anywhere replaced by arbitrary JSON)
  is translated for the destination or answered :class:`Untranslatable` (a fatal delivery
  outcome naming no patient data), and the refusal is the translator's own
  TranslationError or MalformedMessage, not the safety net in ``translate()``.
- A refusal of a changed message that holds a test patient (people.py: personnummer,
  names, address), even with that data moved where it does not belong, names none of it.
- A random 12-digit number is a valid personnummer or samordningsnummer exactly when an
  independent oracle (Luhn over the last ten digits, a calendar date, day + 60) says so.
"""

from __future__ import annotations

import calendar
import dataclasses
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples import people
from services.adapter_takecare import families as takecare
from services.adapter_takecare import primary_care
from services.adapter_takecare.families import receipt as takecare_receipt
from services.adapter_takecare.service import DESTINATION as TAKECARE
from services.adapter_treserva import families as treserva
from services.adapter_treserva.families import receipt as treserva_receipt
from services.adapter_treserva.service import DESTINATION as TRESERVA
from services.messaging.delivery import Destination, Untranslatable, translate
from services.messaging.envelope import MalformedMessage, read_envelope, to_json
from services.messaging.fhir_parts import TranslationError
from services.messaging.identifiers import (
    IdentifierKind,
    InvalidIdentifier,
    parse_patient_identifier,
)
from services.messaging.native import InboundFamily, InvalidEvent

pytestmark = pytest.mark.security

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
FIXTURES = Path("contracts/fixtures")
FAST = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,  # a shared, noisy machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
INBOUND: dict[str, InboundFamily[Any]] = {
    **{f"takecare/{f.family}": f for f in takecare.INBOUND},
    **{f"treserva/{f.family}": f for f in treserva.INBOUND},
}
OUTBOUND = {
    "takecare": {f.family: f for f in takecare.OUTBOUND},
    "treserva": {f.family: f for f in treserva.OUTBOUND},
}

# Edge values a fuzzer's dictionary would hold: the limits of FHIR's types and of the date.
EDGES = st.sampled_from(
    [
        2**31 - 1,
        2**31,
        2**63,
        -1,
        0,
        "",
        "\x0b",
        "\u00a0",
        "2026-11-20T09:12:00+14:01",
        "0000-01-01",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | EDGES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)


def _fixture(source: str, family: str, name: str) -> dict[str, Any]:
    path = FIXTURES / source / family / f"{name}.input.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _field_names(document: Any) -> list[str]:
    """Every key in a document, so arbitrary JSON also hits the contract's own names."""
    if isinstance(document, dict):
        return [*document, *(n for v in document.values() for n in _field_names(v))]
    if isinstance(document, list):
        return [n for v in document for n in _field_names(v)]
    return []


@st.composite
def near_documents(draw: st.DrawFn, family: str) -> Any:
    """Arbitrary JSON, or a fixture of the family with arbitrary JSON put in at one key."""
    if draw(st.integers(0, 3)) == 0:
        return draw(json_values)
    source, name = family.split("/")
    folder = FIXTURES / source / name
    fixtures = sorted(p.name.removesuffix(".input.json") for p in folder.glob("*.input.json"))
    document = _fixture(source, name, draw(st.sampled_from(fixtures)))
    target = document
    for _ in range(draw(st.integers(0, 3))):
        children = [k for k, v in target.items() if isinstance(v, dict)]
        if not children:
            break
        target = target[draw(st.sampled_from(sorted(children)))]
    key = draw(st.sampled_from(sorted({*target, *_field_names(document)})))
    target[key] = draw(json_values)
    return document


@pytest.mark.parametrize("family", sorted(INBOUND))
def test_any_json_is_translated_or_refused_as_a_contract_violation(family):
    chosen = INBOUND[family]

    @settings(FAST, max_examples=150)
    @given(near_documents(family))
    def check(document: Any) -> None:
        try:
            event = chosen.parse(
                document, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
            )
        except InvalidEvent as exc:
            assert exc.violations, "a refusal names at least one violation"
            return
        chosen.to_bundle(
            event, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )  # anything it raises fails the test

    check()


@pytest.mark.parametrize(
    "parse", [takecare_receipt.parse_receipt, treserva_receipt.parse_receipt], ids=["tc", "tr"]
)
@FAST
@given(document=json_values)
def test_any_json_as_a_receipt_is_a_receipt_or_a_contract_violation(parse, document):
    try:
        parse(document)
    except InvalidEvent as exc:
        assert exc.violations


HOSTILE = [
    "'; DROP TABLE delivery; --",
    "<script>alert('x')</script>",
    'Robert"); DELETE FROM outbox WHERE ("1"="1',
    "Åsa Öberg-Ängström \u202e\u200b 👩🏽‍⚕️",
    "rad ett\r\nrad två\ttabb",
]
# Text FHIR takes as a string: at least one space, tab, line break or visible character.
free_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=300).filter(
    lambda s: any(c in " \r\n\t" or not c.isspace() for c in s)
)


def _strings(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {s for v in node.values() for s in _strings(v)}
    if isinstance(node, list):
        return {s for v in node for s in _strings(v)}
    return {node} if isinstance(node, str) else set()


# (family, fixture, where the free text goes, receiving journal, its family)
ROUND_TRIPS = [
    (
        "takecare/admission-notice",
        "personnummer-full",
        ("admissionReason",),
        "treserva",
        "admission-notice",
    ),
    (
        "takecare/admission-notice",
        "personnummer-full",
        ("careNeedsAssessment",),
        "treserva",
        "admission-notice",
    ),
    (
        "takecare/medication-list",
        "admission-structured-every-text-field",
        ("items", 0, "name"),
        "treserva",
        "medication-list",
    ),
    (
        "treserva/medication-list",
        "hemsjukvard-samordningsnummer-dst",
        ("rader", 0, "namn"),
        "takecare",
        "medication-list",
    ),
]


def _put(document: dict[str, Any], where: tuple[str | int, ...], value: str) -> None:
    target: Any = document
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value


@pytest.mark.parametrize(
    ("family", "fixture", "where", "receiver", "receiving"),
    ROUND_TRIPS,
    ids=[f"{r[0]}:{'.'.join(map(str, r[2]))}" for r in ROUND_TRIPS],
)
def test_hostile_free_text_is_accepted_and_arrives_verbatim(
    family, fixture, where, receiver, receiving
):
    source, name = family.split("/")

    @FAST
    @given(text=free_text)
    @example(text=HOSTILE[0])
    @example(text=HOSTILE[1])
    @example(text=HOSTILE[2])
    @example(text=HOSTILE[3])
    @example(text=HOSTILE[4])
    def check(text: str) -> None:
        document = _fixture(source, name, fixture)
        _put(document, where, text)
        bundle = json.loads(
            to_json(
                INBOUND[family].to_bundle(
                    INBOUND[family].parse(
                        document, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                    ),
                    now=NOW,
                    regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
                )
            )
        )
        assert text in _strings(bundle)
        native = OUTBOUND[receiver][receiving].to_native(bundle)
        assert text in _strings(native)

    check()


def _oracle(number: str) -> IdentifierKind | None:
    """Written from Skatteverket's description, not from the code under test."""
    if not _oracle_luhn(number[2:]):
        return None
    year, month, day = int(number[:4]), int(number[4:6]), int(number[6:8])
    kind = IdentifierKind.PERSONNUMMER
    if 61 <= day <= 91:
        kind, day = IdentifierKind.SAMORDNINGSNUMMER, day - 60
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return kind


def _luhn_complete(stem: str) -> str:
    """``stem`` (11 digits) with the check digit that makes it valid."""
    for check in "0123456789":
        if _oracle_luhn(stem[2:] + check):
            return stem + check
    raise AssertionError("unreachable")


def _oracle_luhn(ten: str) -> bool:
    total = sum(
        (int(c) * 2) // 10 + (int(c) * 2) % 10 if i % 2 == 0 else int(c) for i, c in enumerate(ten)
    )
    return total % 10 == 0


twelve_digits = st.text("0123456789", min_size=12, max_size=12)
# Mostly numbers with a right check digit, so the date rule is exercised too.
plausible = st.builds(
    lambda y, m, d, n: _luhn_complete(f"{y:04d}{m:02d}{d:02d}{n:03d}"),
    st.integers(1800, 2030),
    st.integers(0, 13),
    st.integers(0, 99),
    st.integers(0, 999),
)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(number=twelve_digits | plausible)
@example(number="194001019876")  # the check digit off by one
@example(number="190001010000")
@example(number="20000229" + "0000")  # a leap day
@example(number="19000229" + "0000")  # not a leap day
def test_a_number_is_valid_exactly_when_the_oracle_says_so(number):
    expected = _oracle(number)
    try:
        found = parse_patient_identifier(number)
    except InvalidIdentifier:
        assert expected is None, number
        return
    assert found.kind is expected, number
    assert found.value == number


@FAST
@given(number=plausible, at=st.integers(0, 11), digit=st.sampled_from("٠١٢٣٤٥٦٧٨٩０１２"))
def test_only_ascii_digits_make_a_number(number, at, digit):
    # Python's \d and int() take Arabic-Indic and full-width digits; a personnummer does not.
    odd = number[:at] + digit + number[at + 1 :]
    with pytest.raises(InvalidIdentifier):
        parse_patient_identifier(odd)


# (the source's inbound family, a fixture, the destination that receives its FHIR message)
OUTGOING = [
    ("takecare/admission-notice", "personnummer-full", TRESERVA),
    ("takecare/discharge-notice", None, TRESERVA),
    ("takecare/discharge-readiness", None, TRESERVA),
    ("takecare/medication-list", None, TRESERVA),
    ("takecare/sip-update", None, TRESERVA),
    (
        "takecare/admission-notice",
        "personnummer-full",
        primary_care.destination("adapter_takecare"),
    ),
    ("treserva/medication-list", None, TAKECARE),
    ("treserva/sip-update", None, TAKECARE),
]


def _first_fixture(family: str) -> str:
    source, name = family.split("/")
    return sorted(
        p.name.removesuffix(".input.json") for p in (FIXTURES / source / name).glob("*.input.json")
    )[0]


@st.composite
def mutated(
    draw: st.DrawFn, bundle: dict[str, Any], values: st.SearchStrategy[Any] = json_values
) -> dict[str, Any]:
    """``bundle`` (a copy) with one node, at any depth, replaced by one of ``values``
    (arbitrary JSON unless told)."""
    copy: dict[str, Any] = json.loads(json.dumps(bundle))
    target: Any = copy
    for _ in range(draw(st.integers(0, 8))):
        if isinstance(target, dict) and target:
            child = target[draw(st.sampled_from(sorted(target)))]
        elif isinstance(target, list) and target:
            child = target[draw(st.integers(0, len(target) - 1))]
        else:
            break
        if not isinstance(child, dict | list):
            break
        target = child
    if isinstance(target, dict) and target:
        target[draw(st.sampled_from(sorted(target)))] = draw(values)
    elif isinstance(target, list) and target:
        target[draw(st.integers(0, len(target) - 1))] = draw(values)
    return copy


@pytest.mark.parametrize(
    ("family", "fixture", "destination"),
    OUTGOING,
    ids=[f"{f}->{d.system.value}:{d.owner}" for f, _, d in OUTGOING],
)
def test_a_changed_message_is_translated_or_refused_never_raised(family, fixture, destination):
    source, name = family.split("/")
    document = _fixture(source, name, fixture or _first_fixture(family))
    chosen = INBOUND[family]
    bundle = json.loads(
        to_json(
            chosen.to_bundle(
                chosen.parse(
                    document, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=NOW,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    )
    translate(json.dumps(bundle), destination)  # the unchanged message translates

    @settings(FAST, max_examples=120)
    @given(changed=mutated(bundle))
    def check(changed: dict[str, Any]) -> None:
        try:
            _, _, native = translate(json.dumps(changed), destination)
        except Untranslatable as exc:
            assert exc.reason
            # the translator refused it itself, not the safety net in translate()
            assert "in the translator" not in exc.reason, exc.reason
            return
        assert isinstance(native, dict)

    check()


# Where the patient sits in each source's native document, and who people.py makes for it.
PATIENT_OF = {
    "takecare": ("patient", people.takecare_patient),
    "treserva": ("brukare", people.treserva_brukare),
}


def _patient_values(patient: dict[str, Any]) -> set[str]:
    """The patient data of a native patient: numbers (with and without the dash), names,
    address; not its booleans."""
    found = {s for s in _strings(patient) if s.strip()}
    return found | {s.replace("-", "") for s in found if s.replace("-", "").isdigit()}


def _hostile(secrets: set[str], patient: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A node that holds patient data, put where it does not belong: a value, in a list,
    as a key and value of an object, a personnummer as a number, or one of the Patient's
    own elements (name, identifier, address, the whole resource) moved elsewhere."""
    value = st.sampled_from(sorted(secrets))
    numbers = sorted(int(s) for s in secrets if s.isdigit())
    return st.one_of(
        value,
        value.map(lambda s: [s]),
        value.map(lambda s: {s: s, "value": s, "reference": s, "resourceType": s}),
        st.sampled_from(numbers) if numbers else value,
        st.sampled_from([patient, *(patient[k] for k in ("name", "identifier", "address"))]),
    )


@pytest.mark.parametrize(
    ("family", "fixture", "destination"),
    OUTGOING,
    ids=[f"{f}->{d.system.value}:{d.owner}" for f, _, d in OUTGOING],
)
def test_a_refusal_of_a_changed_message_names_no_patient_data(family, fixture, destination):
    source, name = family.split("/")
    chosen = INBOUND[family]
    where, make = PATIENT_OF[source]
    refused = 0

    @settings(FAST, max_examples=100)
    @given(seed=st.integers(0, 2**32), data=st.data())
    def check(seed: int, data: st.DataObject) -> None:
        nonlocal refused
        document = _fixture(source, name, fixture or _first_fixture(family))
        document[where] = make(random.Random(seed), protected_share=0.0)
        secrets = _patient_values(document[where])
        bundle = json.loads(
            to_json(
                chosen.to_bundle(
                    chosen.parse(
                        document, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                    ),
                    now=NOW,
                    regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
                )
            )
        )
        (patient,) = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        ]
        assert secrets & _strings(bundle), "the message carries the patient's data"
        hostile = _hostile(secrets, patient)
        # mostly inside one resource, where the translators read, else anywhere
        changed = bundle
        at = data.draw(st.integers(-1, len(bundle["entry"]) - 1))
        if at < 0:
            changed = data.draw(mutated(bundle, hostile))
        else:
            changed["entry"][at]["resource"] = data.draw(
                mutated(bundle["entry"][at]["resource"], hostile)
            )
        try:
            envelope = read_envelope(json.dumps(changed))
            outbound = destination.family_for(envelope.event_code)
            if outbound is not None:
                outbound.to_native(changed)
        except (TranslationError, MalformedMessage) as exc:  # anything else fails the test
            refused += 1
            assert not {s for s in secrets if s in str(exc)}, "the refusal names patient data"

    check()
    assert refused, "some changed messages were refused"


def test_a_translator_bug_is_untranslatable_not_an_exception():
    def broken(doc: dict[str, Any]) -> dict[str, Any]:
        raise TypeError("'NoneType' object is not subscriptable")

    family = next(f for f in TRESERVA.families if f.family == "admission-notice")
    destination = Destination(
        system=TRESERVA.system,
        owner=TRESERVA.owner,
        families=(dataclasses.replace(family, to_native=broken),),
        mark_superseded=TRESERVA.mark_superseded,
    )
    document = _fixture("takecare", "admission-notice", "personnummer-full")
    chosen = INBOUND["takecare/admission-notice"]
    value = to_json(
        chosen.to_bundle(
            chosen.parse(
                document, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
            ),
            now=NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )
    )
    with pytest.raises(Untranslatable, match="TypeError in the translator"):
        translate(value, destination)
