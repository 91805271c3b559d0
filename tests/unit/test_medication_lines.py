"""Medication lines beyond free text (issue 20, item 6): vid behov with its condition and a
maximum dose per period, dose dispensing, the prescriber by HSA-id, and whether a line was
started, stopped or changed since the last list, with the reason. Both directions, from the
fixtures and as properties over the simulators' samples; and the refusals."""

import copy
import dataclasses
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID, FIXTURES
from sandbox.simulators.samples.medication_list import (
    sample_takecare_medication_list,
    sample_treserva_medication_list,
)
from sandbox.simulators.samples.people import takecare_consent_basis, treserva_samtyckesgrund
from services.adapter_takecare.families import medication_list as takecare
from services.adapter_treserva.families import medication_list as treserva
from services.messaging.dosage import AsNeededCondition, Dosage, Dose, MaxDose
from services.messaging.envelope import EventCode, System, to_json
from services.messaging.fhir_parts import TranslationError, message_bundle, refs
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.medication import (
    FOCUS,
    SENDER,
    MedicationLine,
    list_resources,
    read_medication_list,
)
from services.messaging.native import InvalidEvent
from services.messaging.prescription import LineChange, Prescriber
from services.messaging.vocabulary import (
    DOSE_DISPENSED_URL,
    IDENTIFIER_TYPE_SYSTEM,
    MEDICATION_LINE_CHANGE_SYSTEM,
    MEDICATION_LINE_CHANGE_URL,
    SNOMED_SE_VERSION,
    SNOMED_SYSTEM,
    UCUM_SYSTEM,
)

TAKECARE_DIR = FIXTURES / "takecare" / "medication-list"
TRESERVA_DIR = FIXTURES / "treserva" / "medication-list"
VID_BEHOV = "discharge-vid-behov-max-dose-dose-dispensed"
CHANGES = "discharge-stopped-changed-started-with-reasons"
HEMSJUKVARD = "hemsjukvard-vid-behov-dosdispensering-andringar"
NOW = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
ANDRING = {"started": "insatt", "stopped": "utsatt", "changed": "andrad", "unchanged": "oforandrad"}

PARSING: dict[str, Any] = {"now": FIXTURE_NOW, "regional_reserve_oid": FIXTURE_REGIONAL_RESERVE_OID}


def _input(folder, name):
    return json.loads((folder / f"{name}.input.json").read_text(encoding="utf-8"))


def _bundle(family, doc):
    return json.loads(
        to_json(family.INBOUND.to_bundle(family.INBOUND.parse(doc, **PARSING), **PARSING))
    )


def _by_url(bundle):
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def _statements(bundle):
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    ]


def _extension(resource, url):
    found = [x for x in resource.get("extension", []) if x["url"] == url]
    assert len(found) <= 1
    return found[0] if found else None


# --- vid behov and maximum dose ----------------------------------------------------------------


def test_vid_behov_with_a_condition_is_a_coded_concept_and_the_max_dose_a_ratio():
    bundle = _bundle(takecare, _input(TAKECARE_DIR, VID_BEHOV))
    with_condition, without_condition, scheduled = (s["dosage"][0] for s in _statements(bundle))
    assert with_condition["asNeededCodeableConcept"] == {
        "text": "vid smärta",
        "coding": [{"system": SNOMED_SYSTEM, "version": SNOMED_SE_VERSION, "code": "22253000"}],
    }
    assert "asNeededBoolean" not in with_condition
    assert with_condition["maxDosePerPeriod"] == {
        "numerator": {"value": 4000, "unit": "mg", "system": UCUM_SYSTEM, "code": "mg"},
        "denominator": {"value": 24, "unit": "h", "system": UCUM_SYSTEM, "code": "h"},
    }
    assert without_condition["asNeededBoolean"] is True
    assert "asNeededCodeableConcept" not in without_condition
    assert without_condition["maxDosePerPeriod"]["numerator"] == {"value": 2, "unit": "st"}
    assert scheduled["asNeededBoolean"] is False
    assert "maxDosePerPeriod" not in scheduled


def test_vid_behov_reaches_treserva_and_takecare():
    rader = treserva.to_native(_bundle(takecare, _input(TAKECARE_DIR, VID_BEHOV)))["rader"]
    assert rader[0]["dosering"]["vidBehov"] is True
    assert rader[0]["dosering"]["vidBehovVillkor"] == {
        "text": "vid smärta",
        "snomedKod": "22253000",
    }
    assert rader[0]["dosering"]["maxDos"] == {"varde": 4000, "enhet": "mg", "periodTimmar": 24}
    assert rader[1]["dosering"]["vidBehov"] is True
    assert "vidBehovVillkor" not in rader[1]["dosering"]
    assert rader[2]["dosering"]["vidBehov"] is False
    items = takecare.to_native(_bundle(treserva, _input(TRESERVA_DIR, HEMSJUKVARD)))["items"]
    assert items[0]["dosage"]["asNeededCondition"] == {"text": "vid genombrottssmärta"}
    assert items[0]["dosage"]["maxDose"] == {"value": 20, "unit": "mg", "periodHours": 24}
    assert items[1]["dosage"]["asNeededCondition"]["snomedCode"] == "14760008"


# --- dose dispensing, prescriber, change ---------------------------------------------------------


def test_dose_dispensing_is_an_extension_only_where_the_journal_said_it():
    bundle = _bundle(takecare, _input(TAKECARE_DIR, VID_BEHOV))
    values = [_extension(s, DOSE_DISPENSED_URL) for s in _statements(bundle)]
    assert [None if v is None else v["valueBoolean"] for v in values] == [False, None, True]
    rader = treserva.to_native(bundle)["rader"]
    assert [r.get("dosdispenserad") for r in rader] == [False, None, True]


def test_the_prescriber_is_one_practitioner_by_hsa_id_typed_prn():
    bundle = _bundle(takecare, _input(TAKECARE_DIR, VID_BEHOV))
    urls = _by_url(bundle)
    sources = [urls[s["informationSource"]["reference"]] for s in _statements(bundle)]
    assert [s["resourceType"] for s in sources] == ["Practitioner"] * 3
    assert sources[0] is sources[2]  # the same prescriber twice is one Practitioner
    practitioners = [r for r in urls.values() if r["resourceType"] == "Practitioner"]
    assert len(practitioners) == 2
    assert sources[0]["identifier"] == [
        {
            "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "PRN"}]},
            "system": HSA_ID_SYSTEM,
            "value": "SE2321000222-L1239",
        }
    ]
    assert sources[0]["name"] == [{"text": "Jörgen Ählström, specialistläkare"}]
    assert "name" not in sources[1]
    rader = treserva.to_native(bundle)["rader"]
    assert rader[1]["forskrivare"] == {"hsaId": "SE2321000222-L0417"}


def test_a_line_without_prescriber_names_the_unit_as_its_source():
    doc = _input(TAKECARE_DIR, VID_BEHOV)
    del doc["items"][1]["prescriber"]
    bundle = _bundle(takecare, doc)
    source = _by_url(bundle)[_statements(bundle)[1]["informationSource"]["reference"]]
    assert source["resourceType"] == "Organization"
    assert "forskrivare" not in treserva.to_native(bundle)["rader"][1]


def test_started_stopped_and_changed_lines_carry_a_coded_change_and_its_reason():
    bundle = _bundle(takecare, _input(TAKECARE_DIR, CHANGES))
    changes = [_extension(s, MEDICATION_LINE_CHANGE_URL)["extension"] for s in _statements(bundle)]
    kinds = [parts[0]["valueCoding"] for parts in changes]
    assert [(k["system"], k["code"]) for k in kinds] == [
        (MEDICATION_LINE_CHANGE_SYSTEM, "stopped"),
        (MEDICATION_LINE_CHANGE_SYSTEM, "changed"),
        (MEDICATION_LINE_CHANGE_SYSTEM, "started"),
    ]
    assert changes[0][1]["url"] == "reason"
    assert changes[0][1]["valueString"].startswith("Blödning under vårdtiden")
    assert len(changes[2]) == 1  # started without a stated reason
    rader = treserva.to_native(bundle)["rader"]
    assert [r["andring"]["typ"] for r in rader] == ["utsatt", "andrad", "insatt"]
    assert rader[1]["andring"]["orsak"].startswith("Dosen sänkt från 40 mg till 20 mg")
    assert rader[1]["andringsnotering"] == "Vikt kontrolleras två gånger i veckan"


def _on_own_basis(family, doc):
    """A delivered document its receiver sends on: on the receiver's own consent, for the
    sender's covers only the receiver (services.messaging.consent)."""
    if family is takecare:
        return doc | {"consentBasis": takecare_consent_basis(FIXTURE_NOW)}
    return doc | {"samtyckesgrund": treserva_samtyckesgrund(FIXTURE_NOW)}


@pytest.mark.parametrize(
    ("family", "folder", "name"),
    [
        (takecare, TAKECARE_DIR, VID_BEHOV),
        (takecare, TAKECARE_DIR, CHANGES),
        (treserva, TRESERVA_DIR, HEMSJUKVARD),
    ],
)
def test_a_fixture_goes_round_the_circle_unchanged(family, folder, name):
    """native → FHIR → the other journal → FHIR → the first journal's lines again."""
    other = treserva if family is takecare else takecare
    doc = _input(folder, name)
    there = _on_own_basis(other, other.to_native(_bundle(family, doc)))
    back = family.to_native(_bundle(other, there))
    lines = "items" if family is takecare else "rader"
    assert back[lines] == doc[lines]


# --- properties over the samples ---------------------------------------------------------------


def _check_line(item, statement, by_url):
    """What FHIR must hold for one TakeCare-shaped line."""
    dosage, d = statement["dosage"][0], item["dosage"]
    condition = d.get("asNeededCondition")
    if condition is not None:
        assert dosage["asNeededCodeableConcept"]["text"] == condition["text"]
        assert "asNeededBoolean" not in dosage
    else:
        assert dosage.get("asNeededBoolean") == d.get("asNeeded")
    max_dose = d.get("maxDose")
    if max_dose is None:
        assert "maxDosePerPeriod" not in dosage
    else:
        ratio = dosage["maxDosePerPeriod"]
        assert (ratio["numerator"]["value"], ratio["numerator"]["unit"]) == (
            max_dose["value"],
            max_dose["unit"],
        )
        assert (ratio["denominator"]["value"], ratio["denominator"]["code"]) == (
            max_dose["periodHours"],
            "h",
        )
    dispensed = _extension(statement, DOSE_DISPENSED_URL)
    assert (None if dispensed is None else dispensed["valueBoolean"]) == item.get("doseDispensed")
    source = by_url[statement["informationSource"]["reference"]]
    if "prescriber" in item:
        assert source["resourceType"] == "Practitioner"
        assert source["identifier"][0]["value"] == item["prescriber"]["hsaId"]
        assert source["identifier"][0]["system"] == HSA_ID_SYSTEM
    else:
        assert source["resourceType"] == "Organization"
    change = _extension(statement, MEDICATION_LINE_CHANGE_URL)
    assert (change is None) == ("change" not in item)
    if change is not None:
        parts = {p["url"]: p for p in change["extension"]}
        assert parts["type"]["valueCoding"]["code"] == item["change"]["type"]
        assert parts.get("reason", {}).get("valueString") == item["change"].get("reason")


@settings(max_examples=40, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=NOW)
def test_every_takecare_line_keeps_vid_behov_dispensing_prescriber_and_change(rng, now):
    doc = sample_takecare_medication_list(rng, now=now, lines=8)
    bundle = _bundle(takecare, doc)
    by_url = _by_url(bundle)
    for item, statement in zip(doc["items"], _statements(bundle), strict=True):
        _check_line(item, statement, by_url)


@settings(max_examples=40, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=NOW)
def test_every_treserva_line_keeps_them_on_its_way_to_takecare(rng, now):
    doc = sample_treserva_medication_list(rng, now=now, lines=8)
    bundle = _bundle(treserva, doc)
    items = takecare.to_native(bundle)["items"]
    by_url = _by_url(bundle)
    for item, rad, statement in zip(items, doc["rader"], _statements(bundle), strict=True):
        _check_line(item, statement, by_url)
        assert item.get("doseDispensed") == rad.get("dosdispenserad")
        assert ("change" in item) == ("andring" in rad)
        if "change" in item:
            assert ANDRING[item["change"]["type"]] == rad["andring"]["typ"]


def test_the_samples_hold_every_new_field():
    """Otherwise the properties above would pass over them vacuously."""
    import random

    rng = random.Random(20)
    items = [
        i
        for _ in range(20)
        for i in sample_takecare_medication_list(rng, now=FIXTURE_NOW, lines=10)["items"]
    ]
    assert any("asNeededCondition" in i["dosage"] for i in items)
    assert any("maxDose" in i["dosage"] for i in items)
    assert any(i["dosage"].get("asNeeded") is False for i in items)
    assert {i.get("doseDispensed") for i in items} == {True, False, None}
    assert any("prescriber" in i for i in items)
    assert {i["change"]["type"] for i in items if "change" in i} == set(ANDRING)


# --- refusals ----------------------------------------------------------------------------------


def _violations(family, doc):
    with pytest.raises(InvalidEvent) as caught:
        family.INBOUND.parse(doc, **PARSING)
    return {(v.path, v.rule) for v in caught.value.violations}


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("field", ["dos", "maxDos"])
def test_a_treserva_dose_that_is_no_number_is_named(value, field):
    doc = _input(TRESERVA_DIR, HEMSJUKVARD)
    doc["rader"][0]["dosering"][field]["varde"] = value
    assert _violations(treserva, doc) == {(f"rader.0.dosering.{field}.varde", "value_error")}


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_takecare_max_dose_that_is_no_number_is_named(value):
    doc = _input(TAKECARE_DIR, VID_BEHOV)
    doc["items"][0]["dosage"]["maxDose"]["value"] = value
    assert _violations(takecare, doc) == {("items.0.dosage.maxDose.value", "value_error")}


@pytest.mark.parametrize("kind", ["stopped", "changed"])
def test_a_stopped_or_changed_line_must_say_why(kind):
    doc = _input(TAKECARE_DIR, CHANGES)
    doc["items"][1]["change"] = {"type": kind}
    assert _violations(takecare, doc) == {("items.1.change.reason", "required")}
    rows = _input(TRESERVA_DIR, HEMSJUKVARD)
    rows["rader"][0]["andring"] = {"typ": ANDRING[kind]}
    assert _violations(treserva, rows) == {("rader.0.andring.orsak", "required")}


def test_a_condition_needs_vid_behov():
    doc = _input(TAKECARE_DIR, VID_BEHOV)
    del doc["items"][0]["dosage"]["asNeeded"]
    assert _violations(takecare, doc) == {("items.0.dosage.asNeeded", "required")}
    rows = _input(TRESERVA_DIR, HEMSJUKVARD)
    rows["rader"][0]["dosering"]["vidBehov"] = False
    assert _violations(treserva, rows) == {("rader.0.dosering.vidBehov", "const")}


def test_a_prescriber_needs_an_hsa_id():
    doc = _input(TAKECARE_DIR, VID_BEHOV)
    doc["items"][0]["prescriber"] = {"name": "Jörgen Ählström"}
    assert _violations(takecare, doc) == {("items.0.prescriber.hsaId", "required")}
    doc["items"][0]["prescriber"] = {"hsaId": "L1239"}
    assert _violations(takecare, doc) == {("items.0.prescriber.hsaId", "pattern")}


def _changed(bundle, change):
    broken = copy.deepcopy(bundle)
    change(_by_url(broken), _statements(broken))
    return broken


@pytest.mark.parametrize("family", [takecare, treserva])
def test_a_broken_line_in_fhir_is_a_translation_error(family):
    bundle = _bundle(takecare, _input(TAKECARE_DIR, VID_BEHOV))

    def minutes(urls, statements):
        statements[0]["dosage"][0]["maxDosePerPeriod"]["denominator"]["code"] = "min"

    def no_hsa(urls, statements):
        del urls[statements[0]["informationSource"]["reference"]]["identifier"]

    def patient_as_source(urls, statements):
        statements[0]["informationSource"] = statements[0]["subject"]

    def unknown_change(urls, statements):
        change = _extension(statements[0], MEDICATION_LINE_CHANGE_URL)
        change["extension"][0]["valueCoding"]["code"] = "paused"

    def dispensed_as_text(urls, statements):
        _extension(statements[0], DOSE_DISPENSED_URL)["valueBoolean"] = "ja"

    for change in (minutes, no_hsa, patient_as_source, unknown_change, dispensed_as_text):
        with pytest.raises(TranslationError):
            family.to_native(_changed(bundle, change))


# --- the neutral model survives FHIR, whatever the journals put in it ----------------------------

WORDS = st.from_regex(r"[A-Za-zÅÄÖåäö0-9][A-Za-zÅÄÖåäö0-9 ,.]{0,30}", fullmatch=True)
AMOUNTS = st.one_of(
    st.integers(1, 10_000), st.floats(min_value=0.001, max_value=1e6, allow_nan=False)
)
UNITS = st.sampled_from(["mg", "ml", "st", "E", "dospåse", "mikrogram", "IE"])
CONDITIONS = st.builds(
    AsNeededCondition,
    text=WORDS,
    snomed_code=st.none() | st.from_regex(r"[1-9][0-9]{5,17}", fullmatch=True),
)


@st.composite
def _dosages(draw):
    as_needed = draw(st.sampled_from([None, True, False]))
    return Dosage(
        text=draw(WORDS),
        dose=draw(st.none() | st.builds(Dose, AMOUNTS, UNITS)),
        as_needed=as_needed,
        as_needed_condition=draw(st.none() | CONDITIONS) if as_needed else None,
        max_dose=draw(st.none() | st.builds(MaxDose, AMOUNTS, UNITS, st.integers(1, 744))),
    )


LINES = st.builds(
    MedicationLine,
    name=WORDS,
    dosage=_dosages(),
    status=st.sampled_from(["active", "paused", "stopped"]),
    administered_by=st.sampled_from(["home-care", "patient", "relative", "hospital"]),
    dose_dispensed=st.sampled_from([None, True, False]),
    prescriber=st.none()
    | st.builds(
        Prescriber,
        st.from_regex(r"SE[0-9]{10}-[A-Za-z0-9]{1,8}", fullmatch=True),
        st.none() | WORDS,
    ),
    change=st.none()
    | st.builds(
        LineChange,
        st.sampled_from(["started", "stopped", "changed", "unchanged"]),
        st.none() | WORDS,
    ),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(lines=st.lists(LINES, max_size=6))
def test_what_goes_into_fhir_comes_out(lines):
    event = takecare.INBOUND.parse(_input(TAKECARE_DIR, VID_BEHOV), **PARSING)
    medication_list = dataclasses.replace(event.medication_list(), lines=tuple(lines))
    key = event.business_key()
    bundle = message_bundle(
        key=key,
        event=EventCode.MEDICATION_LIST,
        source=System.TAKECARE,
        now=FIXTURE_NOW,
        focus=[FOCUS],
        sender=SENDER,
        resources=list_resources(medication_list, refs(key)),
    )
    assert read_medication_list(json.loads(to_json(bundle))).lines == tuple(lines)
