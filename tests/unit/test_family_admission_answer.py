"""The municipality's answer to an admission notice (svar på inskrivningsmeddelande), Treserva →
TakeCare: golden fixtures, the round trip, the catalogue, precise refusals (422 naming the
field, never the value) and the Treserva simulator's opt-in automatic answer."""

import json
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import (
    FIXTURE_NOW,
    FIXTURE_REGIONAL_RESERVE_OID,
    fixtures_of,
    golden_path,
    refused_of,
    render,
    translate_fixture,
)
from sandbox.simulators import takecare as takecare_sim
from sandbox.simulators import treserva as treserva_sim
from sandbox.simulators.journal import JournalState, create_api_app
from sandbox.simulators.samples.admission_answer import sample_treserva_admission_answer
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.families import admission_answer as takecare_answer
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.app import create_app
from services.adapter_treserva.families import admission_answer as treserva_answer
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.admission_answer import MUNICIPAL_SERVICES, read_answer
from services.messaging.case import case_episodes
from services.messaging.contracts import violations
from services.messaging.envelope import EventCode, System, read_envelope, to_json
from services.messaging.families import destinations, family_of, may_send
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore
from services.messaging.native import InvalidEvent
from services.messaging.vocabulary import ANSWERS_MESSAGE_URL, MUNICIPAL_SERVICE_SYSTEM
from services.router.routing.domain import RetryPolicy, default_policies

FIXTURES = fixtures_of(System.TRESERVA, "admission-answer")
REFUSED = refused_of(System.TRESERVA, "admission-answer")
# The contract's code list, kept here independently of the code under test.
CODES = {
    "hemtjanst",
    "hemsjukvard",
    "sarskilt-boende",
    "korttidsboende",
    "dagverksamhet",
    "trygghetslarm",
}


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture(name):
    return _load(FIXTURES[0].parent / f"{name}.input.json")


def _bundle(doc, now=FIXTURE_NOW):
    family = treserva_answer.INBOUND
    event = family.parse(doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    bundle = family.to_bundle(event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    return json.loads(to_json(bundle))


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


# --- golden fixtures and the round trip ------------------------------------------------------


def test_fixtures_cover_no_services_protected_identity_and_a_refusal():
    assert len(FIXTURES) >= 3 and REFUSED
    docs = [_load(p) for p in FIXTURES]
    assert any(d["insatser"] == [] for d in docs)
    assert any(d["brukare"]["skyddadIdentitet"] for d in docs)
    assert any("hsaId" not in d["kontaktperson"] for d in docs)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_translations_match_their_goldens(path):
    outputs = translate_fixture(System.TRESERVA, "admission-answer", _load(path))
    assert set(outputs) == {"fhir", "takecare"}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix


def test_the_round_trip_keeps_services_contact_notice_and_stay():
    doc = _fixture("hemtjanst-hemsjukvard-kontakt-med-hsa")
    bundle = _bundle(doc)
    native = takecare_answer.to_native(bundle)
    assert violations("takecare/admission-answer.schema.json", native) == []
    assert native["answersMessageId"] == doc["inskrivningsmeddelandeId"]
    assert native["encounterId"] == doc["vardtillfalleId"]
    assert native["eventId"] == bundle["entry"][0]["resource"]["id"]
    assert [(s["code"], s.get("since")) for s in native["services"]] == [
        (i["insats"], i.get("sedan")) for i in doc["insatser"]
    ]
    k = doc["kontaktperson"]
    assert native["contactPerson"] == {
        "name": k["namn"],
        "role": k["roll"],
        "phone": k["telefon"],
        "hsaId": k["hsaId"],
    }
    assert native["patient"]["personalIdentityNumber"] == doc["brukare"]["personnummer"].replace(
        "-", ""
    )
    assert native["municipalUnit"] == {"hsaId": doc["enhet"]["hsaId"], "name": doc["enhet"]["namn"]}


def test_the_message_names_the_notice_without_being_a_technical_response():
    bundle = _bundle(_fixture("hemtjanst-hemsjukvard-kontakt-med-hsa"))
    env = read_envelope(json.dumps(bundle))
    # a response would be taken for a receipt and refused on the inbound topic
    assert env.response_to is None and env.event_code == "admission-answer"
    header = bundle["entry"][0]["resource"]
    (ext,) = [x for x in header["extension"] if x["url"] == ANSWERS_MESSAGE_URL]
    assert ext["valueIdentifier"]["value"] == "urn:uuid:e5d2a974-583e-5a64-bfeb-59d4f86badc7"
    assert [d["endpoint"] for d in header["destination"]] == ["urn:carebridge:system:takecare"]
    # the case (services.messaging.case) is an EpisodeOfCare of its own kind, no service
    episodes = [e for e in _resources(bundle, "EpisodeOfCare") if e not in case_episodes(bundle)]
    assert len(case_episodes(bundle)) == 1
    assert [e["type"][0]["coding"][0]["system"] for e in episodes] == [MUNICIPAL_SERVICE_SYSTEM] * 3
    assert all(e["status"] == "active" for e in episodes)


def test_protected_identity_never_carries_the_address():
    doc = _fixture("sarskilt-boende-reservnummer-skyddad")
    bundle = _bundle(doc)
    assert "address" not in _resources(bundle, "Patient")[0]
    patient = takecare_answer.to_native(bundle)["patient"]
    assert patient["protectedIdentity"] is True and "registeredAddress" not in patient
    assert patient["reserveNumberKind"] == "regional"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_sample_answer_survives_the_round_trip(seed):
    now = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
    doc = sample_treserva_admission_answer(random.Random(seed), now=now)
    assert violations(treserva_answer.INBOUND.schema, doc) == []
    event = treserva_answer.INBOUND.parse(
        doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = json.loads(
        to_json(
            treserva_answer.to_bundle(
                event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
            )
        )
    )
    assert read_answer(bundle) == event.answer(FIXTURE_REGIONAL_RESERVE_OID)
    native = takecare_answer.to_native(bundle)
    assert violations(takecare_answer.OUTBOUND.schema, native) == []
    assert {s["code"] for s in native["services"]} <= CODES


def test_a_message_without_the_answered_notice_is_a_translation_error():
    bundle = _bundle(_fixture("inga-insatser-samordningsnummer"))
    del bundle["entry"][0]["resource"]["extension"]
    with pytest.raises(TranslationError, match="answers-message"):
        takecare_answer.to_native(bundle)


def test_an_unknown_service_code_in_the_message_is_a_translation_error_naming_no_value():
    bundle = _bundle(_fixture("hemtjanst-hemsjukvard-kontakt-med-hsa"))
    _resources(bundle, "EpisodeOfCare")[0]["type"][0]["coding"][0]["code"] = "Tolvansson"
    with pytest.raises(TranslationError) as exc:
        takecare_answer.to_native(bundle)
    assert "Tolvansson" not in str(exc.value) and "EpisodeOfCare.type" in str(exc.value)


# --- refusals --------------------------------------------------------------------------------


def test_a_service_named_twice_is_refused():
    doc = _fixture("hemtjanst-hemsjukvard-kontakt-med-hsa")
    doc["insatser"].append({"insats": "hemtjanst"})
    with pytest.raises(InvalidEvent):
        treserva_answer.INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=None)


@pytest.fixture
async def adapter(sessions):
    app = create_app(
        AdapterTreservaSettings(),
        store=FakeIntakeStore(),
        sessions=sessions,
        clock=lambda: FIXTURE_NOW,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://a",
        headers={"authorization": "Bearer sandbox-treserva-key"},
    ) as c:
        yield c


async def test_the_adapter_takes_an_answer_and_refuses_a_bad_one_naming_fields_not_values(
    adapter,
):
    good = await adapter.post(
        "/treserva/v1/svar-inskrivningsmeddelanden",
        json=_fixture("hemtjanst-hemsjukvard-kontakt-med-hsa"),
    )
    assert good.status_code == 202
    doc = _fixture("hemtjanst-hemsjukvard-kontakt-med-hsa")
    doc["kontaktperson"]["telefon"] = "ring Tolvan"
    doc["brukare"]["personnummer"] = "19121212-1213"  # wrong check digit
    res = await adapter.post("/treserva/v1/svar-inskrivningsmeddelanden", json=doc)
    assert res.status_code == 422
    paths = {p for i in res.json()["issue"] for p in i["expression"]}
    assert "kontaktperson.telefon" in paths
    assert "Tolvan" not in res.text and "19121212" not in res.text


# --- the catalogue, the adapters and the router -----------------------------------------------


def test_the_catalogue_routes_the_answer_from_treserva_to_takecare_only():
    family = family_of("admission-answer")
    assert family is not None and not family.versioned
    assert destinations("admission-answer", "treserva") == (System.TAKECARE,)
    assert destinations("admission-answer", "takecare") == ()
    assert may_send(System.TRESERVA, "admission-answer")
    assert not may_send(System.TAKECARE, "admission-answer")
    # the router's policies come from the catalogue: no router edit for a new family
    policies = default_policies(
        admission_confirmation_deadline=timedelta(minutes=5),
        confirmation_deadline=timedelta(minutes=10),
        retry=RetryPolicy(1.0, 60.0, 5, 3600.0),
    )
    assert policies[EventCode.ADMISSION_ANSWER.value].confirmation_deadline == timedelta(minutes=10)


def test_both_adapters_register_the_family():
    (inbound,) = [f for f in treserva_families.INBOUND if f.family == "admission-answer"]
    assert inbound.route == "svar-inskrivningsmeddelanden"
    (outbound,) = [f for f in takecare_families.OUTBOUND if f.family == "admission-answer"]
    assert outbound.events == (EventCode.ADMISSION_ANSWER,)
    assert outbound.path == "/api/v1/admission-answers"
    assert set(MUNICIPAL_SERVICES) == CODES


# --- the simulators ----------------------------------------------------------------------------


async def test_the_takecare_simulator_stores_an_answer():
    state = JournalState()
    api = create_api_app(
        state,
        takecare_sim.spec(takecare_sim.TakeCareSimSettings()),
        receipt_transport=httpx.MockTransport(lambda r: httpx.Response(202, json={})),
    )
    native = takecare_answer.to_native(_bundle(_fixture("inga-insatser-samordningsnummer")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://t",
        headers={"authorization": "Bearer sandbox-takecare-api-key"},
    ) as client:
        res = await client.post(
            "/api/v1/admission-answers",
            json=native,
            headers={"idempotency-key": native["eventId"]},
        )
    assert res.status_code == 202 and state.stats["stored"] == 1


def _notice(typ="inskrivningsmeddelande"):
    return {
        "meddelandeId": "e5d2a974-583e-5a64-bfeb-59d4f86badc7",
        "typ": typ,
        "vardtillfalle": {"id": "VT-889301"},
        "brukare": _fixture("hemtjanst-hemsjukvard-kontakt-med-hsa")["brukare"],
    }


async def test_the_treserva_simulator_answers_a_new_admission_notice_when_asked_to():
    posted = []

    def intake(request):
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(202, json={"messageId": "m"})

    sim_settings = treserva_sim.TreservaSimSettings(answer_admissions=True, answer_delay_s=0)
    state = JournalState()
    answer = treserva_sim.answering(
        sim_settings, state, rng=random.Random(3), transport=httpx.MockTransport(intake)
    )
    kind = next(k for k in treserva_sim.KINDS if k.path == "inskrivningsmeddelanden")
    await answer(kind, _notice("inskrivningsmeddelande-makulerat"))
    assert posted == []
    await answer(kind, _notice())
    ((path, doc),) = posted
    assert path == "/treserva/v1/svar-inskrivningsmeddelanden"
    assert violations(treserva_answer.INBOUND.schema, doc) == []
    assert doc["inskrivningsmeddelandeId"] == _notice()["meddelandeId"]
    assert doc["vardtillfalleId"] == "VT-889301"
    assert state.stats["emitted"] == 1


def test_the_treserva_simulator_does_not_answer_by_default():
    sim_settings = treserva_sim.TreservaSimSettings()
    assert sim_settings.answer_admissions is False
    assert treserva_sim.spec(sim_settings).after_store is None
    assert "admission-answer" in treserva_sim.EMITTERS
