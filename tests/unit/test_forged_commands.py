"""Records nobody can forge (issue 16), at every consumer: a delivery command or a receipt
whose signature does not hold changes nothing, is kept aside in the consumer's own
``rejected_record`` with its reason, and raises a critical ``untrusted_record`` incident at
the router. An adapter reports its quarantine with a signed notice on the results topic that
carries nothing of the record. The records are signed and verified for real
(services.messaging.record_signing), as the consumers' loops do."""

import json
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.adapter_treserva.service import DESTINATION
from services.messaging import topics
from services.messaging.db import make_engine, session_factory, store_keyring
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import EventCode, ResponseCode
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import IncomingRecord, verified
from services.messaging.outbox import open_value, outbox
from services.messaging.quarantine import NOTICE_EVENT, QuarantineNotice, rejected_record
from services.messaging.record_signing import (
    SIGNATURE_HEADER,
    RecordSigner,
    RecordVerifier,
    load_public,
    new_signing_key,
    parse_signing_key,
    sandbox_signing_key,
    sandbox_trusted_keys,
)
from services.messaging.webhook_client import HttpWebhookSender
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, delivery
from services.router.subscriptions.webhooks import WebhookDispatcher
from tests.support.database import new_database_url
from tests.support.router import Clock, inbound, message_id, result, routing_rules, started
from tests.support.treserva import NOW, fhir
from tests.support.webhooks import Subscriber, commands, hook_delivery, subscribe, webhook_rules

pytestmark = pytest.mark.security

PATIENT = "0123456789abcdef0123456789abcdef"  # the keyed pseudonym a command is keyed by
COMMANDS = topics.outbound("treserva")


def _signer(service: str, setting: str | None = None) -> RecordSigner:
    key_id, private = parse_signing_key(setting or sandbox_signing_key(service))
    return RecordSigner(service, key_id, private)


FORGER = _signer("router", f"sandbox-1:{new_signing_key()}")  # the router's name, not its key


def _verifier() -> RecordVerifier:
    trusted = sandbox_trusted_keys(("router", "adapter_takecare", "adapter_treserva"))
    keys = {s: {k: load_public(p) for k, p in ids.items()} for s, ids in trusted.items()}
    return RecordVerifier(keys, topics.WRITERS)


def _consumed(
    topic: str, key: str | None, value: bytes, headers: dict[str, str], signer: RecordSigner | None
) -> IncomingRecord:
    """The record as a consumer's loop hands it over: signed by ``signer`` (None: unsigned)
    when written, verified when read."""
    headers = dict(headers)
    if signer is not None:
        headers[SIGNATURE_HEADER] = signer.sign(topic, key, headers, value)
    (record,) = verified([IncomingRecord(topic, 3, 41, key, value, headers)], _verifier())
    return record


def _command(signer: RecordSigner | None) -> tuple[IncomingRecord, dict[str, Any]]:
    bundle = fhir("personnummer-full.input.json")
    headers = {
        "message-id": bundle["entry"][0]["resource"]["id"],
        "attempt": "1",
        "delivery-id": "7",
        "event": "admission-notice",
    }
    return _consumed(COMMANDS, PATIENT, json.dumps(bundle).encode(), headers, signer), bundle


@pytest.fixture
def deps(sessions):
    return DeliveryDeps(
        sessions=sessions, client=FakeJournalClient(), clock=lambda: NOW, destination=DESTINATION
    )


async def _rejected(sessions):
    async with sessions() as s:
        return (await s.execute(select(rejected_record).order_by(rejected_record.c.id))).all()


async def _outbox(sessions):
    async with sessions() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.id))).all()
        ring = store_keyring(s)
    return [(r, open_value(ring, r, r.owner)) for r in rows]


async def _alerts(sessions):
    async with sessions() as s:
        return (await s.execute(select(alert).order_by(alert.c.id))).all()


# --- the adapter --------------------------------------------------------------------------


async def test_a_command_signed_by_the_router_is_delivered(deps, sessions):
    """The control: the same command, signed with the router's key, is posted."""
    record, _ = _command(_signer("router"))
    assert record.untrusted is None
    await handle_delivery_batch([record], deps=deps)
    assert len(deps.client.calls) == 1 and await _rejected(sessions) == []


@pytest.mark.parametrize(
    ("signer", "reason"),
    [
        (FORGER, "BadRecordSignature: the signature of router does not match"),
        (None, "UnsignedRecord: the record is not signed"),
        (_signer("adapter_takecare"), "WrongSigner: adapter_takecare may not write " + COMMANDS),
    ],
    ids=["forged", "unsigned", "wrong-signer"],
)
async def test_an_untrusted_command_is_quarantined_with_its_reason_and_reported(
    deps, sessions, caplog, signer, reason
):
    caplog.set_level(logging.DEBUG)
    record, bundle = _command(signer)
    await handle_delivery_batch([record], deps=deps)
    await handle_delivery_batch([record], deps=deps)  # Kafka redelivers it
    assert deps.client.calls == []  # never posted to the journal
    (kept,) = await _rejected(sessions)
    assert (kept.topic, kept.partition, kept.offset) == (COMMANDS, 3, 41)
    assert kept.reason == f"untrusted: {reason}" and kept.received_at == NOW
    ((row, value),) = await _outbox(sessions)  # one notice, no delivery outcome
    assert row.topic == topics.RESULTS and dict(row.headers) == {"event": NOTICE_EVENT}
    assert json.loads(value) == {
        "type": NOTICE_EVENT,
        "topic": COMMANDS,
        "partition": 3,
        "offset": 41,
        "reason": reason.partition(":")[0],
        "quarantinedBy": "adapter_treserva",
    }
    patient = bundle["entry"][0]["resource"]["id"], PATIENT, "19121212", "Tolvan"
    said = [value, row.key, json.dumps(dict(row.headers))]
    said += [json.dumps(r.__dict__, default=str) for r in caplog.records]
    assert not [p for p in patient for text in said if p in text]


# --- the router ---------------------------------------------------------------------------


@pytest.fixture
async def router_sessions(tmp_path):
    """The router's own database: an adapter's rejected records are not in it."""
    engine = make_engine(await new_database_url(tmp_path, "router"))
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(router_sessions, clock):
    return await started(Router(sessions=router_sessions, rules=routing_rules(), clock=clock))


async def _published(sessions, signer: RecordSigner) -> list[IncomingRecord]:
    """What the adapter's relay publishes from its outbox, as the router reads it."""
    return [
        _consumed(r.topic, r.key, value.encode(), dict(r.headers), signer)
        for r, value in await _outbox(sessions)
    ]


async def test_the_router_raises_a_critical_incident_for_the_adapters_quarantine(
    deps, sessions, router, router_sessions
):
    await router.handle_batch([inbound()])
    forged, _ = _command(FORGER)
    await handle_delivery_batch([forged], deps=deps)
    notices = await _published(sessions, _signer("adapter_treserva"))
    assert [n.untrusted for n in notices] == [None]
    await router.handle_batch(notices)
    (a,) = await _alerts(router_sessions)
    assert (a.kind, a.severity, a.state, a.destination) == (
        "untrusted_record",
        "critical",
        "open",
        COMMANDS,
    )
    assert await _rejected(router_sessions) == []  # kept aside by the adapter, not here
    async with router_sessions() as s:
        states = {r.destination: r.state for r in (await s.execute(select(delivery))).all()}
    assert states["treserva"] == "dispatched"  # the real delivery still waits for its outcome


async def test_only_the_adapter_that_reads_the_topic_may_report_on_it(router, router_sessions):
    """A compromised adapter_takecare may not raise incidents about Treserva's commands."""
    notice = QuarantineNotice(COMMANDS, 0, 1, "BadRecordSignature").to_record(
        quarantined_by="adapter_takecare"
    )
    record = _consumed(
        notice.topic,
        notice.key,
        notice.value.encode(),
        notice.headers,
        _signer("adapter_takecare"),
    )
    await router.handle_batch([record])
    (kept,) = await _rejected(router_sessions)
    assert kept.reason == "untrusted: WrongSigner: adapter_takecare reported for adapter_treserva"
    (a,) = await _alerts(router_sessions)
    assert (a.kind, a.severity, a.destination) == ("untrusted_record", "critical", topics.RESULTS)


async def test_a_notice_that_is_no_notice_is_rejected(router, router_sessions):
    record = _consumed(
        topics.RESULTS,
        "x",
        b'{"type": "record-quarantined", "topic": "carebridge.inbound.v1"}',
        {"event": NOTICE_EVENT},
        _signer("adapter_treserva"),
    )
    await router.handle_batch([record])
    (kept,) = await _rejected(router_sessions)
    assert kept.reason == "quarantine notice: not a delivery topic"
    assert await _alerts(router_sessions) == []


async def test_a_forged_receipt_is_kept_aside_by_the_router_with_its_reason(
    router, router_sessions
):
    """A receipt signed in adapter_treserva's name with another key confirms nothing."""
    await router.handle_batch([rec := inbound()])
    forger = _signer("adapter_treserva", f"sandbox-1:{new_signing_key()}")
    receipt = result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)
    forged = _consumed(topics.RESULTS, receipt.key, receipt.value, receipt.headers, forger)
    await router.handle_batch([forged])
    (kept,) = await _rejected(router_sessions)
    assert (kept.topic, kept.partition, kept.offset) == (topics.RESULTS, 3, 41)
    assert kept.reason == (
        "untrusted: BadRecordSignature: the signature of adapter_treserva does not match"
    )
    (a,) = await _alerts(router_sessions)
    assert (a.kind, a.severity, a.destination) == ("untrusted_record", "critical", topics.RESULTS)
    async with router_sessions() as s:
        states = {r.destination: r.state for r in (await s.execute(select(delivery))).all()}
    assert states["treserva"] == "dispatched"


# --- the router's webhook dispatcher -----------------------------------------------------


async def test_a_forged_webhook_command_is_kept_aside_with_its_reason(sessions, clock):
    rules = webhook_rules()
    router = await started(Router(sessions=sessions, rules=rules, clock=clock))
    subscriber = Subscriber()
    sender = HttpWebhookSender(
        5.0, clock=lambda: clock().timestamp(), transport=httpx.MockTransport(subscriber)
    )
    dispatcher = WebhookDispatcher(sessions=sessions, rules=rules, sender=sender, clock=clock)
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    (real,) = await commands(sessions)
    forged = _consumed(topics.WEBHOOKS, real.key, real.value, real.headers, FORGER)
    await dispatcher.handle_batch([forged])
    await sender.aclose()
    assert subscriber.requests == []
    (kept,) = await _rejected(sessions)
    assert kept.topic == topics.WEBHOOKS
    assert kept.reason == "untrusted: BadRecordSignature: the signature of router does not match"
    (a,) = await _alerts(sessions)
    assert (a.kind, a.severity, a.destination) == ("untrusted_record", "critical", topics.WEBHOOKS)
    assert (await hook_delivery(sessions, sub_id)).state == "dispatched"  # it changed nothing
