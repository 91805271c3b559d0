"""A stored payload that no longer opens (its key left ROUTER_PAYLOAD_KEYS too early) is
dead-lettered as ``payload_undecryptable`` with an incident; every other message is still
delivered and the router's tick and batches keep running."""

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.envelope import ResponseCode
from services.messaging.outbox import outbox
from services.messaging.payload_crypto import Keyring, encode_keyring, new_key
from services.router.routing.domain import AlertKind, DeliveryState
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, alert_delivery, delivery, delivery_transition
from tests.support.payloads import routing
from tests.support.router import Clock, inbound, message_id, result, started

pytestmark = pytest.mark.security

OLD, NEW = new_key(), new_key()
BOTH = Keyring.from_setting(encode_keyring("old", {"old": OLD, "new": NEW}))
NEW_ONLY = Keyring.from_setting(encode_keyring("new", {"new": NEW}))  # "old" removed too early


def personnummer_of(record) -> str:
    bundle = json.loads(record.value)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            return str(entry["resource"]["identifier"][0]["value"])
    raise AssertionError("no Patient in the bundle")


async def states(sessions, mid):
    async with sessions() as s:
        rows = (
            await s.execute(
                select(delivery.c.id, delivery.c.state, delivery.c.last_error).where(
                    delivery.c.message_id == mid
                )
            )
        ).all()
    assert rows, f"no deliveries for {mid}"
    return rows


async def commands_for(sessions, mid):
    async with sessions() as s:
        rows = (await s.execute(select(outbox.c.topic, outbox.c.headers, outbox.c.payload))).all()
    return [r for r in rows if r.headers.get("message-id") == mid and r.topic != topics.DEAD_LETTER]


async def test_one_unopenable_payload_is_dead_lettered_and_the_rest_still_flow(sessions, caplog):
    clock = Clock()
    before = await started(Router(sessions=sessions, rules=routing(BOTH), clock=clock))
    bad = inbound(11, patient="a" * 32)  # sealed under "old", then sent back for a retry
    await before.handle_batch([bad])
    await before.handle_batch([result(message_id(bad), ResponseCode.TRANSIENT_ERROR)])
    assert {r.state for r in await states(sessions, message_id(bad))} >= {"pending"}
    dispatched_before = len(await commands_for(sessions, message_id(bad)))

    # restarted with "old" removed from the ring
    after = Router(sessions=sessions, rules=routing(NEW_ONLY), clock=clock)
    good = inbound(12, patient="b" * 32)
    caplog.set_level(logging.INFO)
    await after.handle_batch([good])  # a new message is stored and dispatched
    clock.advance(5)  # the retry is due; the good message's attempt has not expired
    done = await after.tick()  # raised UnknownKey before: nothing else was delivered
    later = inbound(13, patient="c" * 32)
    await after.handle_batch([later])

    for ok in (good, later):
        assert await commands_for(sessions, message_id(ok)), "another message was not delivered"
        assert {r.state for r in await states(sessions, message_id(ok))} == {
            DeliveryState.DISPATCHED.value
        }
    assert done["dispatched"] == 0  # the bad one's retry was the only due delivery
    assert len(await commands_for(sessions, message_id(bad))) == dispatched_before

    dead = [r for r in await states(sessions, message_id(bad)) if r.state == "dead_letter"]
    assert dead and all(r.last_error.startswith("payload_undecryptable") for r in dead)
    assert all("UnknownKey" in r.last_error and "key old" in r.last_error for r in dead)
    async with sessions() as s:
        incidents = (
            await s.execute(
                select(alert.c.id, alert.c.kind, alert.c.severity, alert.c.summary).where(
                    alert.c.kind == AlertKind.PAYLOAD_UNDECRYPTABLE.value
                )
            )
        ).all()
        linked = set(
            (
                await s.execute(
                    select(alert_delivery.c.delivery_id).where(
                        alert_delivery.c.alert_id.in_([i.id for i in incidents])
                    )
                )
            ).scalars()
        )
        reasons = (
            await s.execute(
                select(delivery_transition.c.reason).where(
                    delivery_transition.c.delivery_id.in_([r.id for r in dead]),
                    delivery_transition.c.to_state == "dead_letter",
                )
            )
        ).scalars()
    assert incidents and all(i.severity == "critical" for i in incidents)
    assert "ROUTER_PAYLOAD_KEYS" in incidents[0].summary
    assert {r.id for r in dead} <= linked
    assert all(r.startswith("payload_undecryptable") for r in reasons)
    # the unopenable message is not put on the dead-letter topic (there is nothing to put)
    async with sessions() as s:
        on_dlq = (
            await s.execute(select(outbox.c.headers).where(outbox.c.topic == topics.DEAD_LETTER))
        ).scalars()
        assert all(h["message-id"] != message_id(bad) for h in on_dlq)

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "delivery dead-lettered" in logged
    for record in (bad, good, later):
        assert personnummer_of(record) not in logged


async def test_a_fatal_result_for_an_unopenable_payload_is_dead_lettered_too(sessions):
    clock = Clock()
    before = await started(Router(sessions=sessions, rules=routing(BOTH), clock=clock))
    bad = inbound(21, patient="d" * 32)
    await before.handle_batch([bad])
    after = Router(sessions=sessions, rules=routing(NEW_ONLY), clock=clock)
    await after.handle_batch(
        [result(message_id(bad), ResponseCode.FATAL_ERROR, why="refused by Treserva")]
    )
    dead = [r for r in await states(sessions, message_id(bad)) if r.state == "dead_letter"]
    assert dead and "refused by Treserva" in dead[0].last_error
    assert dead[0].last_error.startswith("payload_undecryptable")
    # the watchdog's later checks (overdue, legal deadline) do not trip over it either
    clock.advance(timedelta(days=3).total_seconds())
    await after.tick()
