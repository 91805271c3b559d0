"""Primary care as the second destination of the hospital's notices: the FHIR message is
delivered as it is to $process-message (but for a fresh Bundle.id on every send), marked when
superseded, and confirmed by receipt."""

import asyncio
import itertools
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
from services.messaging.supersession import superseded_by as superseded_by_of
from services.messaging.vocabulary import SUPERSEDED_BY_URL, SUPERSEDED_TAG_SYSTEM, URI_SYSTEM
from tests.support.treserva import NOW, fhir


def header_id(bundle):
    return bundle["entry"][0]["resource"]["id"]


def command(bundle, *, superseded_by=None, attempt=1):
    headers = {"message-id": header_id(bundle), "attempt": str(attempt), "delivery-id": "3"}
    if superseded_by:
        headers["superseded-by"] = superseded_by
    return IncomingRecord(
        topics.outbound("primary-care"), 0, 1, "p" * 32, json.dumps(bundle).encode(), headers
    )


def test_every_hospital_notice_goes_to_primary_care_but_not_what_treserva_sends():
    assert EventCode.ADMISSION_NOTICE in EVENTS and EventCode.DISCHARGE_NOTICE in EVENTS
    assert EventCode.SIP_INVITATION in EVENTS and EventCode.MEDICATION_LIST in EVENTS
    assert EventCode.RECEIPT not in EVENTS


def send_ids():
    """A deterministic Bundle.id source: send-1, send-2, …"""
    counter = itertools.count(1)
    return lambda: f"send-{next(counter)}"


def deps_for(sessions, client):
    return DeliveryDeps(
        sessions=sessions,
        client=client,
        clock=lambda: NOW,
        destination=destination("tc"),
        bundle_ids=send_ids(),
    )


async def test_the_fhir_message_is_delivered_unchanged_and_reported(sessions):
    client = FakeJournalClient()
    deps = deps_for(sessions, client)
    bundle = fhir("personnummer-full.input.json")
    await handle_delivery_batch([command(bundle)], deps=deps)
    ((path, key, document),) = client.calls
    # unchanged but for this send's own Bundle.id; keyed on the message id
    assert (path, key, document) == (PATH, header_id(bundle), {**bundle, "id": "send-1"})
    async with sessions() as s:
        (row,) = (await s.execute(outbox.select())).all()
        env = read_envelope(open_value(store_keyring(s), row, row.owner))
    assert (env.source_system, env.response_to, env.response_code) == (
        "primary-care",
        header_id(bundle),
        "ok",
    )


async def test_every_send_of_a_message_has_its_own_bundle_id_and_the_same_message_id(sessions):
    client = FakeJournalClient()
    deps = deps_for(sessions, client)
    bundle = fhir("personnummer-full.input.json")
    record = command(bundle)
    await handle_delivery_batch([record, command(bundle, attempt=2)], deps=deps)  # a retry
    await handle_delivery_batch([command(bundle, attempt=3)], deps=deps)  # a replay
    await handle_delivery_batch([record], deps=deps)  # a Kafka redelivery: not posted again
    sent = [document for _, _, document in client.calls]
    assert [d["id"] for d in sent] == ["send-1", "send-2", "send-3"]
    assert {header_id(d) for d in sent} == {header_id(bundle)}
    assert {key for _, key, _ in client.calls} == {header_id(bundle)}  # Idempotency-Key
    assert {json.dumps(d["identifier"]) for d in sent} == {json.dumps(bundle["identifier"])}
    assert header_id(bundle) not in {d["id"] for d in sent}
    assert json.loads(record.value) == bundle  # the verified record itself is left as it is


async def test_a_superseded_version_names_the_newer_message_in_an_extension(sessions):
    client = FakeJournalClient()
    deps = deps_for(sessions, client)
    bundle = fhir("personnummer-full.input.json")
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "medication-list"
    newer = "0b0e6bd8-4d4e-5c3a-9a7e-000000000002"
    await handle_delivery_batch([command(bundle, superseded_by=newer)], deps=deps)
    ((_, _, document),) = client.calls
    assert document["meta"]["tag"] == [{"system": SUPERSEDED_TAG_SYSTEM, "code": "superseded"}]
    assert document["entry"][0]["resource"]["extension"] == [
        {
            "url": SUPERSEDED_BY_URL,
            "valueIdentifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{newer}"},
        }
    ]
    assert superseded_by_of(document) == newer
    assert newer not in json.dumps(_displays(document))  # no Coding.display carries an id


def _displays(node):
    if isinstance(node, dict):
        found = [node["display"]] if isinstance(node.get("display"), str) else []
        return found + [d for v in node.values() for d in _displays(v)]
    if isinstance(node, list):
        return [d for v in node for d in _displays(v)]
    return []


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
    sent = {**bundle, "id": "a-send-of-its-own"}  # the receipt names the message, not the send
    res = await client.post(PATH, json=sent, headers={"idempotency-key": header_id(bundle)})
    assert res.status_code == 202
    deadline = time.monotonic() + 5
    while not receipts:
        assert time.monotonic() < deadline, "no receipt"
        await asyncio.sleep(0.01)
    ((url, receipt),) = receipts
    assert url.endswith("/primary-care/v1/receipts") and receipt["messageId"] == header_id(bundle)
    broken = {"resourceType": "Bundle", "type": "message", "entry": []}
    refused = await client.post(PATH, json=broken, headers={"idempotency-key": "x"})
    assert refused.status_code == 422
    wrong_token = await client.post(
        PATH, json=bundle, headers={"idempotency-key": "y", "authorization": "Bearer no"}
    )
    assert wrong_token.status_code == 401
