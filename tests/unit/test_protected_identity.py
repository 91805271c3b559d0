"""Skyddad folkbokföring: a patient's registered address never leaves the hospital side. Every
TakeCare fixture of a protected patient, given an address as well, is translated to FHIR and
on to Treserva's and primary care's documents: no street, postal code or city survives, and
the FHIR Patient carries the security label instead."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import services.adapter_takecare.families as takecare_families
import services.adapter_treserva.families as treserva_families
from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from services.messaging import family_modules
from services.messaging.envelope import to_json
from services.messaging.fhir_parts import PROTECTED_IDENTITY

pytestmark = pytest.mark.security

FIXTURES = Path(__file__).resolve().parents[2] / "contracts" / "fixtures" / "takecare"
PROTECTED = sorted(
    p for p in FIXTURES.glob("*/*.input.json") if '"protectedIdentity": true' in p.read_text()
)
ADDRESS = {"streetAddress": "Hemliga gränd 7", "postalCode": "621 99", "city": "Lärbro"}
NOW = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)


def patient_of(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict):
        if doc.get("protectedIdentity") is True:
            return doc
        for value in doc.values():
            found = patient_of(value)
            if found:
                return found
    if isinstance(doc, list):
        for value in doc:
            found = patient_of(value)
            if found:
                return found
    return {}


def test_there_are_protected_fixtures_of_every_hospital_family():
    assert {p.parent.name for p in PROTECTED} >= {
        "admission-notice",
        "discharge-readiness",
        "discharge-notice",
        "medication-list",
        "sip-update",
    }


@pytest.mark.parametrize("fixture", PROTECTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_address_of_a_protected_patient_is_stripped(fixture):
    inbound = {f.family: f for f in family_modules.inbound(takecare_families)}[fixture.parent.name]
    doc = json.loads(fixture.read_text())
    patient_of(doc)["registeredAddress"] = copy.deepcopy(ADDRESS)
    event = inbound.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )  # accepted: the address is there to be stripped
    bundle = json.loads(
        to_json(
            inbound.to_bundle(event, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
        )
    )
    text = json.dumps(bundle, ensure_ascii=False)
    for part in ADDRESS.values():
        assert part not in text
    (patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert "address" not in patient
    assert PROTECTED_IDENTITY in {s["code"] for s in patient["meta"]["security"]}
    for outbound in family_modules.outbound(treserva_families):
        if outbound.family == fixture.parent.name:
            native = json.dumps(outbound.to_native(bundle), ensure_ascii=False)
            assert not any(part in native for part in ADDRESS.values())


def test_an_unprotected_patients_address_is_kept():
    """The control: the same address on an unprotected patient does reach the message."""
    inbound = {f.family: f for f in family_modules.inbound(takecare_families)}["admission-notice"]
    doc = json.loads((FIXTURES / "admission-notice" / "protected-identity.input.json").read_text())
    patient_of(doc)["registeredAddress"] = copy.deepcopy(ADDRESS)
    doc["patient"]["protectedIdentity"] = False
    text = to_json(
        inbound.to_bundle(
            inbound.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID),
            now=NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )
    )
    assert ADDRESS["streetAddress"] in text
