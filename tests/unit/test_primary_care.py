"""Primary care as the second destination of the hospital's notices: the FHIR message is
delivered as it is to $process-message, marked when superseded, and confirmed by receipt."""

import asyncio
import json
import time

import httpx
import pytest

from sandbox.simulators import takecare
from sandbox.simulators.journal import JournalState, create_api_app
from services.adapter_takecare.primary_care import EVENTS, PATH, destination
from services.messaging import topics
from services.messaging.db import store_keyring
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import EventCode, read_envelope
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import open_value, outbox
from services.messaging.vocabulary import SUPERSEDED_TAG_SYSTEM
from tests.support.treserva import NOW, fhir


def command(bundle, *, superseded_by=None):
    headers = {"message-id": bundle["id"], "attempt": "1", "delivery-id": "3"}
    if superseded_by:
        headers["superseded-by"] = superseded_by
    return IncomingRecord(
        topics.outbound("primary-care"), 0, 1, "p" * 32, json.dumps(bundle).encode(), headers
    )


def test_every_hospital_notice_goes_to_primary_care_but_not_what_treserva_sends():
    assert EventCode.ADMISSION_NOTICE in EVENTS and EventCode.DISCHARGE_NOTICE in EVENTS
    assert EventCode.SIP_INVITATION in EVENTS and EventCode.MEDICATION_LIST in EVENTS
    assert EventCode.RECEIPT not in EVENTS


async def test_the_fhir_message_is_delivered_unchanged_and_reported(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=destination("tc")
    )
    bundle = fhir("personnummer-full.input.json")
    await handle_delivery_batch([command(bundle)], deps=deps)
    ((path, key, document),) = client.calls
    assert (path, key, document) == (PATH, bundle["id"], bundle)
    async with sessions() as s:
        (row,) = (await s.execute(outbox.select())).all()
        env = read_envelope(open_value(store_keyring(s), row, row.owner))
    assert (env.source_system, env.response_to, env.response_code) == (
        "primary-care",
        bundle["id"],
        "ok",
    )


async def test_a_superseded_version_carries_a_meta_tag(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=destination("tc")
    )
    bundle = fhir("personnummer-full.input.json")
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "medication-list"
    await handle_delivery_batch([command(bundle, superseded_by="newer-id")], deps=deps)
    ((_, _, document),) = client.calls
    assert document["meta"]["tag"] == [
        {"system": SUPERSEDED_TAG_SYSTEM, "code": "superseded", "display": "newer-id"}
    ]


@pytest.fixture
async def inbox():
    receipts = []

    def capture(request):
        receipts.append((str(request.url), json.loads(request.content)))
        return httpx.Response(202, json={})

    settings = takecare.TakeCareSimSettings()
    app = create_api_app(
        JournalState(), takecare.spec(settings), receipt_transport=httpx.MockTransport(capture)
    )
    headers = {"authorization": f"Bearer {settings.primary_care_token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tc", headers=headers
    ) as client:
        yield client, receipts


async def test_the_primary_care_inbox_takes_fhir_messages_and_sends_receipts(inbox):
    client, receipts = inbox
    bundle = fhir("personnummer-full.input.json")
    res = await client.post(PATH, json=bundle, headers={"idempotency-key": bundle["id"]})
    assert res.status_code == 202
    deadline = time.monotonic() + 5
    while not receipts:
        assert time.monotonic() < deadline, "no receipt"
        await asyncio.sleep(0.01)
    ((url, receipt),) = receipts
    assert url.endswith("/primary-care/v1/receipts") and receipt["messageId"] == bundle["id"]
    broken = {"resourceType": "Bundle", "type": "message", "entry": []}
    refused = await client.post(PATH, json=broken, headers={"idempotency-key": "x"})
    assert refused.status_code == 422
    wrong_token = await client.post(
        PATH, json=bundle, headers={"idempotency-key": "y", "authorization": "Bearer no"}
    )
    assert wrong_token.status_code == 401
