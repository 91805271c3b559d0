"""Webhook subscriptions: a scripted subscriber behind a MockTransport, a subscription made
in the store, and the webhook topic's records and deliveries."""

import random
from datetime import timedelta

import httpx
from sqlalchemy import select

from services.messaging import topics
from services.messaging.db import store_keyring
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import open_value, outbox
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.tables import delivery
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import Criteria
from tests.support.router import T0

SECRET = "platform-secret-0123456789"


URL = "https://platform.example.se/hooks/carebridge"


def webhook_rules() -> RoutingRules:
    """Short retries (3 attempts, 1-2 s apart) so a webhook's failures are seen quickly."""
    return RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=2, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
    )


class Subscriber:
    """The subscriber behind a MockTransport: answers from a script, records requests."""

    def __init__(self):
        self.requests: list[httpx.Request] = []
        self.answers: list[int | Exception] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={})


async def subscribe(sessions, events=("admission-notice",), sources=None, *, activate=True):
    """A rest-hook subscription made by one admin and (``activate``) activated by another."""
    async with sessions.begin() as s:
        created = await subscription_store.create_rest_hook(
            s,
            name="platform",
            criteria=Criteria(frozenset(events), None if sources is None else frozenset(sources)),
            endpoint=URL,
            secret=SECRET,
            created_by="ops",
            now=T0,
        )
        if activate:
            assert await subscription_store.activate(s, created.id, "approver", T0)
    return created.id


async def commands(sessions):
    """The webhook topic's records, as the dispatcher would read them."""
    async with sessions() as s:
        rows = (
            await s.execute(
                select(outbox).where(outbox.c.topic == topics.WEBHOOKS).order_by(outbox.c.id)
            )
        ).all()
        ring = store_keyring(s)
    return [
        IncomingRecord(r.topic, 0, r.id, r.key, open_value(ring, r, r.owner).encode(), r.headers)
        for r in rows
    ]


async def hook_delivery(sessions, sub_id):
    async with sessions() as s:
        (row,) = (await s.execute(select(delivery).where(delivery.c.destination == sub_id))).all()
    return row
