"""Medication list (läkemedelslista), both ways: golden fixtures, properties over the samples,
and precise refusals of bad input."""

import copy
import json
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import (
    FIXTURE_NOW,
    FIXTURE_REGIONAL_RESERVE_OID,
    fixtures_of,
    golden_path,
    render,
    translate_fixture,
)
from sandbox.simulators.samples.medication_list import (
    sample_takecare_medication_list,
    sample_treserva_medication_list,
)
from sandbox.simulators.samples.people import takecare_consent_basis
from services.adapter_takecare.families import medication_list as takecare
from services.adapter_treserva.families import medication_list as treserva
from services.messaging.case import case_episodes
from services.messaging.contracts import violations
from services.messaging.envelope import EVENT_SYSTEM, System, to_json
from services.messaging.fhir_parts import TranslationError
from services.messaging.identifiers import (
    NATIONAL_RESERVE_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
    IdentifierKind,
    parse_national_reserve_number,
    parse_patient_identifier,
    parse_regional_reserve_number,
)
from services.messaging.medication import LIST_EMPTY_REASON_SYSTEM
from services.messaging.native import InvalidEvent
from services.messaging.vocabulary import (
    ADMINISTERED_BY_URL,
    ATC_SYSTEM,
    DOCUMENT_VERSION_URL,
    NPL_ID_SYSTEM,
    TAKECARE_MEDICATION_LIST_SYSTEM,
    TRESERVA_MEDICATION_LIST_SYSTEM,
)

FAMILY = "medication-list"
TAKECARE_FIXTURES = fixtures_of(System.TAKECARE, FAMILY)
TRESERVA_FIXTURES = fixtures_of(System.TRESERVA, FAMILY)
FIXTURES = [(System.TAKECARE, p) for p in TAKECARE_FIXTURES] + [
    (System.TRESERVA, p) for p in TRESERVA_FIXTURES
]

STATUS = {"active": "aktiv", "paused": "pausad", "stopped": "utsatt"}
BY = {
    "home-care": "hemsjukvard",
    "patient": "patient",
    "relative": "narstaende",
    "hospital": "sjukhus",
}
CHANGE = {"started": "insatt", "stopped": "utsatt", "changed": "andrad", "unchanged": "oforandrad"}
CONTEXT = {"admission": "inskrivning", "discharge": "utskrivning", "home-care": "hemsjukvard"}
NOW = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
LINES = st.one_of(st.none(), st.integers(0, 30))


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture(system, name):
    folder = (
        TAKECARE_FIXTURES[0].parent if system is System.TAKECARE else TRESERVA_FIXTURES[0].parent
    )
    return _load(folder / f"{name}.input.json")


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _bundle(family, doc):
    return json.loads(
        to_json(
            family.INBOUND.to_bundle(
                family.INBOUND.parse(
                    doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=FIXTURE_NOW,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    )


# --- golden fixtures ---------------------------------------------------------------------------


def test_there_are_enough_fixtures():
    assert len(TAKECARE_FIXTURES) >= 4
    assert len(TRESERVA_FIXTURES) >= 3


@pytest.mark.parametrize(("source", "path"), FIXTURES, ids=lambda v: getattr(v, "name", str(v)))
def test_fixture_matches_its_goldens(source, path):
    outputs = translate_fixture(source, FAMILY, _load(path))
    receiver = System.TRESERVA if source is System.TAKECARE else System.TAKECARE
    assert set(outputs) == {"fhir", receiver.value}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix


def test_large_fixture_has_more_than_a_hundred_lines():
    doc = _fixture(System.TAKECARE, "discharge-large-120-lines")
    bundle = _bundle(takecare, doc)
    (lst,) = _resources(bundle, "List")
    assert len(doc["items"]) == len(lst["entry"]) == len(_resources(bundle, "MedicationStatement"))
    assert len(doc["items"]) > 100


@pytest.mark.parametrize(
    ("family", "system", "name"),
    [
        (takecare, System.TAKECARE, "empty-list-reserve-number-dst"),
        (treserva, System.TRESERVA, "tom-lista-skyddad-identitet"),
    ],
)
def test_an_empty_list_says_nil_known(family, system, name):
    bundle = _bundle(family, _fixture(system, name))
    (lst,) = _resources(bundle, "List")
    assert "entry" not in lst
    assert lst["emptyReason"]["coding"][0] == {
        "system": LIST_EMPTY_REASON_SYSTEM,
        "code": "nilknown",
        "display": "Nil Known",
    }
    assert _resources(bundle, "MedicationStatement") == []


def test_protected_identity_never_carries_an_address():
    doc = _fixture(System.TAKECARE, "protected-identity-text-only")
    doc["patient"]["registeredAddress"] = {
        "streetAddress": "Hemlig väg 1",
        "postalCode": "621 41",
        "city": "Visby",
    }
    outputs = translate_fixture(System.TAKECARE, FAMILY, doc)
    assert "Hemlig" not in json.dumps(outputs, ensure_ascii=False)
    assert "folkbokforingsadress" not in outputs["treserva"]["brukare"]
    assert outputs["treserva"]["brukare"]["skyddadIdentitet"] is True


def test_both_02_30_of_the_dst_change_keep_their_offsets():
    for name, offset in (
        ("discharge-changes-samordningsnummer-dst", "+02:00"),
        ("empty-list-reserve-number-dst", "+01:00"),
    ):
        outputs = translate_fixture(System.TAKECARE, FAMILY, _fixture(System.TAKECARE, name))
        (lst,) = _resources(outputs["fhir"], "List")
        assert lst["date"] == f"2026-10-25T02:30:00{offset}"
        assert outputs["treserva"]["tidpunkt"] == lst["date"]


def test_a_superseded_delivery_is_still_valid_for_the_receiver():
    doc = _fixture(System.TAKECARE, "discharge-changes-samordningsnummer-dst")
    outputs = translate_fixture(System.TAKECARE, FAMILY, doc)
    newer = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert violations(treserva.SCHEMA, outputs["treserva"] | {"ersattAv": newer}) == []
    back = translate_fixture(
        System.TRESERVA, FAMILY, _fixture(System.TRESERVA, "tom-lista-skyddad-identitet")
    )
    assert violations(takecare.SCHEMA, back["takecare"] | {"supersededBy": newer}) == []


# --- properties --------------------------------------------------------------------------------


def _check_identifier(patient):
    (ident,) = patient["identifier"]
    if ident["system"] == NATIONAL_RESERVE_SYSTEM:
        assert parse_national_reserve_number(ident["value"]).value == ident["value"]
        return
    if ident["system"] == f"urn:oid:{FIXTURE_REGIONAL_RESERVE_OID}":
        assert parse_regional_reserve_number(ident["value"]).value == ident["value"]
        return
    parsed = parse_patient_identifier(ident["value"])
    assert parsed.value == ident["value"]
    expected = {
        IdentifierKind.PERSONNUMMER: PERSONNUMMER_SYSTEM,
        IdentifierKind.SAMORDNINGSNUMMER: SAMORDNINGSNUMMER_SYSTEM,
    }[parsed.kind]
    assert ident["system"] == expected


def _check_message(bundle, *, lines, list_id, version, id_system):
    Bundle.model_validate(bundle)  # the wire form parses with the R4B models
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"]["system"] == EVENT_SYSTEM
    assert header["eventCoding"]["code"] == "medication-list"
    (lst,) = _resources(bundle, "List")
    consent_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Consent"
    )
    assert header["focus"][:2] == [
        {"reference": bundle["entry"][1]["fullUrl"]},
        {"reference": consent_url},  # the basis it is shared on
    ]
    # and the case when the list names its stay (services.messaging.case)
    assert len(header["focus"]) == 2 + len(case_episodes(bundle))
    assert lst["identifier"] == [{"system": id_system, "value": list_id}]
    assert lst["extension"] == [{"url": DOCUMENT_VERSION_URL, "valuePositiveInt": version}]
    statements = _resources(bundle, "MedicationStatement")
    assert len(lst.get("entry", [])) == len(statements) == lines
    assert ("emptyReason" in lst) == (lines == 0)
    urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    for entry in lst.get("entry", []):
        statement = urls[entry["item"]["reference"]]
        assert statement["resourceType"] == "MedicationStatement"
        assert statement["subject"] == lst["subject"]
        assert statement["medicationCodeableConcept"]["text"]
        assert statement["status"] in {"active", "on-hold", "stopped"}
        assert statement["dosage"][0]["text"]
        assert statement["extension"][0]["url"] == ADMINISTERED_BY_URL
    (patient,) = _resources(bundle, "Patient")
    _check_identifier(patient)


def _treserva_rad(item):
    """What Treserva must receive for one TakeCare item."""
    d = item["dosage"]
    dosering = {"text": d["text"]}
    if "dose" in d:
        dosering["dos"] = {"varde": d["dose"]["value"], "enhet": d["dose"]["unit"]}
    if "timesPerDay" in d:
        dosering["antalPerDygn"] = d["timesPerDay"]
    if "timesOfDay" in d:
        dosering["klockslag"] = d["timesOfDay"]
    if "asNeeded" in d:
        dosering["vidBehov"] = d["asNeeded"]
    if "asNeededCondition" in d:
        renamed = {"text": "text", "snomedCode": "snomedKod"}
        dosering["vidBehovVillkor"] = {renamed[k]: v for k, v in d["asNeededCondition"].items()}
    if "maxDose" in d:
        m = d["maxDose"]
        dosering["maxDos"] = {
            "varde": m["value"],
            "enhet": m["unit"],
            "periodTimmar": m["periodHours"],
        }
    names = {
        "nplId": "nplId",
        "nplPackId": "nplPackId",
        "atcCode": "atcKod",
        "name": "namn",
        "strength": "styrka",
        "form": "form",
        "startDate": "startdatum",
        "endDate": "slutdatum",
        "reason": "orsak",
        "changeNote": "andringsnotering",
        "doseDispensed": "dosdispenserad",
    }
    rad = {sv: item[en] for en, sv in names.items() if en in item}
    if "prescriber" in item:
        renamed = {"hsaId": "hsaId", "name": "namn"}
        rad["forskrivare"] = {renamed[k]: v for k, v in item["prescriber"].items()}
    if "change" in item:
        change = item["change"]
        rad["andring"] = {"typ": CHANGE[change["type"]]}
        if "reason" in change:
            rad["andring"]["orsak"] = change["reason"]
    return rad | {
        "dosering": dosering,
        "status": STATUS[item["status"]],
        "administrerasAv": BY[item["administeredBy"]],
    }


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=NOW, lines=LINES)
def test_takecare_list_reaches_treserva_complete(rng, now, lines):
    doc = sample_takecare_medication_list(rng, now=now, lines=lines)
    assert violations(takecare.SCHEMA, doc) == []
    bundle = _bundle(takecare, doc)
    assert _bundle(takecare, doc) == bundle  # pure and deterministic
    _check_message(
        bundle,
        lines=len(doc["items"]),
        list_id=doc["listId"],
        version=doc["version"],
        id_system=TAKECARE_MEDICATION_LIST_SYSTEM,
    )
    native = treserva.to_native(bundle)
    assert violations(treserva.SCHEMA, native) == []
    assert native["meddelandeId"] == bundle["entry"][0]["resource"]["id"]
    assert (native["listaId"], native["version"]) == (doc["listId"], doc["version"])
    assert native["sammanhang"] == CONTEXT[doc["context"]]
    assert native["tidpunkt"] == doc["occurredAt"]
    assert native.get("vardtillfalleId") == doc.get("encounterId")
    assert native["enhet"] == {"hsaId": doc["unit"]["hsaId"], "namn": doc["unit"]["name"]}
    assert native["rader"] == [_treserva_rad(item) for item in doc["items"]]


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=NOW, lines=LINES)
def test_treserva_list_reaches_takecare_complete_and_back(rng, now, lines):
    doc = sample_treserva_medication_list(rng, now=now, lines=lines)
    assert violations(treserva.SCHEMA, doc) == []
    bundle = _bundle(treserva, doc)
    _check_message(
        bundle,
        lines=len(doc["rader"]),
        list_id=doc["listaId"],
        version=doc["version"],
        id_system=TRESERVA_MEDICATION_LIST_SYSTEM,
    )
    native = takecare.to_native(bundle)
    assert violations(takecare.SCHEMA, native) == []
    assert native["eventId"] == bundle["entry"][0]["resource"]["id"]
    assert (native["listId"], native["version"]) == (doc["listaId"], doc["version"])
    assert CONTEXT[native["context"]] == doc["sammanhang"]
    assert native["occurredAt"] == doc["tidpunkt"]
    assert native.get("encounterId") == doc.get("vardtillfalleId")
    assert [_treserva_rad(item) for item in native["items"]] == doc["rader"]
    # the municipality's basis travels with the list, in TakeCare's words
    assert native["consentBasis"]["scope"] == doc["samtyckesgrund"]["omfattning"]
    assert native["consentBasis"]["recipients"] == [{"unitKind": "hospital"}]
    # ...and TakeCare's document, pushed again on TakeCare's own basis (the municipality's
    # covers only the hospital), gives Treserva what it started from.
    again = treserva.to_native(
        _bundle(takecare, native | {"consentBasis": takecare_consent_basis(now)})
    )
    ignore = {"meddelandeId", "samtyckesgrund"}
    assert {k: v for k, v in again.items() if k not in ignore} == {
        k: v for k, v in doc.items() if k not in ignore
    }


@settings(max_examples=50, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=NOW)
def test_every_line_keeps_its_codes_in_fhir(rng, now):
    doc = sample_takecare_medication_list(rng, now=now, lines=5)
    bundle = _bundle(takecare, doc)
    for item, statement in zip(
        doc["items"], _resources(bundle, "MedicationStatement"), strict=True
    ):
        codings = {
            c["system"]: c["code"] for c in statement["medicationCodeableConcept"].get("coding", [])
        }
        assert codings.get(NPL_ID_SYSTEM) == item.get("nplId")
        assert codings.get(ATC_SYSTEM) == item.get("atcCode")
        dose = item["dosage"].get("dose")
        quantity = statement["dosage"][0].get("doseAndRate", [{}])[0].get("doseQuantity")
        assert (quantity is None) == (dose is None)
        if dose is not None:
            assert (quantity["value"], quantity["unit"]) == (dose["value"], dose["unit"])


# --- refusals ----------------------------------------------------------------------------------


def _violations(family, doc):
    with pytest.raises(InvalidEvent) as caught:
        family.INBOUND.parse(
            doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    return {(v.path, v.rule) for v in caught.value.violations}


def test_a_wrong_check_digit_is_refused_at_the_identifier():
    doc = _fixture(System.TAKECARE, "discharge-changes-samordningsnummer-dst")
    doc["patient"]["personalIdentityNumber"] = "191212121213"
    assert _violations(takecare, doc) == {("patient.personalIdentityNumber", "identifier")}
    rows = _fixture(System.TRESERVA, "hemsjukvard-samordningsnummer-dst")
    rows["brukare"]["personnummer"] = "19121212-1213"
    assert _violations(treserva, rows) == {("brukare.personnummer", "identifier")}


@pytest.mark.parametrize("field", ["name", "dosage", "status", "administeredBy"])
def test_a_missing_required_item_field_is_named(field):
    doc = _fixture(System.TAKECARE, "discharge-changes-samordningsnummer-dst")
    del doc["items"][1][field]
    assert _violations(takecare, doc) == {(f"items.1.{field}", "required")}


def test_a_missing_dosage_text_is_named():
    doc = _fixture(System.TRESERVA, "hemsjukvard-samordningsnummer-dst")
    del doc["rader"][0]["dosering"]["text"]
    assert _violations(treserva, doc) == {("rader.0.dosering.text", "required")}


def test_an_unknown_item_field_is_refused():
    doc = _fixture(System.TAKECARE, "admission-structured-every-text-field")
    doc["items"][0]["colour"] = "vit"
    assert _violations(takecare, doc) == {("items.0.colour", "additionalProperties")}
    rows = _fixture(System.TRESERVA, "reservnummer-textdosering")
    rows["rader"][2]["farg"] = "vit"
    assert _violations(treserva, rows) == {("rader.2.farg", "additionalProperties")}


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("items", 0, "nplId"), "1979031600002", "pattern"),
        (("items", 0, "atcCode"), "N02BE", "pattern"),
        (("items", 0, "status"), "utsatt", "enum"),
        (("items", 0, "dosage", "timesOfDay"), ["8:00"], "pattern"),
        (("version",), 0, "minimum"),
        (("context",), "inskrivning", "enum"),
    ],
)
def test_bad_values_are_named(path, value, rule):
    doc = _fixture(System.TAKECARE, "admission-structured-every-text-field")
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    found = _violations(takecare, doc)
    assert {rule_ for _, rule_ in found} == {rule}
    assert all(p.startswith(".".join(str(s) for s in path)) for p, _ in found)


def test_too_many_lines_are_refused():
    doc = _fixture(System.TAKECARE, "admission-structured-every-text-field")
    doc["items"] = doc["items"][:1] * 501
    assert _violations(takecare, doc) == {("items", "maxItems")}


def test_a_pushed_list_may_not_claim_to_be_superseded():
    doc = _fixture(System.TAKECARE, "protected-identity-text-only")
    doc["supersededBy"] = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert {p for p, _ in _violations(takecare, doc)} == {"supersededBy"}
    rows = _fixture(System.TRESERVA, "tom-lista-skyddad-identitet")
    rows["ersattAv"] = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert {p for p, _ in _violations(treserva, rows)} == {"ersattAv"}


@pytest.mark.parametrize("family", [takecare, treserva])
def test_an_incomplete_message_is_a_translation_error(family):
    doc = _fixture(System.TAKECARE, "discharge-changes-samordningsnummer-dst")
    bundle = _bundle(takecare, doc)
    no_list = copy.deepcopy(bundle)
    no_list["entry"] = [e for e in no_list["entry"] if e["resource"]["resourceType"] != "List"]
    broken_line = copy.deepcopy(bundle)
    for statement in _resources(broken_line, "MedicationStatement"):
        del statement["dosage"]
    bad_status = copy.deepcopy(bundle)
    _resources(bad_status, "MedicationStatement")[0]["status"] = "entered-in-error"
    for broken in (no_list, broken_line, bad_status):
        with pytest.raises(TranslationError):
            family.to_native(broken)
