"""The read receipt (läskvittens), both ways between TakeCare and Treserva: who read a message
and when, back to the journal that sent it. Golden fixtures, the round trip, the catalogue,
refusals naming the field and never the value, its distance from the technical receipt
(kvittens), and the simulators."""

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
from sandbox.simulators.journal import JournalState, create_api_app
from sandbox.simulators.samples.people import takecare_consent_basis
from sandbox.simulators.samples.read_receipt import (
    sample_takecare_read_receipt,
    sample_treserva_read_receipt,
)
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.families import read_receipt as takecare_read
from services.adapter_takecare.families import receipt as takecare_receipt
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.app import create_app
from services.adapter_treserva.families import read_receipt as treserva_read
from services.adapter_treserva.families import receipt as treserva_receipt
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.contracts import violations
from services.messaging.envelope import EventCode, System, read_envelope, to_json
from services.messaging.families import destinations, family_of
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore
from services.messaging.read_receipt import read_read_receipt

TRESERVA = fixtures_of(System.TRESERVA, "read-receipt")
TAKECARE = fixtures_of(System.TAKECARE, "read-receipt")
FIXTURES = [(System.TRESERVA, p) for p in TRESERVA] + [(System.TAKECARE, p) for p in TAKECARE]
NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _bundle(family, doc, now=FIXTURE_NOW):
    event = family.parse(doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    return json.loads(
        to_json(family.to_bundle(event, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID))
    )


def test_fixtures_come_from_both_sides_with_refusals():
    assert len(TRESERVA) >= 2 and TAKECARE
    assert refused_of(System.TRESERVA, "read-receipt") and refused_of(
        System.TAKECARE, "read-receipt"
    )


@pytest.mark.parametrize(
    ("source", "path"), FIXTURES, ids=lambda x: getattr(x, "name", getattr(x, "value", x))
)
def test_fixture_translations_match_their_goldens(source, path):
    outputs = translate_fixture(source, "read-receipt", _load(path))
    other = "takecare" if source is System.TRESERVA else "treserva"
    assert set(outputs) == {"fhir", other}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix


def test_the_round_trip_keeps_who_read_what_and_when():
    doc = _load(TRESERVA[0])
    bundle = _bundle(treserva_read.INBOUND, doc)
    native = takecare_read.to_native(bundle)
    assert native["readMessageId"] == doc["lastMeddelandeId"]
    assert datetime.fromisoformat(native["readAt"]) == datetime.fromisoformat(doc["lastTidpunkt"])
    assert native["readAt"].endswith("+02:00")  # the offset as given (summer time)
    assert native["reader"] == {
        "name": doc["lasare"]["namn"],
        "hsaId": doc["lasare"]["hsaId"],
        "unitHsaId": doc["lasare"]["enhetHsaId"],
    }
    # the basis Treserva (the reader's side) holds reaches TakeCare as it was recorded
    basis = doc["samtyckesgrund"]
    assert native["consentBasis"] == {
        "kind": basis["typ"],
        "recordedBy": {
            "name": basis["registreradAv"]["namn"],
            "hsaId": basis["registreradAv"]["hsaId"],
        },
        "recordedAt": native["consentBasis"]["recordedAt"],
        "scope": basis["omfattning"],
        "recipients": [{"unitKind": "hospital"}],
    }
    assert datetime.fromisoformat(native["consentBasis"]["recordedAt"]) == datetime.fromisoformat(
        basis["registrerad"]
    )
    # and back: TakeCare's own form becomes Treserva's again, unchanged; TakeCare sends it
    # on the basis it holds itself (one that covers the municipality), not Treserva's
    own = takecare_consent_basis(FIXTURE_NOW)
    again = treserva_read.to_native(
        _bundle(takecare_read.INBOUND, {**native, "eventId": "x1", "consentBasis": own})
    )
    assert again["samtyckesgrund"]["omfattning"] == own["scope"]
    assert again["samtyckesgrund"]["mottagare"] == [
        {"enhetstyp": "kommun"},
        {"enhetstyp": "primarvard"},
    ]
    assert {k: again[k] for k in ("lastMeddelandeId", "lastTidpunkt", "lasare")} == {
        k: doc[k] for k in ("lastMeddelandeId", "lastTidpunkt", "lasare")
    }
    assert again["brukare"] == {**doc["brukare"], "samordningsnummer": False}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_sample_survives_the_round_trip_both_ways(seed):
    for inbound, sample, outbound in (
        (treserva_read.INBOUND, sample_treserva_read_receipt, takecare_read.OUTBOUND),
        (takecare_read.INBOUND, sample_takecare_read_receipt, treserva_read.OUTBOUND),
    ):
        doc = sample(random.Random(seed), now=NOW)
        assert violations(inbound.schema, doc) == []
        event = inbound.parse(doc, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
        bundle = _bundle(inbound, doc, now=NOW)
        assert read_read_receipt(bundle) == event.read_receipt(FIXTURE_REGIONAL_RESERVE_OID)
        assert violations(outbound.schema, outbound.to_native(bundle)) == []


def test_a_read_receipt_is_a_message_of_its_own_not_a_technical_receipt():
    bundle = _bundle(treserva_read.INBOUND, _load(TRESERVA[0]))
    env = read_envelope(json.dumps(bundle))
    assert env.event_code == EventCode.READ_RECEIPT
    assert env.event_code != EventCode.RECEIPT.value
    assert env.response_to is None and env.response_code is None  # not a result
    assert env.business_key is not None
    # its own routes and contracts, apart from the kvittens'
    assert treserva_read.INBOUND.route == "laskvittenser" != treserva_receipt.ROUTE
    assert takecare_read.INBOUND.route == "read-receipts" != takecare_receipt.ROUTE
    assert treserva_read.INBOUND.schema != treserva_receipt.SCHEMA
    assert takecare_read.INBOUND.schema != takecare_receipt.SCHEMA
    assert family_of("receipt") is None and family_of("read-receipt") is not None


def test_it_goes_back_to_the_sender_of_the_message_read():
    assert destinations("read-receipt", "treserva") == (System.TAKECARE,)
    assert destinations("read-receipt", "takecare") == (System.TRESERVA,)
    bundle = _bundle(takecare_read.INBOUND, _load(TAKECARE[0]))
    header = bundle["entry"][0]["resource"]
    assert [d["endpoint"] for d in header["destination"]] == ["urn:carebridge:system:treserva"]


def test_both_adapters_register_the_family_both_ways():
    for families, route, path in (
        (treserva_families, "laskvittenser", "/api/v1/laskvittenser"),
        (takecare_families, "read-receipts", "/api/v1/read-receipts"),
    ):
        (inbound,) = [f for f in families.INBOUND if f.family == "read-receipt"]
        (outbound,) = [f for f in families.OUTBOUND if f.family == "read-receipt"]
        assert inbound.route == route and outbound.path == path
        assert outbound.events == (EventCode.READ_RECEIPT,)


def test_protected_identity_never_carries_the_address():
    doc = _load(next(p for p in TRESERVA if "skyddad" in p.name))
    bundle = _bundle(treserva_read.INBOUND, doc)
    patient = takecare_read.to_native(bundle)["patient"]
    assert patient["protectedIdentity"] is True and "registeredAddress" not in patient
    assert patient["reserveNumberKind"] == "national"


def test_a_message_without_the_read_message_id_is_a_translation_error():
    bundle = _bundle(treserva_read.INBOUND, _load(TRESERVA[0]))
    communication = bundle["entry"][1]["resource"]
    communication["about"][0]["identifier"]["value"] = "Tolvansson"
    with pytest.raises(TranslationError) as exc:
        takecare_read.to_native(bundle)
    assert "Tolvansson" not in str(exc.value)


@pytest.fixture
async def adapter(sessions):
    app = create_app(
        AdapterTreservaSettings(), store=FakeIntakeStore(), sessions=sessions, clock=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://a",
        headers={"authorization": "Bearer sandbox-treserva-key"},
    ) as c:
        yield c


async def test_the_adapter_takes_a_read_receipt_and_names_bad_fields_not_values(adapter):
    good = await adapter.post("/treserva/v1/laskvittenser", json=_load(TRESERVA[0]))
    assert good.status_code == 202
    doc = _load(TRESERVA[0])
    doc["lasare"]["hsaId"] = "Tolvan Tolvansson"
    doc["lastTidpunkt"] = "2026-11-20 (Tolvan)"
    res = await adapter.post("/treserva/v1/laskvittenser", json=doc)
    assert res.status_code == 422
    paths = {p for i in res.json()["issue"] for p in i["expression"]}
    assert {"lasare.hsaId", "lastTidpunkt"} <= paths
    assert "Tolvan" not in res.text


# --- simulators ------------------------------------------------------------------------------


async def test_the_treserva_simulator_sends_a_read_receipt_of_what_it_stores_when_asked_to():
    posted = []

    def intake(request):
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(202, json={"messageId": "m"})

    sim = treserva_sim.TreservaSimSettings(read_receipts=True, read_delay_s=0)
    state = JournalState()
    after_store = treserva_sim.answering(
        sim, state, rng=random.Random(5), transport=httpx.MockTransport(intake)
    )
    kinds = {k.path: k for k in treserva_sim.KINDS}
    stored = {
        "meddelandeId": "e5d2a974-583e-5a64-bfeb-59d4f86badc7",
        "typ": "utskrivningsklar",
        "brukare": _load(TRESERVA[0])["brukare"],
    }
    await after_store(kinds["utskrivningsklar"], stored)
    await after_store(kinds["laskvittenser"], {**stored, "lastMeddelandeId": "x"})  # none
    ((path, doc),) = posted
    assert path == "/treserva/v1/laskvittenser"
    assert violations(treserva_read.INBOUND.schema, doc) == []
    assert doc["lastMeddelandeId"] == stored["meddelandeId"]
    assert state.stats["emitted"] == 1
    assert treserva_sim.spec(treserva_sim.TreservaSimSettings()).after_store is None


@pytest.mark.parametrize(
    ("spec", "path", "token", "native"),
    [
        (
            lambda: treserva_sim.spec(treserva_sim.TreservaSimSettings()),
            "/api/v1/laskvittenser",
            "sandbox-treserva-api-key",
            lambda: treserva_read.to_native(_bundle(takecare_read.INBOUND, _load(TAKECARE[0]))),
        ),
        (
            lambda: takecare_sim.spec(takecare_sim.TakeCareSimSettings()),
            "/api/v1/read-receipts",
            "sandbox-takecare-api-key",
            lambda: takecare_read.to_native(_bundle(treserva_read.INBOUND, _load(TRESERVA[0]))),
        ),
    ],
)
async def test_both_simulators_store_a_delivered_read_receipt(spec, path, token, native):
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
    assert "read-receipt" in treserva_sim.EMITTERS and "read-receipt" in takecare_sim.EMITTERS
