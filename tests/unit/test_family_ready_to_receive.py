"""The municipality can receive the patient (kan ta emot), Treserva → TakeCare: golden fixtures,
the round trip, the catalogue, refusals naming the field and never the value, and the Treserva
simulator's opt-in automatic message after a ready-for-discharge notice."""

import json
import random
from datetime import UTC, date, datetime

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
from sandbox.simulators.samples.ready_to_receive import sample_treserva_ready_to_receive
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.families import ready_to_receive as takecare_ready
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.app import create_app
from services.adapter_treserva.families import ready_to_receive as treserva_ready
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.case import case_episodes
from services.messaging.contracts import violations
from services.messaging.envelope import EventCode, System, read_envelope, to_json
from services.messaging.families import destinations, may_send
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore
from services.messaging.ready_to_receive import read_ready_to_receive

FIXTURES = fixtures_of(System.TRESERVA, "ready-to-receive")
NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture(name):
    return _load(FIXTURES[0].parent / f"{name}.input.json")


def _bundle(doc, now=FIXTURE_NOW):
    family = treserva_ready.INBOUND
    event = family.parse(doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    return json.loads(
        to_json(family.to_bundle(event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID))
    )


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_translations_match_their_goldens(path):
    outputs = translate_fixture(System.TRESERVA, "ready-to-receive", _load(path))
    assert set(outputs) == {"fhir", "takecare"}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix
    assert refused_of(System.TRESERVA, "ready-to-receive")


def test_the_round_trip_keeps_the_date_the_stay_and_the_answered_notice():
    doc = _fixture("utskrivningsklar-besvarad")
    bundle = _bundle(doc)
    native = takecare_ready.to_native(bundle)
    assert native["canReceiveFrom"] == doc["kanTaEmotFran"]
    assert native["encounterId"] == doc["vardtillfalleId"]
    assert native["answersMessageId"] == doc["svarPaMeddelandeId"]
    (episode,) = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "EpisodeOfCare"
        and e["resource"] not in case_episodes(bundle)
    ]
    assert episode["status"] == "planned" and episode["period"] == {"start": "2026-11-23"}
    env = read_envelope(json.dumps(bundle))
    assert env.response_to is None and env.event_code == EventCode.READY_TO_RECEIVE.value
    without = takecare_ready.to_native(_bundle(_fixture("utan-svar-skyddad-identitet")))
    assert "answersMessageId" not in without
    assert without["patient"]["protectedIdentity"] is True
    assert "registeredAddress" not in without["patient"]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_sample_survives_the_round_trip(seed):
    doc = sample_treserva_ready_to_receive(random.Random(seed), now=NOW)
    assert violations(treserva_ready.INBOUND.schema, doc) == []
    event = treserva_ready.INBOUND.parse(
        doc, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = _bundle(doc, now=NOW)
    assert read_ready_to_receive(bundle) == event.ready_to_receive(FIXTURE_REGIONAL_RESERVE_OID)
    assert violations(takecare_ready.OUTBOUND.schema, takecare_ready.to_native(bundle)) == []
    assert date.fromisoformat(doc["kanTaEmotFran"]) >= date(2026, 11, 20)


def test_a_message_without_the_date_is_a_translation_error():
    bundle = _bundle(_fixture("utskrivningsklar-besvarad"))
    for entry in bundle["entry"]:
        entry["resource"].pop("period", None)
    with pytest.raises(TranslationError, match=r"period\.start"):
        takecare_ready.to_native(bundle)


def test_the_catalogue_and_both_adapters():
    assert destinations("ready-to-receive", "treserva") == (System.TAKECARE,)
    assert not may_send(System.TAKECARE, "ready-to-receive")
    (inbound,) = [f for f in treserva_families.INBOUND if f.family == "ready-to-receive"]
    assert inbound.route == "kan-ta-emot"
    (outbound,) = [f for f in takecare_families.OUTBOUND if f.family == "ready-to-receive"]
    assert outbound.path == "/api/v1/ready-to-receive"
    assert outbound.events == (EventCode.READY_TO_RECEIVE,)


async def test_the_adapter_refuses_a_bad_date_naming_the_field_not_the_value(sessions):
    app = create_app(
        AdapterTreservaSettings(), store=FakeIntakeStore(), sessions=sessions, clock=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://a",
        headers={"authorization": "Bearer sandbox-treserva-key"},
    ) as client:
        good = await client.post(
            "/treserva/v1/kan-ta-emot", json=_fixture("utskrivningsklar-besvarad")
        )
        doc = _fixture("utskrivningsklar-besvarad")
        doc["kanTaEmotFran"] = "på måndag, Tolvan"
        bad = await client.post("/treserva/v1/kan-ta-emot", json=doc)
    assert good.status_code == 202
    assert bad.status_code == 422
    assert {p for i in bad.json()["issue"] for p in i["expression"]} == {"kanTaEmotFran"}
    assert "Tolvan" not in bad.text


async def test_the_treserva_simulator_says_it_can_receive_after_a_readiness_notice_when_asked():
    posted = []

    def intake(request):
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(202, json={"messageId": "m"})

    sim = treserva_sim.TreservaSimSettings(ready_to_receive=True, ready_to_receive_delay_s=0)
    after_store = treserva_sim.answering(
        sim, JournalState(), rng=random.Random(2), transport=httpx.MockTransport(intake)
    )
    kinds = {k.path: k for k in treserva_sim.KINDS}
    notice = {
        "meddelandeId": "f17ef11a-5acf-5382-a6cb-f9f0af5b8493",
        "typ": "utskrivningsklar",
        "vardtillfalle": {"id": "VT-889301"},
        "brukare": _fixture("utskrivningsklar-besvarad")["brukare"],
    }
    await after_store(kinds["utskrivningsklar"], {**notice, "typ": "atertag"})
    assert posted == []
    await after_store(kinds["utskrivningsklar"], notice)
    ((path, doc),) = posted
    assert path == "/treserva/v1/kan-ta-emot"
    assert violations(treserva_ready.INBOUND.schema, doc) == []
    assert doc["svarPaMeddelandeId"] == notice["meddelandeId"]
    assert treserva_sim.TreservaSimSettings().ready_to_receive is False


async def test_the_takecare_simulator_stores_it():
    state = JournalState()
    api = create_api_app(
        state,
        takecare_sim.spec(takecare_sim.TakeCareSimSettings()),
        receipt_transport=httpx.MockTransport(lambda r: httpx.Response(202, json={})),
    )
    native = takecare_ready.to_native(_bundle(_fixture("utskrivningsklar-besvarad")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://t",
        headers={"authorization": "Bearer sandbox-takecare-api-key"},
    ) as client:
        res = await client.post(
            "/api/v1/ready-to-receive", json=native, headers={"idempotency-key": native["eventId"]}
        )
    assert res.status_code == 202 and state.stats["stored"] == 1
