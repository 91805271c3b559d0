"""The Treserva and TakeCare simulators, in process; receipts captured by a MockTransport."""

import asyncio
import json
import random
import time
from datetime import UTC, datetime

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from services.adapter_treserva.translation import to_treserva_notice
from services.messaging.contracts import violations
from services.simulators.samples import sample_admission
from services.simulators.takecare import TakeCareSimSettings
from services.simulators.takecare import create_app as create_takecare
from services.simulators.treserva import (
    SimState,
    TreservaSimSettings,
    create_api_app,
    create_control_app,
)
from tests.unit.test_takecare_translation import _translate

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
    state = SimState()

    def capture(request):
        receipts.append((request.headers["authorization"], json.loads(request.content)))
        return httpx.Response(202, json={})

    api = create_api_app(
        state, TreservaSimSettings(), receipt_transport=httpx.MockTransport(capture)
    )
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://t", headers=API
        ) as client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_control_app(state)), base_url="http://c"
        ) as control,
    ):
        yield client, control, state


def notice(seed=1):
    doc = sample_admission(random.Random(seed), now=datetime(2026, 11, 20, tzinfo=UTC))
    return to_treserva_notice(Bundle.model_validate(_translate(doc)))


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
    assert auth == "Bearer sandbox-treserva-receipt-key"
    assert violations("treserva/receipt.schema.json", receipt) == []
    assert receipt["meddelandeId"] == body["meddelandeId"]
    read = await client.get(f"/api/v1/inskrivningsmeddelanden/{body['meddelandeId']}")
    assert read.status_code == 200 and read.json()["treservaId"] == res.json()["treservaId"]


async def test_a_repeat_is_deduplicated_on_the_idempotency_key(sim, receipts):
    client, _, state = sim
    body = notice()
    first, second = await post(client, body), await post(client, body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["treservaId"] == second.json()["treservaId"]
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


async def test_takecare_sim_emits_valid_admissions_with_its_token():
    seen = []

    def intake(request):
        seen.append(request)
        return httpx.Response(202, json={"messageId": f"m-{len(seen)}", "duplicate": False})

    app = create_takecare(
        TakeCareSimSettings(), intake_transport=httpx.MockTransport(intake), rng=random.Random(3)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tc") as client,
    ):
        res = await client.post("/_sim/admissions", json={"count": 3})
    assert [s["messageId"] for s in res.json()["sent"]] == ["m-1", "m-2", "m-3"]
    assert all(r.headers["authorization"] == "Bearer sandbox-takecare-key" for r in seen)
    assert all(
        violations("takecare/admission-notice.schema.json", json.loads(r.content)) == []
        for r in seen
    )


async def test_takecare_sim_receives_deliveries_once():
    app = create_takecare(TakeCareSimSettings())
    headers = {"authorization": "Bearer sandbox-takecare-api-key", "idempotency-key": "m-1"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tc"
    ) as client:
        first = await client.post("/api/v1/messages", json={"a": 1}, headers=headers)
        again = await client.post("/api/v1/messages", json={"a": 1}, headers=headers)
        listed = (await client.get("/api/v1/messages")).json()
    assert (first.status_code, again.status_code, listed["count"]) == (202, 200, 1)
