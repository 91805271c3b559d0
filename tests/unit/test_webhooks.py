"""Webhook subscribers on a real database: routing to a rest-hook subscription, the command
on the webhook topic, the signed POST (httpx.MockTransport as the subscriber), and how each
answer moves the delivery, through the router's own outcome logic."""

import itertools
import json

import httpx
import pytest
from sqlalchemy import select

from services.messaging.envelope import EventCode
from services.messaging.journal_client import FatalDeliveryError, TransientDeliveryError
from services.messaging.signing import verify
from services.messaging.supersession import superseded_by
from services.messaging.tracing import parse as parse_traceparent
from services.messaging.vocabulary import SUPERSEDED_TAG_SYSTEM
from services.messaging.webhook_client import HttpWebhookSender, Webhook
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, delivery, delivery_transition
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import SubscriptionStatus
from services.router.subscriptions.webhooks import WebhookDispatcher
from tests.support.router import T0, Clock, inbound, message_id, started, versioned
from tests.support.webhooks import (
    SECRET,
    URL,
    Subscriber,
    commands,
    hook_delivery,
    subscribe,
    webhook_rules,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rules():
    return webhook_rules()


@pytest.fixture
async def router(sessions, clock, rules):
    return await started(Router(sessions=sessions, rules=rules, clock=clock))


@pytest.fixture
def subscriber():
    return Subscriber()


@pytest.fixture
async def dispatcher(sessions, clock, rules, subscriber):
    sender = HttpWebhookSender(
        5.0, clock=lambda: clock().timestamp(), transport=httpx.MockTransport(subscriber)
    )
    counter = itertools.count(1)
    yield WebhookDispatcher(
        sessions=sessions,
        rules=rules,
        sender=sender,
        clock=clock,
        bundle_ids=lambda: f"send-{next(counter)}",
    )
    await sender.aclose()


async def test_a_matching_message_gets_a_delivery_and_a_command_on_the_webhook_topic(
    router, sessions
):
    sub_id = await subscribe(sessions)
    rec = inbound()
    await router.handle_batch([rec])
    async with sessions() as s:
        destinations = [r.destination for r in (await s.execute(select(delivery))).all()]
    assert destinations == ["treserva", "primary-care", sub_id]
    (cmd,) = await commands(sessions)
    d = await hook_delivery(sessions, sub_id)
    assert cmd.key == "p" * 32 and cmd.value == rec.value
    headers = dict(cmd.headers)
    assert parse_traceparent(headers.pop("traceparent")) is not None
    assert headers == {
        "message-id": message_id(rec),
        "delivery-id": str(d.id),
        "attempt": "1",
        "event": "admission-notice",
        "subscription-id": sub_id,
    }


async def test_an_ok_posts_the_signed_message_and_confirms_the_delivery(
    router, dispatcher, sessions, subscriber
):
    sub_id = await subscribe(sessions)
    rec = inbound()
    await router.handle_batch([rec])
    await dispatcher.handle_batch(await commands(sessions))
    (req,) = subscriber.requests
    # the message as it is, but for this POST's own Bundle.id
    assert str(req.url) == URL and json.loads(req.content) == {
        **json.loads(rec.value),
        "id": "send-1",
    }
    assert req.headers["content-type"] == "application/fhir+json"
    assert req.headers["idempotency-key"] == message_id(rec)
    assert req.headers["x-carebridge-event"] == "admission-notice"
    assert req.headers["x-carebridge-subscription"] == sub_id
    signed = verify(SECRET, req.content, req.headers["x-carebridge-signature"], now=T0.timestamp())
    assert signed == int(T0.timestamp())
    d = await hook_delivery(sessions, sub_id)
    assert d.state == "confirmed" and d.confirmed_at == T0 and d.sent_at == T0
    async with sessions() as s:
        reasons = [
            r.reason
            for r in (
                await s.execute(
                    select(delivery_transition).where(delivery_transition.c.delivery_id == d.id)
                )
            ).all()
        ]
    assert reasons == ["routed", "attempt 1 by router", "acknowledged by subscriber (attempt 1)"]


async def test_a_redelivered_command_is_not_posted_twice(router, dispatcher, sessions, subscriber):
    await subscribe(sessions)
    await router.handle_batch([inbound()])
    (cmd,) = await commands(sessions)
    await dispatcher.handle_batch([cmd])
    await dispatcher.handle_batch([cmd])  # Kafka redelivers it
    assert len(subscriber.requests) == 1


async def test_a_503_is_retried_with_backoff_until_the_subscriber_recovers(
    router, dispatcher, sessions, subscriber, clock
):
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    subscriber.answers = [503]
    await dispatcher.handle_batch(await commands(sessions))
    d = await hook_delivery(sessions, sub_id)
    assert d.state == "pending" and d.last_error == "HTTP 503" and d.next_attempt_at > clock.now
    clock.advance(3)
    await router.tick()
    first, second = await commands(sessions)
    assert second.headers["attempt"] == "2"
    await dispatcher.handle_batch([first, second])  # the old one is not posted again
    assert len(subscriber.requests) == 2
    assert (await hook_delivery(sessions, sub_id)).state == "confirmed"
    # the retry is a send of its own (Bundle.id), of the same message (MessageHeader.id)
    tried, retried = (json.loads(r.content) for r in subscriber.requests)
    assert (tried["id"], retried["id"]) == ("send-1", "send-2")
    assert tried["entry"][0]["resource"]["id"] == retried["entry"][0]["resource"]["id"]
    assert {r.headers["idempotency-key"] for r in subscriber.requests} == {
        tried["entry"][0]["resource"]["id"]
    }


@pytest.mark.parametrize(
    "answer",
    [408, 425, 429, 500, 502, 503, httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
)
async def test_transient_answers_are_retried(router, dispatcher, sessions, subscriber, answer):
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    subscriber.answers = [answer]
    await dispatcher.handle_batch(await commands(sessions))
    assert (await hook_delivery(sessions, sub_id)).state == "pending"


async def test_a_refused_signature_is_retried_under_an_incident_not_dead_lettered(
    router, dispatcher, sessions, subscriber, clock
):
    """A 401 is the subscriber refusing our signature: a clock off by more than its
    tolerance (a jumped wall clock) or a secret rotated on one side only. Both get fixed, so
    the notice waits and is retried; it was dead-lettered as fatal."""
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    subscriber.answers = [401]
    await dispatcher.handle_batch(await commands(sessions))
    d = await hook_delivery(sessions, sub_id)
    assert d.state == "pending" and d.last_error.startswith("HTTP 401: signature refused")
    async with sessions() as s:
        (a,) = (await s.execute(select(alert))).all()
    assert (a.kind, a.destination, a.severity) == ("signature_refused", sub_id, "warning")
    clock.advance(3)
    await router.tick()
    await dispatcher.handle_batch((await commands(sessions))[1:])  # the clock is right again
    assert (await hook_delivery(sessions, sub_id)).state == "confirmed"
    await router.tick()
    async with sessions() as s:
        (a,) = (await s.execute(select(alert))).all()
    assert a.state == "resolved"  # its cause cleared with the confirmation


@pytest.mark.parametrize("status", [301, 400, 403, 404, 410, 413, 422])
async def test_other_answers_dead_letter_with_an_alert_for_the_subscription(
    router, dispatcher, sessions, subscriber, status
):
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    subscriber.answers = [status]
    await dispatcher.handle_batch(await commands(sessions))
    d = await hook_delivery(sessions, sub_id)
    assert d.state == "dead_letter" and d.last_error == f"HTTP {status}"
    async with sessions() as s:
        (a,) = (await s.execute(select(alert))).all()
    assert (a.kind, a.destination) == ("delivery_failed", sub_id)


async def test_a_subscription_switched_off_ends_its_deliveries_without_a_post(
    router, dispatcher, sessions, subscriber
):
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    async with sessions.begin() as s:
        await subscription_store.set_status(s, sub_id, SubscriptionStatus.OFF, T0)
    await dispatcher.handle_batch(await commands(sessions))
    assert subscriber.requests == []
    d = await hook_delivery(sessions, sub_id)
    assert d.state == "dead_letter" and d.last_error == "subscription ended"
    await router.handle_batch([inbound(seed=2)])  # and it gets nothing new
    async with sessions() as s:
        rows = (await s.execute(select(delivery).where(delivery.c.destination == sub_id))).all()
    assert len(rows) == 1


async def test_a_command_whose_attempt_timed_out_is_skipped(
    router, dispatcher, sessions, subscriber, clock
):
    sub_id = await subscribe(sessions)
    await router.handle_batch([inbound()])
    (late,) = await commands(sessions)
    clock.advance(31)
    await router.tick()  # the attempt expired unanswered: retry pending
    await dispatcher.handle_batch([late])
    assert subscriber.requests == []
    assert (await hook_delivery(sessions, sub_id)).state == "pending"


async def test_a_patients_next_message_waits_for_the_subscriber_then_follows(
    router, dispatcher, sessions, subscriber
):
    await subscribe(sessions)
    early, later = inbound(1, patient="a" * 32), inbound(2, patient="a" * 32)
    await router.handle_batch([early, later])
    (first,) = await commands(sessions)
    assert first.headers["message-id"] == message_id(early)
    await dispatcher.handle_batch([first])  # ok: releases the later one at once
    _, second = await commands(sessions)
    assert second.headers["message-id"] == message_id(later)
    await dispatcher.handle_batch([second])
    assert [r.headers["idempotency-key"] for r in subscriber.requests] == [
        message_id(early),
        message_id(later),
    ]


async def test_an_older_version_is_posted_marked_as_superseded(
    router, dispatcher, sessions, subscriber
):
    await subscribe(sessions, events=[EventCode.MEDICATION_LIST.value])
    newer, older = versioned(3), versioned(2)
    await router.handle_batch([newer])
    await dispatcher.handle_batch(await commands(sessions))
    await router.handle_batch([older])
    await dispatcher.handle_batch((await commands(sessions))[1:])
    plain, marked = (json.loads(r.content) for r in subscriber.requests)
    assert "meta" not in plain or "tag" not in plain["meta"]
    assert marked["meta"]["tag"] == [{"system": SUPERSEDED_TAG_SYSTEM, "code": "superseded"}]
    assert superseded_by(marked) == message_id(newer)
    assert "extension" not in plain["entry"][0]["resource"]
    # signed over what was sent
    assert verify(
        SECRET,
        subscriber.requests[1].content,
        subscriber.requests[1].headers["x-carebridge-signature"],
        now=T0.timestamp(),
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (201, None),
        (202, None),
        (204, None),
        (302, FatalDeliveryError),
        (400, FatalDeliveryError),
        (404, FatalDeliveryError),
        (408, TransientDeliveryError),
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
    ],
)
async def test_the_sender_classifies_like_a_journal_client(status, expected):
    sender = HttpWebhookSender(
        1.0, clock=lambda: 0, transport=httpx.MockTransport(lambda _: httpx.Response(status))
    )
    hook = Webhook(URL, b"{}", SECRET, "m-1", "admission-notice", "sub-1")
    try:
        if expected is None:
            assert (await sender.send(hook)).http_status == status
        else:
            with pytest.raises(expected, match=f"HTTP {status}"):
                await sender.send(hook)
    finally:
        await sender.aclose()
    assert SECRET not in repr(hook)
