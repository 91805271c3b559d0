"""SIP update (samordnad individuell plan), both ways between TakeCare and Treserva: golden
fixtures, Hypothesis properties over the sample generators, and precise refusals."""

import copy
import json
import uuid
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
from sandbox.simulators.samples.people import takecare_consent_basis, treserva_samtyckesgrund
from sandbox.simulators.samples.sip_update import (
    sample_takecare_sip_update,
    sample_treserva_sip_update,
)
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.families import sip_update as takecare_sip
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.families import sip_update as treserva_sip
from services.messaging.contracts import violations
from services.messaging.envelope import EVENT_SYSTEM, EventCode, System, to_json
from services.messaging.fhir_parts import TranslationError
from services.messaging.identifiers import (
    IdentifierKind,
    identifier_from_fhir,
    parse_national_reserve_number,
    parse_patient_identifier,
    parse_regional_reserve_number,
)
from services.messaging.native import InvalidEvent
from services.messaging.sip import consent_given
from services.messaging.vocabulary import (
    CARE_PLAN_CATEGORY_SYSTEM,
    DOCUMENT_VERSION_URL,
    SIP_CONSENT_URL,
    SIP_ID_SYSTEM,
)

TAKECARE_FIXTURES = fixtures_of(System.TAKECARE, "sip-update")
TRESERVA_FIXTURES = fixtures_of(System.TRESERVA, "sip-update")
FIXTURES = [(System.TAKECARE, p) for p in TAKECARE_FIXTURES] + [
    (System.TRESERVA, p) for p in TRESERVA_FIXTURES
]
SIP_EVENTS = {
    EventCode.SIP_INVITATION,
    EventCode.SIP_CREATED,
    EventCode.SIP_UPDATED,
    EventCode.SIP_COMPLETED,
}
# Around both DST changes of 2026 in Europe/Stockholm, and an ordinary day.
NOWS = (
    datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC),
)
STAGE = st.sampled_from([None, "invitation", "created", "updated", "completed"])

# The contract's words, kept here independently of the code under test.
ROLL = {
    "patient": "patient",
    "relative": "narstaende",
    "hospital": "sjukhus",
    "primary-care": "primarvard",
    "home-care": "hemsjukvard",
    "home-help": "hemtjanst",
    "rehabilitation": "rehabilitering",
    "other": "annan",
}
STEG = {
    "invitation": "kallelse",
    "created": "upprattad",
    "updated": "uppdaterad",
    "completed": "avslutad",
}
STATUS = {"planned": "planerad", "in-progress": "pagaende", "done": "klar", "cancelled": "avbruten"}


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture(system, name):
    folder = (
        TAKECARE_FIXTURES[0].parent if system is System.TAKECARE else TRESERVA_FIXTURES[0].parent
    )
    return _load(folder / f"{name}.input.json")


def _bundle(family, doc):
    return json.loads(
        to_json(
            family.to_bundle(
                family.parse(
                    doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=FIXTURE_NOW,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    )


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _ext(resource, url):
    return next(x for x in resource.get("extension", []) if x["url"] == url)


# --- golden fixtures -----------------------------------------------------------------------


def test_fixtures_cover_every_stage_from_both_sides():
    assert len(TAKECARE_FIXTURES) >= 4
    assert len(TRESERVA_FIXTURES) >= 3
    assert {_load(p)["stage"] for p in TAKECARE_FIXTURES} == {
        "invitation",
        "created",
        "updated",
        "completed",
    }


@pytest.mark.parametrize(
    ("source", "path"), FIXTURES, ids=lambda x: getattr(x, "name", getattr(x, "value", x))
)
def test_fixture_translations_match_their_goldens(source, path):
    outputs = translate_fixture(source, "sip-update", _load(path))
    other = "treserva" if source is System.TAKECARE else "takecare"
    assert set(outputs) == {"fhir", other}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix


def test_consent_refused_still_builds_and_the_flag_is_false_and_visible():
    doc = _fixture(System.TAKECARE, "created-samordningsnummer-consent-refused")
    bundle = _bundle(takecare_sip.INBOUND, doc)
    (plan,) = _resources(bundle, "CarePlan")
    consent = _ext(plan, SIP_CONSENT_URL)["extension"]
    assert {"url": "given", "valueBoolean": False} in consent
    assert not consent_given(bundle)
    assert treserva_sip.to_native(bundle)["samtycke"]["lamnat"] is False
    given = _bundle(takecare_sip.INBOUND, _fixture(System.TAKECARE, "invitation-meeting-dst"))
    assert consent_given(given)


def test_protected_identity_never_carries_the_address():
    doc = _fixture(System.TAKECARE, "updated-reserve-number-protected")
    doc["patient"]["registeredAddress"] = {
        "streetAddress": "Hemlig väg 1",
        "postalCode": "621 41",
        "city": "Visby",
    }
    bundle = _bundle(takecare_sip.INBOUND, doc)
    assert "Hemlig" not in json.dumps(bundle, ensure_ascii=False)
    brukare = treserva_sip.to_native(bundle)["brukare"]
    assert brukare["skyddadIdentitet"] is True
    assert "folkbokforingsadress" not in brukare


def test_a_delivery_marked_superseded_still_fits_the_receivers_contract():
    newer = str(uuid.uuid4())
    for source, path in FIXTURES:
        outputs = translate_fixture(source, "sip-update", _load(path))
        if source is System.TAKECARE:
            native, schema, field = outputs["treserva"], treserva_sip.OUTBOUND.schema, "ersattAv"
        else:
            native, schema, field = (
                outputs["takecare"],
                takecare_sip.OUTBOUND.schema,
                "supersededBy",
            )
        assert violations(schema, {**native, field: newer}) == []


def test_both_adapters_register_the_family_for_every_sip_event():
    for families, path, route in (
        (takecare_families, "/api/v1/sip-updates", "sip-updates"),
        (treserva_families, "/api/v1/sip", "sip"),
    ):
        (outbound,) = [f for f in families.OUTBOUND if f.family == "sip-update"]
        assert set(outbound.events) == SIP_EVENTS
        assert outbound.path == path
        (inbound,) = [f for f in families.INBOUND if f.family == "sip-update"]
        assert inbound.route == route


# --- properties ----------------------------------------------------------------------------


def _check_message(bundle_json, source):
    Bundle.model_validate(bundle_json)  # the wire form parses with the R4B models
    header = bundle_json["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"]["system"] == EVENT_SYSTEM
    assert EventCode(header["eventCoding"]["code"]) in SIP_EVENTS
    assert header["source"]["endpoint"] == f"urn:carebridge:system:{source}"
    (plan,) = _resources(bundle_json, "CarePlan")
    consent_url = next(
        e["fullUrl"] for e in bundle_json["entry"] if e["resource"]["resourceType"] == "Consent"
    )
    assert header["focus"] == [
        {"reference": bundle_json["entry"][1]["fullUrl"]},
        {"reference": consent_url},  # the basis it is shared on
    ]
    assert plan["subject"]["reference"]
    assert plan["status"] in {"draft", "active", "completed"}
    assert plan["intent"] == "plan"
    assert plan["category"][0]["coding"][0]["system"] == CARE_PLAN_CATEGORY_SYSTEM
    assert plan["category"][0]["coding"][0]["code"] == "sip"
    assert plan["identifier"][0]["system"] == SIP_ID_SYSTEM
    assert _ext(plan, DOCUMENT_VERSION_URL)["valuePositiveInt"] >= 1
    urls = [x["url"] for x in _ext(plan, SIP_CONSENT_URL)["extension"]]
    assert {"given", "recordedAt"} <= set(urls)
    (team,) = _resources(bundle_json, "CareTeam")
    assert team["status"] == "active"
    assert plan["careTeam"] == [{"reference": _full_url(bundle_json, team)}]
    (patient,) = _resources(bundle_json, "Patient")
    ident = identifier_from_fhir(
        patient["identifier"][0]["system"], patient["identifier"][0]["value"]
    )
    if ident.kind is IdentifierKind.NATIONAL_RESERVE:
        assert parse_national_reserve_number(ident.value) == ident
    elif ident.kind is IdentifierKind.REGIONAL_RESERVE:
        assert ident.region_oid == FIXTURE_REGIONAL_RESERVE_OID
        assert parse_regional_reserve_number(ident.value).in_region(ident.region_oid) == ident
    else:
        assert parse_patient_identifier(ident.value) == ident


def _full_url(bundle_json, resource):
    return next(e["fullUrl"] for e in bundle_json["entry"] if e["resource"] is resource)


PARTICIPANT_NAMES = {
    "role": "roll",
    "name": "namn",
    "unit": "enhet",
    "hsaId": "hsaId",
    "responsibleFor": "ansvarFor",
}
ACTIVITY_NAMES = {
    "activityId": "aktivitetId",
    "description": "beskrivning",
    "responsible": "ansvarig",
    "unit": "enhet",
    "status": "status",
    "due": "senast",
}


def _enhet(unit):
    return {"hsaId": unit["hsaId"], "namn": unit["name"]}


def _swedish(item, names):
    out = {}
    for key, value in item.items():
        if key in ("role", "responsible"):
            value = ROLL[value]
        elif key == "status":
            value = STATUS[value]
        elif key == "unit":
            value = _enhet(value)
        out[names[key]] = value
    return out


ENHETSTYP = {"hospital": "sjukhus", "primary-care": "primarvard", "municipality": "kommun"}


def _samtyckesgrund(basis):
    return {
        "typ": basis["kind"],
        "registreradAv": {
            "namn": basis["recordedBy"]["name"],
            "hsaId": basis["recordedBy"]["hsaId"],
        },
        "registrerad": basis["recordedAt"],
        "omfattning": basis["scope"],
        "mottagare": [
            {"enhetstyp": ENHETSTYP[r["unitKind"]]}
            | ({"hsaId": r["hsaId"]} if "hsaId" in r else {})
            for r in basis["recipients"]
        ],
    }


def _treserva_words(doc):
    """A TakeCare SIP update in Treserva's words, by the contracts alone (no id, no patient)."""
    consent = doc["consent"]
    out = {
        "sipId": doc["sipId"],
        "version": doc["version"],
        "steg": STEG[doc["stage"]],
        "tidpunkt": doc["occurredAt"],
        "samtycke": {"lamnat": consent["given"], "registrerat": consent["recordedAt"]}
        | ({"notering": consent["note"]} if "note" in consent else {}),
        "samtyckesgrund": _samtyckesgrund(doc["consentBasis"]),
        "samordnandeEnhet": _enhet(doc["coordinatingUnit"]),
        "deltagare": [_swedish(p, PARTICIPANT_NAMES) for p in doc["participants"]],
        "aktiviteter": [_swedish(a, ACTIVITY_NAMES) for a in doc["activities"]],
    }
    if "meeting" in doc:
        out["mote"] = _swedish(
            doc["meeting"], {"start": "start", "end": "slut", "location": "plats"}
        )
    if "goals" in doc:
        out["mal"] = doc["goals"]
    if "note" in doc:
        out["notering"] = doc["note"]
    return out


def _without(doc, *keys):
    return {k: v for k, v in doc.items() if k not in keys}


@settings(max_examples=50, deadline=None, database=None)
@given(
    st.randoms(use_true_random=False),
    st.sampled_from(NOWS),
    STAGE,
    st.integers(1, 10_000),
)
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_takecare_sip_reaches_treserva_whole_and_comes_back_unchanged(rng, now, stage, version):
    doc = sample_takecare_sip_update(rng, now=now, stage=stage, version=version, consent=None)
    assert violations(takecare_sip.INBOUND.schema, doc) == []
    event = takecare_sip.INBOUND.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = takecare_sip.to_bundle(
        event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    assert to_json(bundle) == to_json(
        takecare_sip.to_bundle(
            event, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        )
    )
    data = json.loads(to_json(bundle))
    _check_message(data, "takecare")
    assert data["identifier"]["value"] == f"takecare|{doc['sipId']}|{version}"

    native = treserva_sip.OUTBOUND.to_native(data)
    assert violations(treserva_sip.OUTBOUND.schema, native) == []
    assert native["meddelandeId"] == data["entry"][0]["resource"]["id"]
    assert _without(native, "meddelandeId", "brukare") == _treserva_words(doc)
    # Treserva sends its copy on on its own basis: the hospital's covers the municipality
    native = native | {"samtyckesgrund": treserva_samtyckesgrund(now)}
    assert (
        treserva_sip.INBOUND.parse(
            native, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
        ).brukare.info()
        == event.patient.info()
    )

    # and back: Treserva's copy, sent on unchanged, gives TakeCare the same SIP again
    again = json.loads(
        to_json(
            treserva_sip.to_bundle(
                treserva_sip.INBOUND.parse(
                    native, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=now,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    )
    _check_message(again, "treserva")
    home = takecare_sip.OUTBOUND.to_native(again)
    assert violations(takecare_sip.OUTBOUND.schema, home) == []
    ignore = ("eventId", "patient", "consentBasis")
    assert _without(home, *ignore) == _without(doc, *ignore)
    assert home["consentBasis"]["recipients"] == [{"unitKind": "hospital"}]
    assert (
        takecare_sip.INBOUND.parse(
            home | {"consentBasis": doc["consentBasis"]},
            now=FIXTURE_NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        ).patient.info()
        == event.patient.info()
    )


@settings(max_examples=50, deadline=None, database=None)
@given(
    st.randoms(use_true_random=False),
    st.sampled_from(NOWS),
    STAGE,
    st.integers(1, 10_000),
)
@pytest.mark.timeout(120)
def test_treserva_sip_reaches_takecare_whole(rng, now, stage, version):
    doc = sample_treserva_sip_update(rng, now=now, stage=stage, version=version, consent=None)
    assert violations(treserva_sip.INBOUND.schema, doc) == []
    event = treserva_sip.INBOUND.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    data = json.loads(
        to_json(
            treserva_sip.to_bundle(
                event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
            )
        )
    )
    _check_message(data, "treserva")
    assert data["identifier"]["value"] == f"treserva|{doc['sipId']}|{version}"

    native = takecare_sip.OUTBOUND.to_native(data)
    assert violations(takecare_sip.OUTBOUND.schema, native) == []
    assert native["eventId"] == data["entry"][0]["resource"]["id"]
    assert native["consentBasis"]["recipients"] == [{"unitKind": "hospital"}]
    assert (
        takecare_sip.INBOUND.parse(
            native | {"consentBasis": takecare_consent_basis(now)},
            now=FIXTURE_NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        ).patient.info()
        == event.brukare.info()
    )
    assert _treserva_words(native) == _without(doc, "meddelandeId", "brukare")


# --- refusals ------------------------------------------------------------------------------


def _refused(family, doc):
    with pytest.raises(InvalidEvent) as caught:
        family.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    return {(v.path, v.rule) for v in caught.value.violations}


def test_missing_consent_is_refused_naming_it():
    doc = _fixture(System.TAKECARE, "invitation-meeting-dst")
    del doc["consent"]
    assert _refused(takecare_sip.INBOUND, doc) == {("consent", "required")}
    brukare_doc = _fixture(System.TRESERVA, "uppdaterad-aktiviteter-dst")
    del brukare_doc["samtycke"]
    assert _refused(treserva_sip.INBOUND, brukare_doc) == {("samtycke", "required")}


def test_consent_without_its_time_is_refused():
    doc = _fixture(System.TAKECARE, "created-samordningsnummer-consent-refused")
    del doc["consent"]["recordedAt"]
    assert _refused(takecare_sip.INBOUND, doc) == {("consent.recordedAt", "required")}


def test_wrong_check_digit_is_refused_at_the_identifier():
    doc = _fixture(System.TAKECARE, "completed-optional-missing")
    doc["patient"]["personalIdentityNumber"] = "201701012394"
    assert _refused(takecare_sip.INBOUND, doc) == {("patient.personalIdentityNumber", "identifier")}
    brukare_doc = _fixture(System.TRESERVA, "uppdaterad-aktiviteter-dst")
    brukare_doc["brukare"]["personnummer"] = "19121212-1213"
    assert _refused(treserva_sip.INBOUND, brukare_doc) == {("brukare.personnummer", "identifier")}


def test_unknown_stage_is_refused():
    doc = _fixture(System.TAKECARE, "completed-optional-missing")
    doc["stage"] = "cancelled"
    assert _refused(takecare_sip.INBOUND, doc) == {("stage", "enum")}
    brukare_doc = _fixture(System.TRESERVA, "avslutad-reservnummer-skyddad")
    brukare_doc["steg"] = "makulerad"
    assert _refused(treserva_sip.INBOUND, brukare_doc) == {("steg", "enum")}


def test_an_invitation_needs_its_meeting():
    doc = _fixture(System.TAKECARE, "invitation-meeting-dst")
    del doc["meeting"]
    assert _refused(takecare_sip.INBOUND, doc) == {("meeting", "required")}


def test_a_meeting_that_ends_before_it_starts_is_refused():
    doc = _fixture(System.TAKECARE, "invitation-meeting-dst")
    doc["meeting"]["end"] = "2026-10-25T02:30:00+02:00"  # an hour before 02:30+01:00
    paths = {path for path, _ in _refused(takecare_sip.INBOUND, doc)}
    assert paths == {"meeting"}


def test_activity_ids_must_be_unique():
    doc = _fixture(System.TRESERVA, "uppdaterad-aktiviteter-dst")
    doc["aktiviteter"][1]["aktivitetId"] = "A1"
    assert {path for path, _ in _refused(treserva_sip.INBOUND, doc)} == {""}


def test_a_relative_has_no_hsa_id_or_unit():
    doc = _fixture(System.TAKECARE, "invitation-meeting-dst")
    doc["participants"][1]["hsaId"] = "SE2321000222-P7Q1"
    assert _refused(takecare_sip.INBOUND, doc) == {("participants.1", "not")}


def test_superseded_marks_from_a_journal_are_refused():
    doc = _fixture(System.TAKECARE, "completed-optional-missing")
    doc["supersededBy"] = str(uuid.uuid4())
    assert {path for path, _ in _refused(takecare_sip.INBOUND, doc)} == {"supersededBy"}
    brukare_doc = _fixture(System.TRESERVA, "avslutad-reservnummer-skyddad")
    brukare_doc["ersattAv"] = str(uuid.uuid4())
    assert {path for path, _ in _refused(treserva_sip.INBOUND, brukare_doc)} == {"ersattAv"}


@pytest.mark.parametrize("kind", ["CareTeam", "Patient", "Organization"])
def test_a_message_missing_a_part_is_a_translation_error(kind):
    bundle = _bundle(takecare_sip.INBOUND, _fixture(System.TAKECARE, "invitation-meeting-dst"))
    broken = copy.deepcopy(bundle)
    broken["entry"] = [e for e in broken["entry"] if e["resource"]["resourceType"] != kind]
    with pytest.raises(TranslationError):
        treserva_sip.to_native(broken)


def test_a_message_without_consent_is_a_translation_error():
    bundle = _bundle(takecare_sip.INBOUND, _fixture(System.TAKECARE, "invitation-meeting-dst"))
    (plan,) = _resources(bundle, "CarePlan")
    plan["extension"] = [x for x in plan["extension"] if x["url"] != SIP_CONSENT_URL]
    assert not consent_given(bundle)
    with pytest.raises(TranslationError):
        treserva_sip.to_native(bundle)
