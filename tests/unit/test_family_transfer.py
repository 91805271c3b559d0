"""Transfer (förflyttning), TakeCare → Treserva and primary care: golden fixtures, the round
trip (the new unit becomes the hospital's contact, the old one is kept as where the patient
came from), the catalogue, refusals naming the field and never the value, the receiving unit
on Treserva's document, and both simulators."""

import json
import random
from datetime import UTC, datetime

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
from sandbox.simulators.journal import JournalState, create_api_app, create_control_app
from sandbox.simulators.samples.transfer import sample_transfer
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.app import create_app
from services.adapter_takecare.families import transfer as takecare_transfer
from services.adapter_takecare.primary_care import EVENTS as PRIMARY_CARE_EVENTS
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.families import transfer as treserva_transfer
from services.adapter_treserva.service import DESTINATION
from services.messaging import topics
from services.messaging.contracts import violations
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import RECEIVER_UNIT_HEADER, EventCode, System, to_json
from services.messaging.families import destinations, may_send
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import IncomingRecord

FAMILY = "transfer"
FIXTURES = fixtures_of(System.TAKECARE, FAMILY)
NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
HOME_CARE_UNIT = "SE2120000803-HSJV"


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture(name):
    return _load(FIXTURES[0].parent / f"{name}.input.json")


def _bundle(doc, now=FIXTURE_NOW):
    family = takecare_transfer.INBOUND
    event = family.parse(doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    return json.loads(
        to_json(family.to_bundle(event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID))
    )


def _resource(bundle, kind):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_translations_match_their_goldens(path):
    outputs = translate_fixture(System.TAKECARE, FAMILY, _load(path))
    assert set(outputs) == {"fhir", "treserva"}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix
    assert len(refused_of(System.TAKECARE, FAMILY)) == 3


def test_the_new_unit_is_the_contact_and_the_old_one_where_the_patient_came_from():
    doc = _fixture("other-ward-personnummer")
    bundle = _bundle(doc)
    header = _resource(bundle, "MessageHeader")
    entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    sender = entries[header["sender"]["reference"]]
    assert sender["identifier"][0]["value"] == doc["transfer"]["toUnit"]["hsaId"]
    provider = entries[_resource(bundle, "Encounter")["serviceProvider"]["reference"]]
    assert provider is sender
    native = treserva_transfer.to_native(bundle)
    assert native["typ"] == "forflyttning"
    assert native["forflyttning"] == {
        "franEnhet": {"hsaId": "SE2321000222-AKUT", "namn": "Akutvårdsavdelningen"},
        "tillEnhet": {"hsaId": "SE2321000222-MED3", "namn": "Medicinavdelning 3, Visby lasarett"},
        "tidpunkt": doc["transfer"]["transferredAt"],
    }
    assert native["vardtillfalle"]["avdelning"] == native["forflyttning"]["tillEnhet"]
    assert native["vardtillfalle"]["id"] == doc["encounter"]["encounterId"]
    assert "folkbokforingsadress" not in native["brukare"]
    assert "address" not in _resource(bundle, "Patient")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_sample_survives_the_round_trip(seed):
    doc = sample_transfer(random.Random(seed), now=NOW)
    assert violations(takecare_transfer.INBOUND.schema, doc) == []
    native = treserva_transfer.to_native(_bundle(doc, now=NOW))
    assert violations(treserva_transfer.OUTBOUND.schema, native) == []
    moved = native["forflyttning"]
    assert moved["tillEnhet"]["hsaId"] == doc["transfer"]["toUnit"]["hsaId"]
    assert moved["franEnhet"]["hsaId"] == doc["encounter"]["unit"]["hsaId"]
    assert moved["franEnhet"] != moved["tillEnhet"]
    assert datetime.fromisoformat(moved["tidpunkt"]) == datetime.fromisoformat(
        doc["transfer"]["transferredAt"]
    )


def test_a_message_without_the_unit_it_left_is_a_translation_error():
    bundle = _bundle(_fixture("other-ward-personnummer"))
    (moved,) = _resource(bundle, "Encounter")["extension"]
    left = next(x for x in moved["extension"] if x["url"] == "from")["valueReference"]
    bundle["entry"] = [e for e in bundle["entry"] if e["fullUrl"] != left["reference"]]
    with pytest.raises(TranslationError, match="outside the message"):
        treserva_transfer.to_native(bundle)
    bare = _bundle(_fixture("other-ward-personnummer"))
    _resource(bare, "Encounter").pop("extension")
    with pytest.raises(TranslationError, match="transfer"):
        treserva_transfer.to_native(bare)


def test_the_catalogue_and_both_adapters():
    assert destinations("transfer", "takecare") == (System.TRESERVA, System.PRIMARY_CARE)
    assert may_send(System.TAKECARE, FAMILY) and not may_send(System.TRESERVA, FAMILY)
    (inbound,) = [f for f in takecare_families.INBOUND if f.family == FAMILY]
    assert inbound.route == "transfers"
    (outbound,) = [f for f in treserva_families.OUTBOUND if f.family == FAMILY]
    assert outbound.path == "/api/v1/forflyttningar"
    assert outbound.events == (EventCode.TRANSFER,)
    assert EventCode.TRANSFER in PRIMARY_CARE_EVENTS


async def test_the_adapter_refuses_a_bad_document_naming_the_field_not_the_value():
    app = create_app(
        AdapterTakeCareSettings(), store=FakeIntakeStore(), sessions=None, clock=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tc",
        headers={"authorization": "Bearer sandbox-takecare-key"},
    ) as client:
        good = await client.post("/takecare/v1/transfers", json=_fixture("other-ward-personnummer"))
        doc = _fixture("other-ward-personnummer")
        doc["transfer"]["toUnit"]["hsaId"] = "Tolvans rum"
        doc["transfer"]["transferredAt"] = "i går"
        bad = await client.post("/takecare/v1/transfers", json=doc)
        no_consent = _fixture("other-ward-personnummer")
        del no_consent["consentBasis"]
        refused = await client.post("/takecare/v1/transfers", json=no_consent)
    assert good.status_code == 202, good.text
    assert bad.status_code == 422
    assert {p for i in bad.json()["issue"] for p in i["expression"]} == {
        "transfer.toUnit.hsaId",
        "transfer.transferredAt",
    }
    assert "Tolvan" not in bad.text and "i går" not in bad.text
    assert refused.status_code == 422
    assert {p for i in refused.json()["issue"] for p in i["expression"]} == {"consentBasis"}


async def test_treserva_gets_it_addressed_to_the_municipalitys_unit(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=DESTINATION
    )
    bundle = _bundle(_fixture("other-ward-personnummer"))
    headers = {
        "message-id": bundle["entry"][0]["resource"]["id"],
        "attempt": "1",
        "delivery-id": "3",
    }
    headers[RECEIVER_UNIT_HEADER] = HOME_CARE_UNIT
    record = IncomingRecord(
        topics.outbound("treserva"), 0, 1, "p" * 32, json.dumps(bundle).encode(), headers
    )
    await handle_delivery_batch([record], deps=deps)
    ((path, _, document),) = client.calls
    assert path == "/api/v1/forflyttningar"
    assert document["mottagandeEnhet"] == HOME_CARE_UNIT
    assert violations("treserva/transfer.schema.json", document) == []


async def test_the_takecare_simulator_emits_it_on_request():
    seen: list[httpx.Request] = []

    def intake(request):
        seen.append(request)
        return httpx.Response(202, json={"messageId": f"m-{len(seen)}", "duplicate": False})

    emit = takecare_sim.make_emitter(
        takecare_sim.TakeCareSimSettings(),
        rng=random.Random(3),
        transport=httpx.MockTransport(intake),
    )
    app = create_control_app(JournalState(), name="TakeCare", emit=emit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        res = await c.post("/_sim/emit", json={"family": FAMILY, "count": 2})
    assert res.status_code == 200 and len(res.json()["sent"]) == 2
    assert all(r.url.path == "/takecare/v1/transfers" for r in seen)
    assert all(
        violations(takecare_transfer.INBOUND.schema, json.loads(r.content)) == [] for r in seen
    )


async def test_the_treserva_simulator_stores_it():
    state = JournalState()
    api = create_api_app(
        state,
        treserva_sim.spec(treserva_sim.TreservaSimSettings()),
        receipt_transport=httpx.MockTransport(lambda r: httpx.Response(202, json={})),
    )
    native = treserva_transfer.to_native(_bundle(_fixture("other-ward-personnummer")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://t",
        headers={"authorization": "Bearer sandbox-treserva-api-key"},
    ) as client:
        res = await client.post(
            "/api/v1/forflyttningar",
            json=native,
            headers={"idempotency-key": native["meddelandeId"]},
        )
    assert res.status_code == 202 and state.stats["stored"] == 1
