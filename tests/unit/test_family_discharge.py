"""Discharge readiness (utskrivningsklar, återtag) and discharge notice (utskrivningsmeddelande):
TakeCare native → FHIR message → Treserva native. Golden fixtures, properties over the sample
generators, and precise contract violations for bad input."""

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
    fhir_json,
    fixture_inputs,
    golden_path,
    render,
    translate_fixture,
)
from sandbox.simulators.samples.discharge import (
    sample_discharge_notice,
    sample_discharge_readiness,
)
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.families import discharge_notice, discharge_readiness
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.families import discharge_notice as treserva_notice
from services.adapter_treserva.families import discharge_readiness as treserva_readiness
from services.messaging.case import case_episodes
from services.messaging.contracts import violations
from services.messaging.envelope import EVENT_SYSTEM, EventCode, System, read_envelope, to_json
from services.messaging.fhir_parts import SECURITY_LABEL_SYSTEM, TranslationError
from services.messaging.identifiers import (
    RESERVE_KINDS,
    IdentifierKind,
    identifier_from_fhir,
    parse_patient_identifier,
)
from services.messaging.native import InvalidEvent
from services.messaging.vocabulary import (
    DISCHARGE_DESTINATION_SYSTEM,
    EXPECTED_DISCHARGE_URL,
    READY_FOR_DISCHARGE_URL,
    WITHDRAWAL_REASON_URL,
)

READINESS = "discharge-readiness"
NOTICE = "discharge-notice"
FIXTURES = [
    (family, path)
    for source, family, path in fixture_inputs()
    if source is System.TAKECARE and family in (READINESS, NOTICE)
]
SECRET_STREET = "Hemliga gränd 7"
DESTINATIONS = {
    "home": "hem",
    "home-with-home-care": "hem-med-hemsjukvard",
    "short-term-care": "korttidsboende",
    "nursing-home": "sarskilt-boende",
    "other-hospital": "annat-sjukhus",
    "deceased": "avliden",
    "other": "annat",
}
INFORMATION = {
    "summary": "sammanfattning",
    "nursingNeeds": "omvardnadsbehov",
    "functionalStatus": "funktionsstatus",
    "aids": "hjalpmedel",
    "riskAssessment": "riskbedomning",
    "pendingResults": "vantandeSvar",
}

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)
)


def _fixture(family, name):
    path = next(p for f, p in FIXTURES if f == family and p.name == f"{name}.input.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _resolve(bundle, reference):
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"])


def _extension(resource, url):
    return next((x for x in resource.get("extension", []) if x["url"] == url), None)


def _inbound(family):
    return discharge_readiness.INBOUND if family == READINESS else discharge_notice.INBOUND


def _through(family, doc):
    """native → FHIR (JSON wire form) → Treserva native, the way the adapters do it."""
    inbound = _inbound(family)
    outbound = treserva_readiness.OUTBOUND if family == READINESS else treserva_notice.OUTBOUND
    event = inbound.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    bundle = fhir_json(
        inbound.to_bundle(event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    )
    return event, bundle, outbound.to_native(bundle)


def _with_protected_identity(doc):
    doc = copy.deepcopy(doc)
    doc["patient"]["protectedIdentity"] = True
    doc["patient"]["registeredAddress"] = {
        "streetAddress": SECRET_STREET,
        "postalCode": "621 41",
        "city": "Visby",
    }
    return doc


# --- golden fixtures -------------------------------------------------------------------------


@pytest.mark.parametrize("family", [READINESS, NOTICE])
def test_each_family_has_at_least_three_fixtures(family):
    assert sum(1 for f, _ in FIXTURES if f == family) >= 3


@pytest.mark.parametrize("family,path", FIXTURES, ids=lambda x: getattr(x, "name", x))
def test_translation_matches_the_golden_files(family, path):
    outputs = translate_fixture(System.TAKECARE, family, json.loads(path.read_text("utf-8")))
    assert set(outputs) == {"fhir", "treserva"}
    for suffix, doc in outputs.items():
        golden = golden_path(path, suffix)
        assert render(doc) == golden.read_text(encoding="utf-8"), golden.name
        assert json.loads(golden.read_text(encoding="utf-8")) == doc


def test_the_families_are_registered_with_both_adapters():
    assert discharge_readiness.INBOUND in takecare_families.INBOUND
    assert discharge_notice.INBOUND in takecare_families.INBOUND
    assert treserva_readiness.OUTBOUND in treserva_families.OUTBOUND
    assert treserva_notice.OUTBOUND in treserva_families.OUTBOUND
    assert treserva_readiness.OUTBOUND.path == "/api/v1/utskrivningsklar"
    assert treserva_notice.OUTBOUND.path == "/api/v1/utskrivningsmeddelanden"
    assert set(treserva_readiness.OUTBOUND.events) == {
        EventCode.READY_FOR_DISCHARGE,
        EventCode.READY_FOR_DISCHARGE_WITHDRAWN,
    }
    assert treserva_notice.OUTBOUND.events == (EventCode.DISCHARGE_NOTICE,)


def test_the_judgement_across_the_autumn_dst_change_keeps_its_offset():
    _, bundle, native = _through(READINESS, _fixture(READINESS, "ready-personnummer-full"))
    (encounter,) = _resources(bundle, "Encounter")
    judged = _extension(encounter, READY_FOR_DISCHARGE_URL)["valueDateTime"]
    assert judged == "2026-10-25T02:30:00+02:00"  # the first 02:30, before the clock went back
    assert native["bedomdUtskrivningsklar"] == judged
    assert native["skickat"] != judged  # the payment clock never starts at the send time


def test_a_withdrawal_carries_the_reason_and_the_judgement_it_withdraws():
    doc = _fixture(READINESS, "withdrawn-samordningsnummer-dst-spring")
    _, bundle, native = _through(READINESS, doc)
    (encounter,) = _resources(bundle, "Encounter")
    assert encounter["status"] == "in-progress"
    reason = _extension(encounter, WITHDRAWAL_REASON_URL)["valueString"]
    assert reason == doc["withdrawalReason"]
    assert native["typ"] == "atertag"
    assert native["aterkallelseorsak"] == doc["withdrawalReason"]
    assert native["bedomdUtskrivningsklar"] == "2026-03-29T01:59:00+01:00"
    assert native["brukare"]["samordningsnummer"] is True


def test_the_reserve_number_travels_and_the_protected_address_does_not():
    for family, name in (
        (READINESS, "reserve-number-protected-identity"),
        (NOTICE, "reserve-number-protected-identity-optional-missing"),
    ):
        _, bundle, native = _through(family, _with_protected_identity(_fixture(family, name)))
        (patient,) = _resources(bundle, "Patient")
        assert patient["identifier"][0]["value"] == "GOT2026000417"
        assert "address" not in patient
        assert {"system": SECURITY_LABEL_SYSTEM, "code": "skyddadFolkbokforing"}.items() <= (
            patient["meta"]["security"][0].items()
        )
        assert native["brukare"]["reservnummer"] == "GOT2026000417"
        assert "folkbokforingsadress" not in native["brukare"]
        assert SECRET_STREET not in json.dumps([bundle, native], ensure_ascii=False)


def test_missing_optional_fields_give_nulls_and_no_empty_resources():
    _, bundle, native = _through(
        NOTICE, _fixture(NOTICE, "reserve-number-protected-identity-optional-missing")
    )
    assert _resources(bundle, "ServiceRequest") == []
    # no responsibility after discharge: the only EpisodeOfCare is the case
    assert _resources(bundle, "EpisodeOfCare") == case_episodes(bundle)
    assert len(_resources(bundle, "Organization")) == 1
    assert len(_resources(bundle, "Observation")) == 2  # summary and medication-list-sent
    assert native["uppfoljning"] is None and native["ansvarigEnhet"] is None
    assert native["lakemedelslistaSkickad"] is False
    info = native["informationVidUtskrivning"]
    assert [k for k, v in info.items() if v is not None] == ["sammanfattning"]


def test_a_unit_named_twice_becomes_one_organization():
    _, bundle, native = _through(
        NOTICE, _fixture(NOTICE, "child-responsible-unit-same-as-follow-up")
    )
    hsa_ids = [o["identifier"][0]["value"] for o in _resources(bundle, "Organization")]
    assert sorted(hsa_ids) == ["SE2321000222-BARN", "SE2321000222-VCVI"]
    assert native["uppfoljning"]["enhet"] == native["ansvarigEnhet"]
    _, bundle, native = _through(NOTICE, _fixture(NOTICE, "samordningsnummer-transfer-dst-spring"))
    assert len(_resources(bundle, "Organization")) == 1  # follow-up on the discharging ward
    assert native["uppfoljning"]["enhet"] == native["vardtillfalle"]["avdelning"]


# --- properties over the samples -------------------------------------------------------------


def _check_message(doc, bundle, event_code):
    Bundle.model_validate(bundle)
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"]["system"] == EVENT_SYSTEM
    assert header["eventCoding"]["code"] == event_code.value
    assert [d["endpoint"] for d in header["destination"]] == [
        "urn:carebridge:system:treserva",
        "urn:carebridge:system:primary-care",
    ]
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    for entry in bundle["entry"]:  # every reference resolves inside the message
        for ref in _references(entry["resource"]):
            assert ref in urls
    env = read_envelope(json.dumps(bundle))
    assert env.business_key is not None
    assert env.business_key.source_event_id == doc["eventId"]
    (encounter,) = _resources(bundle, "Encounter")
    assert _resolve(bundle, header["focus"][0]) == encounter
    assert encounter["identifier"][0]["value"] == doc["encounter"]["encounterId"]
    assert encounter["period"]["start"] == doc["encounter"]["admittedAt"]
    (patient,) = _resources(bundle, "Patient")
    assert _resolve(bundle, encounter["subject"]) == patient
    ident = patient["identifier"][0]
    parsed = identifier_from_fhir(ident["system"], ident["value"])
    if parsed.kind in RESERVE_KINDS:
        assert parsed.value == doc["patient"]["reserveNumber"].replace("-", "").upper()
        # a regional number is never labelled national, and the reverse
        national = doc["patient"]["reserveNumberKind"] == "national"
        assert (parsed.kind is IdentifierKind.NATIONAL_RESERVE) is national
    else:
        assert parse_patient_identifier(ident["value"]) == parsed  # Luhn and date hold
    protected = doc["patient"].get("protectedIdentity", False)
    if protected:
        assert "address" not in patient
    return encounter, patient, protected


def _references(node):
    if isinstance(node, dict):
        if set(node) == {"reference"}:
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _check_brukare(doc, native, protected):
    brukare = native["brukare"]
    assert brukare["efternamn"] == doc["patient"]["familyName"]
    assert brukare["fornamn"] == doc["patient"]["givenName"]
    assert brukare["skyddadIdentitet"] is protected
    number = doc["patient"].get("personalIdentityNumber")
    if number is None:
        assert brukare["reservnummer"] == doc["patient"]["reserveNumber"]
    else:
        assert brukare["personnummer"].replace("-", "") == number.replace("-", "")
    if protected:
        assert "folkbokforingsadress" not in brukare
    elif "registeredAddress" in doc["patient"]:
        assert (
            brukare["folkbokforingsadress"]["gatuadress"]
            == (doc["patient"]["registeredAddress"]["streetAddress"])
        )


def _check_stay(doc, native, bundle):
    assert native["meddelandeId"] == bundle["entry"][0]["resource"]["id"]
    assert native["skickat"] == bundle["timestamp"]
    stay = native["vardtillfalle"]
    assert stay["id"] == doc["encounter"]["encounterId"]
    assert stay["inskriven"] == doc["encounter"]["admittedAt"]
    assert stay["avdelning"] == {
        "hsaId": doc["encounter"]["unit"]["hsaId"],
        "namn": doc["encounter"]["unit"]["name"],
    }


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=moments, withdrawn=st.booleans())
def test_every_readiness_sample_survives_the_trip_to_treserva(rng, now, withdrawn):
    doc = sample_discharge_readiness(rng, now=now, withdrawn=withdrawn)
    assert violations("takecare/discharge-readiness.schema.json", doc) == []
    event, bundle, native = _through(READINESS, doc)
    again = discharge_readiness.to_bundle(
        event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    assert to_json(again) == to_json(
        discharge_readiness.to_bundle(
            event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    )
    code = EventCode.READY_FOR_DISCHARGE_WITHDRAWN if withdrawn else EventCode.READY_FOR_DISCHARGE
    encounter, _, protected = _check_message(doc, bundle, code)
    assert encounter["status"] == "in-progress"
    judged = _extension(encounter, READY_FOR_DISCHARGE_URL)["valueDateTime"]
    assert judged == doc["judgedAt"]

    assert violations("treserva/discharge-readiness.schema.json", native) == []
    _check_brukare(doc, native, protected)
    _check_stay(doc, native, bundle)
    assert native["typ"] == ("atertag" if withdrawn else "utskrivningsklar")
    assert native["bedomdUtskrivningsklar"] == doc["judgedAt"]
    assert native["beraknadUtskrivning"] == doc.get("expectedDischargeAt")
    judged_by = doc.get("judgedBy")
    assert native["bedomdAv"] == (
        None if judged_by is None else {"hsaId": judged_by["hsaId"], "namn": judged_by["name"]}
    )
    assert native.get("aterkallelseorsak") == doc.get("withdrawalReason")
    assert ("aterkallelseorsak" in native) is withdrawn
    assert native["omvardnadsbehov"] == doc.get("careNeedsAtDischarge")
    assert native["notering"] == doc.get("note")


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(rng=st.randoms(use_true_random=False), now=moments)
def test_every_discharge_sample_survives_the_trip_to_treserva(rng, now):
    doc = sample_discharge_notice(rng, now=now)
    assert violations("takecare/discharge-notice.schema.json", doc) == []
    event, bundle, native = _through(NOTICE, doc)
    again = discharge_notice.to_bundle(
        event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    assert to_json(again) == to_json(
        discharge_notice.to_bundle(
            event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    )
    encounter, _, protected = _check_message(doc, bundle, EventCode.DISCHARGE_NOTICE)
    assert encounter["status"] == "finished"
    assert encounter["period"]["end"] == doc["dischargedAt"]
    disposition = encounter["hospitalization"]["dischargeDisposition"]["coding"][0]
    assert disposition["system"] == DISCHARGE_DESTINATION_SYSTEM
    assert disposition["code"] == doc["destination"]

    assert violations("treserva/discharge-notice.schema.json", native) == []
    _check_brukare(doc, native, protected)
    _check_stay(doc, native, bundle)
    assert native["typ"] == "utskrivningsmeddelande"
    assert native["utskriven"] == doc["dischargedAt"]
    assert native["utskrivenTill"] == DESTINATIONS[doc["destination"]]
    assert native["lakemedelslistaSkickad"] is doc["medicationListIncluded"]
    info = doc["informationAtDischarge"]
    assert native["informationVidUtskrivning"] == {
        target: info.get(source) for source, target in INFORMATION.items()
    }
    follow_up = doc.get("followUp")
    if follow_up is None:
        assert native["uppfoljning"] is None
    else:
        unit = follow_up["unit"]
        assert native["uppfoljning"] == {
            "enhet": {"hsaId": unit["hsaId"], "namn": unit["name"]},
            "tid": follow_up.get("appointmentAt"),
            "notering": follow_up.get("note"),
        }
    responsible = doc.get("responsibleUnit")
    assert native["ansvarigEnhet"] == (
        None
        if responsible is None
        else {"hsaId": responsible["hsaId"], "namn": responsible["name"]}
    )


@settings(max_examples=50, deadline=None)
@given(
    rng=st.randoms(use_true_random=False),
    now=moments,
    family=st.sampled_from([READINESS, NOTICE]),
    withdrawn=st.booleans(),
)
def test_a_protected_identity_never_gives_away_its_address(rng, now, family, withdrawn):
    if family == READINESS:
        doc = sample_discharge_readiness(rng, now=now, withdrawn=withdrawn)
    else:
        doc = sample_discharge_notice(rng, now=now)
    doc = _with_protected_identity(doc)
    _, bundle, native = _through(family, doc)
    (patient,) = _resources(bundle, "Patient")
    assert "address" not in patient
    assert native["brukare"]["skyddadIdentitet"] is True
    assert "folkbokforingsadress" not in native["brukare"]
    assert SECRET_STREET not in json.dumps([bundle, native], ensure_ascii=False)


# --- bad input -------------------------------------------------------------------------------


def _violations(family, doc):
    with pytest.raises(InvalidEvent) as err:
        _inbound(family).parse(
            doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    return {(v.path, v.rule) for v in err.value.violations}


def test_a_withdrawal_without_a_reason_names_the_missing_field():
    doc = _fixture(READINESS, "withdrawn-full")
    del doc["withdrawalReason"]
    assert _violations(READINESS, doc) == {("withdrawalReason", "required")}


def test_a_reason_on_a_plain_ready_notice_is_refused():
    doc = _fixture(READINESS, "ready-personnummer-full")
    doc["withdrawalReason"] = "Felregistrering"
    assert _violations(READINESS, doc) == {("withdrawalReason", "not")}


@pytest.mark.parametrize("family", [READINESS, NOTICE])
def test_a_bad_check_digit_is_refused_at_the_identifier(family):
    name = "ready-personnummer-full" if family == READINESS else "home-care-full-dst-autumn"
    doc = _fixture(family, name)
    doc["patient"]["personalIdentityNumber"] = "19121212-1213"
    assert _violations(family, doc) == {("patient.personalIdentityNumber", "identifier")}


@pytest.mark.parametrize(
    "family,path",
    [
        (READINESS, ("judgedAt",)),
        (READINESS, ("occurredAt",)),
        (READINESS, ("expectedDischargeAt",)),
        (NOTICE, ("dischargedAt",)),
        (NOTICE, ("encounter", "admittedAt")),
        (NOTICE, ("followUp", "appointmentAt")),
    ],
)
def test_a_time_without_offset_is_refused(family, path):
    name = "ready-personnummer-full" if family == READINESS else "home-care-full-dst-autumn"
    doc = _fixture(family, name)
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = "2026-10-25T02:30:00"  # ambiguous: twice that night in Stockholm
    found = _violations(family, doc)
    assert found and {p for p, _ in found} == {".".join(path)}


def test_a_discharge_notice_without_a_summary_or_medication_flag_is_refused():
    doc = _fixture(NOTICE, "home-care-full-dst-autumn")
    del doc["informationAtDischarge"]["summary"]
    del doc["medicationListIncluded"]
    assert _violations(NOTICE, doc) == {
        ("informationAtDischarge.summary", "required"),
        ("medicationListIncluded", "required"),
    }


def test_a_discharge_notice_with_an_unknown_destination_or_field_is_refused():
    doc = _fixture(NOTICE, "home-care-full-dst-autumn")
    doc["destination"] = "hem"
    doc["informationAtDischarge"]["medicationList"] = []
    doc["medicationListIncluded"] = "yes"
    assert _violations(NOTICE, doc) == {
        ("destination", "enum"),
        ("informationAtDischarge.medicationList", "additionalProperties"),
        ("medicationListIncluded", "type"),
    }


def test_treserva_refuses_a_message_that_lacks_what_it_needs():
    _, bundle, _ = _through(READINESS, _fixture(READINESS, "withdrawn-full"))
    (encounter,) = _resources(bundle, "Encounter")
    encounter["extension"] = [
        x for x in encounter["extension"] if x["url"] != WITHDRAWAL_REASON_URL
    ]
    with pytest.raises(TranslationError, match="withdrawal-reason"):
        treserva_readiness.to_native(bundle)
    encounter["extension"] = [
        x for x in encounter["extension"] if x["url"] == EXPECTED_DISCHARGE_URL
    ]
    with pytest.raises(TranslationError, match="ready-for-discharge"):
        treserva_readiness.to_native(bundle)

    _, bundle, _ = _through(NOTICE, _fixture(NOTICE, "home-care-full-dst-autumn"))
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] != "Observation"
        or e["resource"]["code"]["coding"][0]["code"] != "medication-list-sent"
    ]
    with pytest.raises(TranslationError, match="medication list"):
        treserva_notice.to_native(bundle)
