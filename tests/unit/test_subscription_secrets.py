"""Subscription secrets at rest: sealed with the payload keyring and the subscription id as
associated data; a plain row written before still signs; a secret whose key is gone
dead-letters its deliveries without stopping the dispatcher; rotation re-seals them."""

import httpx
import pytest
from sqlalchemy import select, update

from services.messaging.db import session_factory
from services.messaging.payload_crypto import (
    SANDBOX_PAYLOAD_KEYS,
    Keyring,
    UndecryptablePayload,
    encode_keyring,
    new_key,
)
from services.messaging.signing import verify
from services.messaging.webhook_client import HttpWebhookSender
from services.router.audit.payload_keys import count_stale, reseal_batch
from services.router.ops.app import create_app
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, subscription
from services.router.settings import RouterSettings
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.webhooks import WebhookDispatcher
from tests.support.payloads import routing
from tests.support.router import T0, Clock, inbound, started
from tests.support.webhooks import SECRET, Subscriber, commands, hook_delivery, subscribe


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rules():
    return routing(Keyring.from_setting(SANDBOX_PAYLOAD_KEYS))


@pytest.fixture
def subscriber():
    return Subscriber()


pytestmark = pytest.mark.security

OLD, NEW = new_key(), new_key()
RING_OLD = Keyring.from_setting(encode_keyring("old", {"old": OLD}))
RING_BOTH = Keyring.from_setting(encode_keyring("new", {"old": OLD, "new": NEW}))
RING_NEW = Keyring.from_setting(encode_keyring("new", {"new": NEW}))


async def stored_secret(sessions, sub_id):
    async with sessions() as s:
        return await s.scalar(select(subscription.c.secret).where(subscription.c.id == sub_id))


async def deliver(sessions, clock, rules, subscriber):
    """Route one admission and hand its webhook command to a dispatcher on ``sessions``."""
    router = await started(Router(sessions=sessions, rules=rules, clock=clock))
    await router.handle_batch([inbound()])
    sender = HttpWebhookSender(
        5.0, clock=lambda: clock().timestamp(), transport=httpx.MockTransport(subscriber)
    )
    try:
        dispatcher = WebhookDispatcher(sessions=sessions, rules=rules, sender=sender, clock=clock)
        await dispatcher.handle_batch(await commands(sessions))
    finally:
        await sender.aclose()


async def test_the_secret_is_sealed_and_bound_to_its_subscription(sessions):
    sub_id = await subscribe(sessions)
    other = await subscribe(sessions)
    raw = await stored_secret(sessions, sub_id)
    assert raw.startswith("enc:v1:sandbox-1:") and SECRET not in raw
    async with sessions() as s:
        target = await subscription_store.webhook_target(s, sub_id)
        assert target is not None and target.secret == SECRET
        with pytest.raises(UndecryptablePayload):  # copied onto another subscription's row
            subscription_store.open_secret(s, other, raw)


async def test_the_webhook_is_signed_with_the_opened_secret(sessions, clock, rules, subscriber):
    sub_id = await subscribe(sessions)
    await deliver(sessions, clock, rules, subscriber)
    (req,) = subscriber.requests
    assert verify(SECRET, req.content, req.headers["x-carebridge-signature"], now=T0.timestamp())
    assert (await hook_delivery(sessions, sub_id)).state == "confirmed"


async def test_a_plain_secret_written_before_sealing_still_signs(
    sessions, clock, rules, subscriber
):
    sub_id = await subscribe(sessions)
    async with sessions.begin() as s:
        await s.execute(
            update(subscription).where(subscription.c.id == sub_id).values(secret=SECRET)
        )
    await deliver(sessions, clock, rules, subscriber)
    (req,) = subscriber.requests
    assert verify(SECRET, req.content, req.headers["x-carebridge-signature"], now=T0.timestamp())


async def test_a_secret_whose_key_is_gone_dead_letters_without_a_post(
    engine, clock, rules, subscriber
):
    before = session_factory(engine, keyring=RING_OLD)
    sub_id = await subscribe(before)
    after = session_factory(engine, keyring=RING_NEW)
    await deliver(after, clock, rules, subscriber)  # the dispatcher does not crash
    assert subscriber.requests == []
    d = await hook_delivery(after, sub_id)
    assert d.state == "dead_letter" and d.last_error.startswith("secret_undecryptable")
    async with after() as s:
        kinds = {(a.kind, a.destination) for a in (await s.execute(select(alert))).all()}
    assert ("delivery_failed", sub_id) in kinds


async def test_rotation_reseals_secrets_plain_and_old(engine):
    before = session_factory(engine, keyring=RING_OLD)
    old_sub = await subscribe(before)
    plain_sub = await subscribe(before)
    async with before.begin() as s:
        await s.execute(
            update(subscription).where(subscription.c.id == plain_sub).values(secret=SECRET)
        )
    rotated = session_factory(engine, keyring=RING_BOTH)
    async with rotated() as s:
        assert await count_stale(s, RING_BOTH) == 2
    async with rotated.begin() as s:
        step = await reseal_batch(s, RING_BOTH)
    assert step.resealed == 2
    for sub_id in (old_sub, plain_sub):
        assert (await stored_secret(rotated, sub_id)).startswith("enc:v1:new:")
    after = session_factory(engine, keyring=RING_NEW)  # the old key has left the ring
    async with after() as s:
        assert await count_stale(s, RING_NEW) == 0
        for sub_id in (old_sub, plain_sub):
            target = await subscription_store.webhook_target(s, sub_id)
        assert target is not None and target.secret == SECRET


async def test_the_key_status_counts_stale_secrets_and_outbox_rows(engine):
    before = session_factory(engine, keyring=RING_OLD)
    await subscribe(before)
    after = session_factory(engine, keyring=RING_BOTH)
    settings = RouterSettings(payload_keys=encode_keyring("new", {"old": OLD, "new": NEW}))
    app = create_app(settings, sessions=after)
    auth = {"authorization": "Bearer sandbox-ops-token"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as c:
        status = (await c.get("/api/v1/payload-keys", headers=auth)).json()
        assert status["stale"] == 1 and status["staleOutbox"] == 0
        step = await c.post("/api/v1/payload-keys/rotate", json={"after": ""}, headers=auth)
        assert step.json()["resealed"] == 1 and step.json()["stale"] == 0
