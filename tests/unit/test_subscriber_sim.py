"""The subscriber simulator in process: it verifies signatures, dedupes on the
Idempotency-Key, has the journal simulators' fault switches and shows what it received."""

import httpx
import pytest

from sandbox.simulators.subscriber import (
    PATH,
    SubscriberSimSettings,
    create_api_app,
    create_control,
    new_state,
)
from services.messaging.signing import sign

NOW = 1_790_000_000
SETTINGS = SubscriberSimSettings(secret="the-platform-secret-1234")
BODY = b'{"resourceType": "Bundle", "type": "message", "id": "m-1"}'


def headers(body=BODY, *, key="m-1", secret=SETTINGS.secret, at=NOW):
    return {
        "content-type": "application/fhir+json",
        "idempotency-key": key,
        "x-carebridge-event": "admission-notice",
        "x-carebridge-subscription": "sub-1",
        "x-carebridge-signature": sign(secret, body, at),
    }


@pytest.fixture
async def sim():
    state = new_state()
    api = create_api_app(state, SETTINGS, clock=lambda: NOW)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://s") as client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_control(state)), base_url="http://c"
        ) as control,
    ):
        yield client, control


async def test_a_signed_webhook_is_stored_once_and_shown(sim):
    client, control = sim
    assert (await client.post(PATH, content=BODY, headers=headers())).status_code == 200
    again = await client.post(PATH, content=BODY, headers=headers(at=NOW + 5))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    stats = (await control.get("/_sim/stats")).json()
    assert (stats["received"], stats["stored"], stats["duplicates"]) == (2, 1, 1)
    (item,) = (await control.get("/_sim/received")).json()["items"]
    assert item["messageId"] == "m-1" and item["rawBody"].encode() == BODY
    assert item["event"] == "admission-notice" and item["subscription"] == "sub-1"
    assert item["resourceType"] == "Bundle"


@pytest.mark.parametrize(
    "changed",
    [
        {"x-carebridge-signature": sign("some-other-secret-123", BODY, NOW)},
        {"x-carebridge-signature": sign(SETTINGS.secret, BODY, NOW - 301)},
        {"x-carebridge-signature": "v1=abc"},
        {"x-carebridge-signature": ""},
    ],
)
async def test_a_bad_signature_is_401_and_nothing_is_stored(sim, changed):
    client, control = sim
    res = await client.post(PATH, content=BODY, headers={**headers(), **changed})
    assert res.status_code == 401
    assert (await control.get("/_sim/stats")).json()["bad_signatures"] == 1
    assert (await control.get("/_sim/received")).json()["count"] == 0


async def test_a_tampered_body_is_401(sim):
    client, _ = sim
    res = await client.post(PATH, content=BODY.replace(b"m-1", b"m-2"), headers=headers())
    assert res.status_code == 401


async def test_an_idempotency_key_is_required(sim):
    client, _ = sim
    res = await client.post(PATH, content=BODY, headers=headers(key=""))
    assert res.status_code == 400


@pytest.mark.parametrize(("mode", "status"), [("error", 503), ("reject", 422)])
async def test_fault_switches_answer_as_set_and_store_nothing(sim, mode, status):
    client, control = sim
    await control.put("/_sim/fault", json={"mode": mode})
    assert (await client.post(PATH, content=BODY, headers=headers())).status_code == status
    await control.put("/_sim/fault", json={"mode": "none"})
    assert (await client.post(PATH, content=BODY, headers=headers())).status_code == 200
    assert (await control.get("/_sim/received")).json()["count"] == 1
    await control.post("/_sim/reset")
    assert (await control.get("/_sim/stats")).json()["received"] == 0
