"""Planning information at discharge (planeringsunderlag, issue 20 item 5) on the
ready-for-discharge notice: TakeCare native → FHIR message → Treserva native keeps every field,
a protected identity keeps every phone on the hospital side, and bad input is a 422 that names
the field without repeating its value."""

import copy
import json
import random
from datetime import UTC, datetime

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID, fhir_json
from sandbox.simulators.samples.discharge import sample_discharge_readiness
from services.adapter_takecare.app import create_app
from services.adapter_takecare.families import discharge_readiness
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.families import discharge_readiness as treserva_readiness
from services.messaging.contracts import violations
from services.messaging.fhir_parts import TranslationError
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.intake import FakeIntakeStore
from services.messaging.native import InvalidEvent
from services.messaging.vocabulary import (
    ADL_ACTIVITY_SYSTEM,
    BCP47_SYSTEM,
    INTERPRETER_REQUIRED_URL,
    ISO_9999_SYSTEM,
    MUNICIPALITY_EXTENSION,
    ROLE_CODE_SYSTEM,
)

FULL = "contracts/fixtures/takecare/discharge-readiness/ready-planning-information-full.input.json"
WITHDRAWN = "contracts/fixtures/takecare/discharge-readiness/withdrawn-full.input.json"
TAKECARE = "takecare/discharge-readiness.schema.json"
TRESERVA = "treserva/discharge-readiness.schema.json"

# What Treserva must receive for each TakeCare value: written out here, not imported, so a
# wrong table in the adapter fails the test.
AKTIVITET = {
    "eating": "ata-och-dricka",
    "dressing": "kla-sig",
    "toileting": "toalettbesok",
    "mobility": "forflyttning",
    "hygiene": "personlig-hygien",
}
NIVA = {
    "independent": "klarar-sjalv",
    "needs-some-help": "behover-delvis-hjalp",
    "needs-full-help": "behover-hjalp-helt",
}
RELATION = {
    "spouse": "make-maka",
    "domestic-partner": "sambo",
    "child": "barn",
    "daughter": "dotter",
    "son": "son",
    "parent": "foralder",
    "sibling": "syskon",
    "grandchild": "barnbarn",
    "other-relative": "annan-anhorig",
    "friend": "van",
    "neighbour": "granne",
}

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)
)


def _full():
    with open(FULL, encoding="utf-8") as f:
        return json.load(f)


def _through(doc):
    inbound = discharge_readiness.INBOUND
    event = inbound.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    bundle = fhir_json(
        inbound.to_bundle(event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    )
    return bundle, treserva_readiness.OUTBOUND.to_native(bundle)


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _protect(doc):
    doc = copy.deepcopy(doc)
    doc["patient"]["protectedIdentity"] = True
    return doc


def expected_underlag(planning, *, protected):
    """Treserva's planeringsunderlag for TakeCare's planningInformation (None: none sent,
    also when a protected patient's planning held nothing but the patient's own phone,
    which stays on the hospital side)."""
    if not planning or (protected and set(planning) <= {"patientPhone"}):
        return None

    def phone(item):
        return None if protected else item.get("phone")

    contact = planning.get("permanentCareContact")
    interpreter = planning.get("interpreter")
    underlag = {
        "funktionsstatus": [
            {
                "aktivitet": AKTIVITET[s["activity"]],
                "niva": NIVA[s["level"]],
                "notering": s.get("note"),
            }
            for s in planning.get("functionalStatus", [])
        ],
        "hjalpmedel": [
            {
                "iso9999": d["isoCode"],
                "benamning": d["name"],
                "forskrivare": None
                if "prescribedBy" not in d
                else {"hsaId": d["prescribedBy"]["hsaId"], "namn": d["prescribedBy"]["name"]},
            }
            for d in planning.get("assistiveDevices", [])
        ],
        "anhoriga": [
            {"namn": k["name"], "relation": RELATION[k["relationship"]], "telefon": phone(k)}
            for k in planning.get("nextOfKin", [])
        ],
        "stallforetradare": [
            {"typ": r["role"], "namn": r["name"], "telefon": phone(r)}
            for r in planning.get("legalRepresentatives", [])
        ],
        "fastVardkontakt": None
        if contact is None
        else {"hsaId": contact["hsaId"], "namn": contact["name"], "telefon": contact.get("phone")},
        "tolk": None
        if interpreter is None
        else {"sprak": interpreter["language"], "behovs": interpreter["needed"]},
        "telefon": None if protected else planning.get("patientPhone"),
    }
    return underlag


def _phones(planning):
    found = [planning["patientPhone"]] if "patientPhone" in planning else []
    for group in ("nextOfKin", "legalRepresentatives"):
        found += [p["phone"] for p in planning.get(group, []) if "phone" in p]
    return found


# --- the round trip --------------------------------------------------------------------------


def test_every_planning_field_survives_the_trip_to_treserva():
    doc = _full()
    _, native = _through(doc)
    assert violations(TRESERVA, native) == []
    assert native["planeringsunderlag"] == expected_underlag(
        doc["planningInformation"], protected=False
    )
    underlag = native["planeringsunderlag"]
    assert len(underlag["funktionsstatus"]) == 5 and len(underlag["hjalpmedel"]) == 3
    assert underlag["telefon"] == "0706543210"
    assert underlag["tolk"] == {"sprak": "fi", "behovs": True}


def test_the_fhir_message_uses_the_standard_codes():
    bundle, _ = _through(_full())
    Bundle.model_validate(bundle)
    (patient,) = _resources(bundle, "Patient")
    assert patient["telecom"] == [{"system": "phone", "value": "0706543210"}]
    assert patient["communication"][0]["language"]["coding"][0] == {
        "system": BCP47_SYSTEM,
        "code": "fi",
    }
    assert patient["communication"][0]["preferred"] is True
    assert patient["extension"] == [{"url": INTERPRETER_REQUIRED_URL, "valueBoolean": True}]

    adl = [
        o
        for o in _resources(bundle, "Observation")
        if o["code"]["coding"][0]["system"] == ADL_ACTIVITY_SYSTEM
    ]
    assert [o["code"]["coding"][0]["code"] for o in adl] == [
        "eating", "dressing", "toileting", "mobility", "hygiene"
    ]  # fmt: skip

    requests = _resources(bundle, "DeviceRequest")
    assert [r["codeCodeableConcept"]["coding"][0]["code"] for r in requests] == [
        "120606", "0933", "18"
    ]  # fmt: skip
    assert {r["codeCodeableConcept"]["coding"][0]["system"] for r in requests} == {ISO_9999_SYSTEM}
    prescriber = next(
        e["resource"]
        for e in bundle["entry"]
        if e["fullUrl"] == requests[0]["requester"]["reference"]
    )
    assert prescriber["identifier"] == [
        {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                 "code": "PRN"}]},
            "system": HSA_ID_SYSTEM,
            "value": "SE2321000222-AT07",
        }
    ]  # fmt: skip
    assert "requester" not in requests[1]

    related = _resources(bundle, "RelatedPerson")
    kin = [r for r in related if r["relationship"][0]["coding"][0]["code"] == "NOK"]
    assert [k["relationship"][1]["coding"][0]["code"] for k in kin] == ["DAU", "SPS", "NBOR"]
    assert {k["relationship"][0]["coding"][0]["system"] for k in kin} == {ROLE_CODE_SYSTEM}

    (team,) = _resources(bundle, "CareTeam")
    assert team["participant"][0]["role"][0]["coding"][0]["code"] == "fast-vardkontakt"


def test_a_notice_without_planning_information_gives_null_and_no_extra_resources():
    doc = _full()
    del doc["planningInformation"]
    bundle, native = _through(doc)
    assert native["planeringsunderlag"] is None
    for kind in ("DeviceRequest", "RelatedPerson", "CareTeam"):
        assert _resources(bundle, kind) == []
    (patient,) = _resources(bundle, "Patient")
    assert not {"telecom", "communication", "extension"} & set(patient)


# --- protected identity ----------------------------------------------------------------------


def test_a_protected_identity_keeps_every_phone_of_the_family_on_the_hospital_side():
    doc = _protect(_full())
    bundle, native = _through(doc)
    text = json.dumps([bundle, native], ensure_ascii=False)
    for phone in _phones(doc["planningInformation"]):
        assert phone not in text
    (patient,) = _resources(bundle, "Patient")
    assert "telecom" not in patient
    assert all("telecom" not in r for r in _resources(bundle, "RelatedPerson"))
    assert violations(TRESERVA, native) == []
    assert native["planeringsunderlag"] == expected_underlag(
        doc["planningInformation"], protected=True
    )
    # the care contact's work phone is the care unit's, not the family's: it travels
    assert native["planeringsunderlag"]["fastVardkontakt"]["telefon"] == "0498-268000"


def test_treserva_ignores_phones_a_sender_put_on_a_protected_patient():
    bundle, _ = _through(_protect(_full()))
    (patient,) = _resources(bundle, "Patient")
    patient["telecom"] = [{"system": "phone", "value": "0701111111"}]
    for related in _resources(bundle, "RelatedPerson"):
        related["telecom"] = [{"system": "phone", "value": "0702222222"}]
    native = treserva_readiness.OUTBOUND.to_native(bundle)
    assert "0701111111" not in json.dumps(native) and "0702222222" not in json.dumps(native)


def test_treserva_refuses_a_phone_on_a_protected_brukare():
    _, native = _through(_full())
    native["brukare"]["skyddadIdentitet"] = True
    native["brukare"].pop("folkbokforingsadress")
    assert {v.path for v in violations(TRESERVA, native)} == {
        "planeringsunderlag.telefon",
        "planeringsunderlag.anhoriga.0.telefon",
        "planeringsunderlag.anhoriga.1.telefon",
        "planeringsunderlag.stallforetradare.0.telefon",
    }


# --- properties over the samples -------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=moments, protected=st.booleans())
def test_every_sampled_planning_survives_the_trip(rng, now, protected):
    doc = sample_discharge_readiness(rng, now=now)
    if protected:
        doc = _protect(doc)
    protected = doc["patient"].get("protectedIdentity", False)  # a sample may be protected
    assert violations(TAKECARE, doc) == []
    bundle, native = _through(doc)
    Bundle.model_validate(bundle)
    assert violations(TRESERVA, native) == []
    planning = doc.get("planningInformation")
    assert native["planeringsunderlag"] == expected_underlag(planning, protected=protected)
    if protected and planning:
        text = json.dumps(bundle, ensure_ascii=False)
        assert all(phone not in text for phone in _phones(planning))


def test_the_samples_sometimes_carry_planning_information_and_never_on_a_withdrawal():
    rng = random.Random(20)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    ready = [sample_discharge_readiness(rng, now=now) for _ in range(40)]
    assert 0 < sum("planningInformation" in d for d in ready) < 40
    withdrawn = [sample_discharge_readiness(rng, now=now, withdrawn=True) for _ in range(20)]
    assert not any("planningInformation" in d for d in withdrawn)


# --- bad input -------------------------------------------------------------------------------


def _refused(doc):
    with pytest.raises(InvalidEvent) as err:
        discharge_readiness.INBOUND.parse(
            doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    return err.value.violations


@pytest.mark.parametrize("iso", ["12345", "1206 06", "1", "12060600", "rollator", "12-06-06"])
def test_an_iso_9999_code_that_is_not_2_4_or_6_digits_is_refused(iso):
    doc = _full()
    doc["planningInformation"]["assistiveDevices"][0]["isoCode"] = iso
    found = _refused(doc)
    assert [(v.path, v.rule) for v in found] == [
        ("planningInformation.assistiveDevices.0.isoCode", "pattern")
    ]
    assert iso not in found[0].message


@pytest.mark.parametrize("phone", ["070 123 45 67", "12345", "+4670123456789012", "tel:0701234567"])
@pytest.mark.parametrize(
    "where",
    [
        ("patientPhone",),
        ("nextOfKin", 0, "phone"),
        ("legalRepresentatives", 0, "phone"),
        ("permanentCareContact", "phone"),
    ],
)
def test_a_phone_not_in_swedish_or_e164_form_is_refused(phone, where):
    doc = _full()
    target = doc["planningInformation"]
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = phone
    found = _refused(doc)
    path = ".".join(str(s) for s in ("planningInformation", *where))
    assert [(v.path, v.rule) for v in found] == [(path, "pattern")]
    assert phone not in found[0].message


def test_unknown_codes_and_a_bad_language_are_refused_by_name():
    doc = _full()
    planning = doc["planningInformation"]
    planning["functionalStatus"][0]["activity"] = "cooking"
    planning["functionalStatus"][1]["level"] = "some"
    planning["nextOfKin"][0]["relationship"] = "cousin"
    planning["legalRepresentatives"][0]["role"] = "guardian"
    planning["interpreter"]["language"] = "Finnish"
    assert {(v.path, v.rule) for v in _refused(doc)} == {
        ("planningInformation.functionalStatus.0.activity", "enum"),
        ("planningInformation.functionalStatus.1.level", "enum"),
        ("planningInformation.nextOfKin.0.relationship", "enum"),
        ("planningInformation.legalRepresentatives.0.role", "enum"),
        ("planningInformation.interpreter.language", "pattern"),
    }


def test_a_withdrawal_with_planning_information_or_an_empty_block_is_refused():
    with open(WITHDRAWN, encoding="utf-8") as f:
        doc = json.load(f)
    doc["planningInformation"] = _full()["planningInformation"]
    assert {(v.path, v.rule) for v in _refused(doc)} == {("planningInformation", "not")}
    doc = _full()
    doc["planningInformation"] = {}
    assert {(v.path, v.rule) for v in _refused(doc)} == {("planningInformation", "minProperties")}


async def test_a_bad_phone_is_a_422_naming_the_field_and_not_its_value():
    store = FakeIntakeStore()
    app = create_app(
        AdapterTakeCareSettings(),
        store=store,
        sessions=None,
        clock=lambda: datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    )
    doc = _full()
    doc["planningInformation"]["nextOfKin"][1]["phone"] = "+46 70 999 88 77"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tc",
        headers={"authorization": "Bearer sandbox-takecare-key"},
    ) as client:
        res = await client.post("/takecare/v1/discharge-readiness", json=doc)
    assert res.status_code == 422
    assert [i["expression"] for i in res.json()["issue"]] == [
        ["planningInformation.nextOfKin.1.phone"]
    ]
    assert "999" not in res.text and "Gunnar" not in res.text
    assert store.outbox == []


# --- the receiving side refuses a broken message ---------------------------------------------


def test_treserva_refuses_a_device_without_iso_code_or_a_prescriber_without_hsa_id():
    bundle, _ = _through(_full())
    request = _resources(bundle, "DeviceRequest")[0]
    prescriber_url = request["requester"]["reference"]
    prescriber = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == prescriber_url)
    prescriber["identifier"] = []
    with pytest.raises(TranslationError, match="prescriber"):
        treserva_readiness.OUTBOUND.to_native(bundle)
    request["codeCodeableConcept"]["coding"][0]["system"] = "urn:other"
    with pytest.raises(TranslationError, match="ISO 9999"):
        treserva_readiness.OUTBOUND.to_native(bundle)


def test_treserva_refuses_an_unknown_kinship_without_repeating_it():
    bundle, _ = _through(_full())
    related = _resources(bundle, "RelatedPerson")[0]
    related["relationship"][1]["coding"][0]["code"] = "Tolvansson-secret"
    with pytest.raises(TranslationError) as err:
        treserva_readiness.OUTBOUND.to_native(bundle)
    assert "Tolvansson" not in str(err.value)


def test_the_interpreter_is_added_to_the_patients_extensions_never_in_place_of_them():
    """The interpreter extension once replaced the Patient's extensions, and with them the
    municipality of residence: the readiness notice of a patient needing an interpreter was
    then unaddressable in a region of several municipalities (dead-lettered)."""
    for seed in range(60):
        doc = sample_discharge_readiness(random.Random(seed), now=FIXTURE_NOW)
        planning = doc.get("planningInformation") or {}
        if (planning.get("interpreter") or {}).get("needed"):
            break
    else:
        raise AssertionError("no sample of a patient needing an interpreter")
    event = discharge_readiness.INBOUND.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = fhir_json(
        discharge_readiness.INBOUND.to_bundle(
            event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    )
    (patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    urls = [x["url"] for x in patient["extension"]]
    assert MUNICIPALITY_EXTENSION in urls and INTERPRETER_REQUIRED_URL in urls
