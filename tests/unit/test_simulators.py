"""The Treserva and TakeCare simulators, in process; receipts and emitted events are captured
by a MockTransport."""

import asyncio
import json
import random
import time
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.simulators import takecare, treserva
from sandbox.simulators.journal import JournalState, create_api_app, create_control_app
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_treserva.families.admission_notice import to_native
from services.messaging.contracts import violations
from tests.support.translation import _translate

API = {"authorization": "Bearer sandbox-treserva-api-key"}


async def until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def receipts():
    return []


@pytest.fixture
async def sim(receipts):
    state = JournalState()

    def capture(request):
        receipts.append((request.headers["authorization"], json.loads(request.content)))
        return httpx.Response(202, json={})

    settings = treserva.TreservaSimSettings()
    api = create_api_app(
        state, treserva.spec(settings), receipt_transport=httpx.MockTransport(capture)
    )
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://t", headers=API
        ) as client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_control_app(state, name="Treserva")),
            base_url="http://c",
        ) as control,
    ):
        yield client, control, state


def notice(seed=1):
    doc = sample_admission(random.Random(seed), now=datetime(2026, 11, 20, tzinfo=UTC))
    return to_native(_translate(doc))


async def post(client, body, key=None):
    return await client.post(
        "/api/v1/inskrivningsmeddelanden",
        json=body,
        headers={"idempotency-key": key or body["meddelandeId"]},
    )


async def test_a_notice_is_stored_and_a_valid_receipt_is_pushed(sim, receipts):
    client, _, _state = sim
    body = notice()
    res = await post(client, body)
    assert res.status_code == 202
    await until(lambda: receipts)
    ((auth, receipt),) = receipts
    assert auth == "Bearer sandbox-treserva-key"
    assert violations("treserva/receipt.schema.json", receipt) == []
    assert receipt["meddelandeId"] == body["meddelandeId"]
    read = await client.get(f"/api/v1/inskrivningsmeddelanden/{body['meddelandeId']}")
    assert read.status_code == 200 and read.json()["recordId"] == res.json()["recordId"]
    assert read.json()["recordId"] == receipt["treservaId"]


async def test_one_treserva_serves_several_municipalities_filed_per_unit(sim):
    """Addressing by unit (issue 20): each notice is filed under the home-care unit the
    broker addressed (mottagandeEnhet); one unit's list never shows another's records."""
    client, control, _state = sim
    units = ("SE2120000000-HMSHSV", "SE2120000001-FBGHSV", "SE2120000002-VBGHSV")
    for seed, unit in enumerate(units, start=1):
        body = {**notice(seed), "mottagandeEnhet": unit}
        assert (await post(client, body, key=f"k-{seed}")).status_code == 202
    for unit in units:
        found = await client.get("/api/v1/inskrivningsmeddelanden", params={"unit": unit})
        assert [r["receivingUnit"] for r in found.json()["items"]] == [unit]
    assert (await control.get("/_sim/units")).json() == dict.fromkeys(units, 1)


async def test_a_repeat_is_deduplicated_on_the_idempotency_key(sim, receipts):
    client, _, state = sim
    body = notice()
    first, second = await post(client, body), await post(client, body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["recordId"] == second.json()["recordId"]
    await until(lambda: state.stats["receipts_sent"] == 1)
    assert state.stats["stored"] == 1 and state.stats["duplicates"] == 1


async def test_auth_key_and_contract_are_enforced_without_echoing_data(sim):
    client, _, _ = sim
    body = notice()
    assert (
        await client.post(
            "/api/v1/inskrivningsmeddelanden",
            json=body,
            headers={"authorization": "Bearer x", "idempotency-key": "k"},
        )
    ).status_code == 401
    assert (await client.post("/api/v1/inskrivningsmeddelanden", json=body)).status_code == 400
    broken = {**body, "brukare": {**body["brukare"], "personnummer": "nope"}}
    res = await post(client, broken)
    assert res.status_code == 422
    assert body["brukare"]["efternamn"] not in res.text and "nope" not in res.text


@pytest.mark.parametrize(
    ("mode", "status", "stat"),
    [("error", 503, "errors"), ("reject", 422, "rejected"), ("silent-drop", 202, "dropped")],
)
async def test_fault_switches(sim, receipts, mode, status, stat):
    client, control, state = sim
    assert (await control.put("/_sim/fault", json={"mode": mode})).status_code == 200
    body = notice()
    res = await post(client, body)
    assert res.status_code == status
    assert state.stats[stat] == 1 and state.stats["stored"] == 0
    read = await client.get(f"/api/v1/inskrivningsmeddelanden/{body['meddelandeId']}")
    assert read.status_code == 404
    stats = (await control.get("/_sim/stats")).json()
    assert stats["receipts_sent"] == 0 and receipts == []


async def test_slow_mode_delays_then_stores(sim):
    client, control, state = sim
    await control.put("/_sim/fault", json={"mode": "slow", "slow_s": 0.3})
    started = time.monotonic()
    assert (await post(client, notice())).status_code == 202
    assert time.monotonic() - started >= 0.3 and state.stats["stored"] == 1


def test_sample_admissions_follow_the_takecare_contract():
    for seed in range(200):
        doc = sample_admission(random.Random(seed), now=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
        assert violations("takecare/admission-notice.schema.json", doc) == [], seed


def _capture_intake(seen):
    def intake(request):
        seen.append(request)
        return httpx.Response(202, json={"messageId": f"m-{len(seen)}", "duplicate": False})

    return httpx.MockTransport(intake)


async def test_takecare_sim_emits_valid_admissions_with_its_token():
    seen: list[httpx.Request] = []
    settings = takecare.TakeCareSimSettings()
    emit = takecare.make_emitter(settings, rng=random.Random(3), transport=_capture_intake(seen))
    app = create_control_app(JournalState(), name="TakeCare", emit=emit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        res = await c.post("/_sim/emit", json={"family": "admission-notice", "count": 3})
        unknown = await c.post("/_sim/emit", json={"family": "horoscope"})
    assert [s["messageId"] for s in res.json()["sent"]] == ["m-1", "m-2", "m-3"]
    assert unknown.status_code == 404
    assert all(r.url.path == "/takecare/v1/admissions" for r in seen)
    assert all(r.headers["authorization"] == "Bearer sandbox-takecare-key" for r in seen)
    assert all(
        violations("takecare/admission-notice.schema.json", json.loads(r.content)) == []
        for r in seen
    )


def test_every_emitter_names_a_sample_function_that_exists():
    from sandbox.simulators.emitters import sample_function

    for table in (takecare.EMITTERS, treserva.EMITTERS):
        for _route, target in table.values():
            assert callable(sample_function(target)), target
