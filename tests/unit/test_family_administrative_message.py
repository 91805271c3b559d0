"""The administrative message (administrativt meddelande), both ways between the hospital unit
(TakeCare) and the municipal unit (Treserva): free text about a stay, with a subject and its
writer. Golden fixtures, the round trip both ways, the catalogue, refusals naming the field and
never the value, the free text kept out of logs, the receiving unit on Treserva's document,
and both simulators."""

import json
import logging
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
from sandbox.simulators.samples.administrative_message import (
    sample_takecare_administrative_message,
    sample_treserva_administrative_message,
)
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.app import create_app as create_takecare_app
from services.adapter_takecare.families import administrative_message as takecare_admin
from services.adapter_takecare.primary_care import EVENTS as PRIMARY_CARE_EVENTS
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.app import create_app as create_treserva_app
from services.adapter_treserva.families import administrative_message as treserva_admin
from services.adapter_treserva.service import DESTINATION
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import topics
from services.messaging.administrative_message import read_administrative_message
from services.messaging.contracts import violations
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import RECEIVER_UNIT_HEADER, EventCode, System, to_json
from services.messaging.families import destinations, may_send
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import IncomingRecord

FAMILY = "administrative-message"
TAKECARE = fixtures_of(System.TAKECARE, FAMILY)
TRESERVA = fixtures_of(System.TRESERVA, FAMILY)
FIXTURES = [(System.TAKECARE, p) for p in TAKECARE] + [(System.TRESERVA, p) for p in TRESERVA]
NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
HOME_CARE_UNIT = "SE2120000803-HSJV"


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fixture(source, name):
    folder = (TAKECARE if source is System.TAKECARE else TRESERVA)[0].parent
    return _load(folder / f"{name}.input.json")


def _bundle(family, doc, now=FIXTURE_NOW):
    event = family.parse(doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    return json.loads(
        to_json(family.to_bundle(event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID))
    )


def _resource(bundle, kind):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


@pytest.mark.parametrize(("source", "path"), FIXTURES, ids=lambda x: getattr(x, "name", x))
def test_fixture_translations_match_their_goldens(source, path):
    outputs = translate_fixture(source, FAMILY, _load(path))
    other = "treserva" if source is System.TAKECARE else "takecare"
    assert set(outputs) == {"fhir", other}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix
    assert len(refused_of(source, FAMILY)) == 2


def test_a_communication_with_subject_text_stay_and_writer():
    doc = _fixture(System.TAKECARE, "fraga-om-hjalpmedel")
    bundle = _bundle(takecare_admin.INBOUND, doc)
    communication = _resource(bundle, "Communication")
    assert communication["topic"] == {"text": doc["subject"]}
    assert communication["payload"] == [{"contentString": doc["text"]}]
    assert communication["encounter"]["identifier"]["value"] == doc["encounterId"]
    assert communication["sent"] == doc["sentAt"]
    practitioner = _resource(bundle, "Practitioner")
    assert practitioner["name"] == [{"text": doc["sender"]["name"]}]
    assert practitioner["identifier"][0]["value"] == doc["sender"]["hsaId"]
    header = _resource(bundle, "MessageHeader")
    assert [d["endpoint"] for d in header["destination"]] == ["urn:carebridge:system:treserva"]


def test_the_round_trip_both_ways_keeps_subject_text_stay_and_writer():
    """TakeCare → Treserva, and Treserva's document sent back as its own: nothing is lost."""
    doc = _fixture(System.TAKECARE, "fraga-om-hjalpmedel")
    at_treserva = treserva_admin.to_native(_bundle(takecare_admin.INBOUND, doc))
    assert (at_treserva["amne"], at_treserva["text"]) == (doc["subject"], doc["text"])
    assert at_treserva["vardtillfalleId"] == doc["encounterId"]
    assert at_treserva["avsandare"] == {
        "namn": doc["sender"]["name"],
        "hsaId": doc["sender"]["hsaId"],
        "enhetHsaId": doc["sender"]["unitHsaId"],
    }
    assert violations(treserva_admin.OUTBOUND.schema, at_treserva) == []
    # a journal that sends a received document on does so on its own basis (docs/vendors.md)
    own = _fixture(System.TRESERVA, "fraga-personnummer")["samtyckesgrund"]
    back = takecare_admin.to_native(
        _bundle(treserva_admin.INBOUND, at_treserva | {"samtyckesgrund": own})
    )
    for field in ("sentAt", "encounterId", "subject", "text", "sender"):
        assert back[field] == doc[field], field
    assert back["patient"]["personalIdentityNumber"] == "191212121212"
    assert back["consentBasis"]["recordedBy"]["name"] == own["registreradAv"]["namn"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_sample_survives_the_round_trip(seed):
    rng = random.Random(seed)
    for family, sample, outbound in (
        (takecare_admin.INBOUND, sample_takecare_administrative_message, treserva_admin.OUTBOUND),
        (treserva_admin.INBOUND, sample_treserva_administrative_message, takecare_admin.OUTBOUND),
    ):
        doc = sample(rng, now=NOW)
        assert violations(family.schema, doc) == []
        event = family.parse(doc, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
        bundle = _bundle(family, doc, now=NOW)
        assert read_administrative_message(bundle) == event.administrative_message(
            FIXTURE_REGIONAL_RESERVE_OID
        )
        assert violations(outbound.schema, outbound.to_native(bundle)) == []


def test_a_broken_message_is_a_translation_error_that_names_no_text():
    doc = _fixture(System.TAKECARE, "fraga-om-hjalpmedel")
    bundle = _bundle(takecare_admin.INBOUND, doc)
    _resource(bundle, "Communication")["payload"] = [{"contentString": 7}]
    with pytest.raises(TranslationError, match="payload") as caught:
        treserva_admin.to_native(bundle)
    assert doc["text"][:20] not in str(caught.value)
    bundle = _bundle(takecare_admin.INBOUND, doc)
    _resource(bundle, "Communication")["encounter"]["identifier"]["system"] = "Tolvan"
    with pytest.raises(TranslationError, match="encounter") as caught:
        treserva_admin.to_native(bundle)
    assert "Tolvan" not in str(caught.value)


def test_the_catalogue_and_both_adapters():
    assert destinations(FAMILY, "takecare") == (System.TRESERVA,)
    assert destinations(FAMILY, "treserva") == (System.TAKECARE,)
    assert may_send(System.TAKECARE, FAMILY) and may_send(System.TRESERVA, FAMILY)
    assert EventCode.ADMINISTRATIVE_MESSAGE not in PRIMARY_CARE_EVENTS
    (tc_in,) = [f for f in takecare_families.INBOUND if f.family == FAMILY]
    (tc_out,) = [f for f in takecare_families.OUTBOUND if f.family == FAMILY]
    (trs_in,) = [f for f in treserva_families.INBOUND if f.family == FAMILY]
    (trs_out,) = [f for f in treserva_families.OUTBOUND if f.family == FAMILY]
    assert (tc_in.route, tc_out.path) == (
        "administrative-messages",
        "/api/v1/administrative-messages",
    )
    assert (trs_in.route, trs_out.path) == (
        "administrativa-meddelanden",
        "/api/v1/administrativa-meddelanden",
    )
    assert tc_out.events == trs_out.events == (EventCode.ADMINISTRATIVE_MESSAGE,)


async def _post(app, base, token, path, doc):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=base,
        headers={"authorization": f"Bearer {token}"},
    ) as client:
        return await client.post(path, json=doc)


async def test_takecare_refuses_a_bad_message_naming_fields_never_the_text(caplog):
    caplog.set_level(logging.DEBUG)
    app = create_takecare_app(
        AdapterTakeCareSettings(), store=FakeIntakeStore(), sessions=None, clock=lambda: NOW
    )
    path = "/takecare/v1/administrative-messages"
    good_doc = _fixture(System.TAKECARE, "fraga-om-hjalpmedel")
    good = await _post(app, "http://tc", "sandbox-takecare-key", path, good_doc)
    doc = _fixture(System.TAKECARE, "fraga-om-hjalpmedel")
    doc["subject"] = "Tolvans hemliga ämne " + "x" * 200
    doc["sentAt"] = "i morse, Tolvan"
    bad = await _post(app, "http://tc", "sandbox-takecare-key", path, doc)
    assert good.status_code == 202, good.text
    assert bad.status_code == 422
    assert {p for i in bad.json()["issue"] for p in i["expression"]} == {"subject", "sentAt"}
    assert "Tolvan" not in bad.text
    assert "rollator" not in caplog.text and "Tolvan" not in caplog.text


async def test_treserva_refuses_a_bad_message_naming_fields_never_the_text(sessions, caplog):
    caplog.set_level(logging.DEBUG)
    app = create_treserva_app(
        AdapterTreservaSettings(), store=FakeIntakeStore(), sessions=sessions, clock=lambda: NOW
    )
    path = "/treserva/v1/administrativa-meddelanden"
    good_doc = _fixture(System.TRESERVA, "fraga-personnummer")
    good = await _post(app, "http://a", "sandbox-treserva-key", path, good_doc)
    doc = _fixture(System.TRESERVA, "fraga-personnummer")
    doc["text"] = {"Tolvan": "dörren"}
    doc["avsandare"]["hsaId"] = "Tolvans kollega"
    bad = await _post(app, "http://a", "sandbox-treserva-key", path, doc)
    assert good.status_code == 202, good.text
    assert bad.status_code == 422
    assert {p for i in bad.json()["issue"] for p in i["expression"]} == {"text", "avsandare.hsaId"}
    assert "Tolvan" not in bad.text
    assert "dörren" not in caplog.text and "Tolvan" not in caplog.text


async def test_treserva_gets_it_addressed_to_the_municipalitys_unit(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=DESTINATION
    )
    bundle = _bundle(takecare_admin.INBOUND, _fixture(System.TAKECARE, "fraga-om-hjalpmedel"))
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
    assert path == "/api/v1/administrativa-meddelanden"
    assert document["mottagandeEnhet"] == HOME_CARE_UNIT
    assert violations("treserva/administrative-message.schema.json", document) == []


@pytest.mark.parametrize(
    ("module", "settings_", "route"),
    [
        (takecare_sim, takecare_sim.TakeCareSimSettings, "/takecare/v1/administrative-messages"),
        (treserva_sim, treserva_sim.TreservaSimSettings, "/treserva/v1/administrativa-meddelanden"),
    ],
    ids=["takecare", "treserva"],
)
async def test_both_simulators_emit_it_on_request(module, settings_, route):
    seen: list[httpx.Request] = []

    def intake(request):
        seen.append(request)
        return httpx.Response(202, json={"messageId": f"m-{len(seen)}", "duplicate": False})

    emit = module.make_emitter(
        settings_(), rng=random.Random(3), transport=httpx.MockTransport(intake)
    )
    app = create_control_app(JournalState(), name="sim", emit=emit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        res = await c.post("/_sim/emit", json={"family": FAMILY, "count": 2})
    assert res.status_code == 200 and len(res.json()["sent"]) == 2
    schema = f"{route.split('/')[1]}/administrative-message.schema.json"
    assert all(r.url.path == route for r in seen)
    assert all(violations(schema, json.loads(r.content)) == [] for r in seen)


@pytest.mark.parametrize(
    ("spec", "path", "token", "native"),
    [
        (
            lambda: treserva_sim.spec(treserva_sim.TreservaSimSettings()),
            "/api/v1/administrativa-meddelanden",
            "sandbox-treserva-api-key",
            lambda: treserva_admin.to_native(_bundle(takecare_admin.INBOUND, _load(TAKECARE[0]))),
        ),
        (
            lambda: takecare_sim.spec(takecare_sim.TakeCareSimSettings()),
            "/api/v1/administrative-messages",
            "sandbox-takecare-api-key",
            lambda: takecare_admin.to_native(_bundle(treserva_admin.INBOUND, _load(TRESERVA[0]))),
        ),
    ],
    ids=["treserva", "takecare"],
)
async def test_both_simulators_store_a_delivered_message(spec, path, token, native):
    state = JournalState()
    api = create_api_app(
        state,
        spec(),
        receipt_transport=httpx.MockTransport(lambda r: httpx.Response(202, json={})),
    )
    body = native()
    key = body.get("eventId") or body["meddelandeId"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://t",
        headers={"authorization": f"Bearer {token}"},
    ) as client:
        res = await client.post(path, json=body, headers={"idempotency-key": key})
    assert res.status_code == 202 and state.stats["stored"] == 1
