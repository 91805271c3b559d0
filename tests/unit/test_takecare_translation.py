"""TakeCare admission → FHIR message Bundle: golden fixtures and properties."""

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import (
    FIXTURE_NOW,
    FIXTURE_REGIONAL_RESERVE_OID,
    fixtures_of,
    golden_path,
    render,
)
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.families.admission_notice import INBOUND, to_bundle
from services.messaging.envelope import EVENT_SYSTEM, EventCode, System, read_envelope, to_json
from services.messaging.fhir_parts import SECURITY_LABEL_SYSTEM
from services.messaging.native import InvalidEvent
from tests.support.translation import _translate

FIXTURES = fixtures_of(System.TAKECARE, "admission-notice")


def test_there_are_at_least_three_fixtures():
    assert len(FIXTURES) >= 3


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_translation_matches_golden_output(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    golden = golden_path(path, "fhir").read_text(encoding="utf-8")
    assert render(_translate(doc)) == golden


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_protected_identity_never_carries_the_address():
    doc = json.loads((FIXTURES[0].parent / "protected-identity.input.json").read_text())
    doc["patient"]["registeredAddress"] = {
        "streetAddress": "Hemlig väg 1",
        "postalCode": "621 41",
        "city": "Visby",
    }
    bundle = _translate(doc)
    (patient,) = _resources(bundle, "Patient")
    assert "address" not in patient
    assert "Hemlig" not in json.dumps(bundle, ensure_ascii=False)
    assert {
        "system": SECURITY_LABEL_SYSTEM,
        "code": "skyddadFolkbokforing",
        "display": "Skyddad folkbokföring",
    } in patient["meta"]["security"]


def test_missing_optional_fields_produce_no_empty_observations():
    doc = json.loads(
        (FIXTURES[0].parent / "samordningsnummer-optional-missing.input.json").read_text()
    )
    bundle = _translate(doc)
    assert _resources(bundle, "Observation") == []
    (encounter,) = _resources(bundle, "Encounter")
    assert "extension" not in encounter  # no expected discharge yet


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_every_valid_event_gives_a_complete_routable_message(seed):
    doc = sample_admission(random.Random(seed), now=datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    event = INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    bundle = to_bundle(event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    again = to_bundle(event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    assert to_json(bundle) == to_json(again)  # pure and deterministic
    data = json.loads(to_json(bundle))
    header = data["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"] == {
        "system": EVENT_SYSTEM,
        "code": EventCode.ADMISSION_NOTICE.value,
        "display": "Inskrivningsmeddelande",
    }
    env = read_envelope(to_json(bundle))
    assert env.message_id == data["entry"][0]["resource"]["id"]
    assert env.business_key is not None and env.business_key.source_event_id == doc["eventId"]
    (patient,) = _resources(data, "Patient")
    # round trip: the identifier and the name survive translation
    raw = doc["patient"].get("personalIdentityNumber") or doc["patient"]["reserveNumber"]
    assert patient["identifier"][0]["value"] == raw.replace("-", "").replace("+", "")
    assert patient["name"][0]["family"] == doc["patient"]["familyName"]
    urls = {e["fullUrl"] for e in data["entry"]}
    assert header["focus"][0]["reference"] in urls


def test_a_bad_check_digit_is_a_contract_violation_at_the_identifier():
    doc = json.loads((FIXTURES[0].parent / "personnummer-full.input.json").read_text())
    doc["patient"]["personalIdentityNumber"] = "19121212-1213"
    with pytest.raises(InvalidEvent) as err:
        INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    assert [v.path for v in err.value.violations] == ["patient.personalIdentityNumber"]


def test_a_timestamp_without_offset_is_refused():
    doc = json.loads((FIXTURES[0].parent / "personnummer-full.input.json").read_text())
    doc["encounter"]["admittedAt"] = "2026-11-20T08:40:00"
    with pytest.raises(InvalidEvent) as err:
        INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    assert any("admittedAt" in v.path for v in err.value.violations)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_native_to_fhir_to_treserva_keeps_what_home_care_needs(rng):
    from services.adapter_treserva.families.admission_notice import OUTBOUND
    from services.messaging.contracts import violations

    doc = sample_admission(rng, now=datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    notice = OUTBOUND.to_native(_translate(doc))
    assert violations(OUTBOUND.schema, notice) == []
    patient, brukare = doc["patient"], notice["brukare"]
    if "reserveNumber" in patient:
        assert brukare["reservnummer"] == patient["reserveNumber"]
        typ = {"national": "nationellt", "regional": "regionalt"}[patient["reserveNumberKind"]]
        assert brukare["reservnummerTyp"] == typ
    else:
        assert brukare["personnummer"].replace("-", "") == patient["personalIdentityNumber"]
    assert (brukare["efternamn"], brukare["fornamn"]) == (
        patient["familyName"],
        patient["givenName"],
    )
    if patient.get("protectedIdentity"):
        assert "folkbokforingsadress" not in brukare
    else:
        address = patient["registeredAddress"]
        assert brukare["folkbokforingsadress"] == {
            "gatuadress": address["streetAddress"],
            "postnummer": address["postalCode"],
            "postort": address["city"],
        }
    assert notice["vardtillfalle"]["id"] == doc["encounter"]["encounterId"]
    assert notice["vardtillfalle"]["avdelning"]["hsaId"] == doc["encounter"]["unit"]["hsaId"]
    assert datetime.fromisoformat(notice["vardtillfalle"]["inskriven"]) == datetime.fromisoformat(
        doc["encounter"]["admittedAt"]
    )
    assert notice["beraknadUtskrivning"] == doc["expectedDischargeAt"]
    assert notice["inskrivningsorsak"] == doc["admissionReason"]
    for native, treserva in (
        ("housingSituation", "boendesituation"),
        ("socialSituation", "socialSituation"),
        ("careNeedsAssessment", "nulagesbedomning"),
    ):
        assert notice[treserva] == doc.get(native)
