"""Router service layer on a real database, driven by a controllable clock."""

import json
import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.envelope import EventCode, ResponseCode, System
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import open_value, outbox
from services.messaging.payload_crypto import SANDBOX_PAYLOAD_KEYS, Keyring
from services.messaging.tracing import parse as parse_traceparent
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.routing.tables import (
    alert,
    alert_delivery,
    delivery,
    delivery_attempt,
    delivery_transition,
    message,
    rejected_record,
)
from tests.support.router import (
    Clock,
    deliveries,
    inbound,
    message_id,
    result,
    routing_rules,
    started,
    versioned,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    return await started(Router(sessions=sessions, rules=routing_rules(), clock=clock))


async def test_hospital_notices_go_to_treserva_and_to_primary_care(router, sessions):
    rec = inbound()
    await router.handle_batch([rec])
    async with sessions() as s:
        rows = (await s.execute(select(delivery.c.destination, delivery.c.state))).all()
    assert sorted(rows) == [("primary-care", "dispatched"), ("treserva", "dispatched")]
    async with sessions() as s:
        topics_out = {r.topic for r in (await s.execute(select(outbox))).all()}
    assert topics_out == {topics.outbound("treserva"), topics.outbound("primary-care")}


async def commands(sessions):
    async with sessions() as s:
        return (
            await s.execute(
                select(outbox)
                .where(outbox.c.topic == topics.outbound("treserva"))
                .order_by(outbox.c.id)
            )
        ).all()


async def alerts(sessions):
    async with sessions() as s:
        return (await s.execute(select(alert).order_by(alert.c.id))).all()


async def test_an_admission_is_stored_and_dispatched_to_treserva(router, sessions):
    rec = inbound()
    await router.handle_batch([rec])
    (d,) = await deliveries(sessions)
    assert (d.destination, d.state, d.attempts) == ("treserva", "dispatched", 1)
    (cmd,) = await commands(sessions)
    assert cmd.key == "p" * 32
    headers = dict(cmd.headers)
    assert parse_traceparent(headers.pop("traceparent")) is not None  # a trace of its own
    assert headers == {
        "message-id": message_id(rec),
        "delivery-id": str(d.id),
        "attempt": "1",
        "event": "admission-notice",
        "confirm-by": d.confirm_by.isoformat(),  # until when it waits for the receipt
    }
    assert cmd.payload != rec.value.decode()  # sealed at rest, opened for Kafka:
    assert open_value(Keyring.from_setting(SANDBOX_PAYLOAD_KEYS), cmd, cmd.owner) == (
        rec.value.decode()
    )


async def test_the_same_message_twice_and_a_resend_under_a_new_id_are_stored_once(router, sessions):
    rec = inbound(event_id="tc-1")
    await router.handle_batch([rec, rec])
    resent = json.loads(rec.value)
    resent["entry"][0]["resource"]["id"] = str(uuid.uuid4())  # same business key, new message id
    await router.handle_batch(
        [IncomingRecord(topics.INBOUND, 0, 99, rec.key, json.dumps(resent).encode(), {})]
    )
    assert len(await deliveries(sessions)) == 1


async def test_poison_records_are_kept_for_operations_and_skipped(router, sessions):
    await router.handle_batch(
        [IncomingRecord(topics.INBOUND, 0, 5, None, b"\xff garbage", {}), inbound()]
    )
    async with sessions() as s:
        (rej,) = (await s.execute(select(rejected_record))).all()
    assert rej.offset == 5 and rej.reason == "not JSON"
    assert len(await deliveries(sessions)) == 1


async def test_ok_then_receipt_confirms(router, sessions):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    assert (await deliveries(sessions))[0].state == "sent"
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    (d,) = await deliveries(sessions)
    assert d.state == "confirmed" and d.confirmed_at is not None


async def test_sent_and_confirmed_are_published_on_the_public_topic(router, sessions):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    async with sessions() as s:
        rows = (
            await s.execute(
                select(outbox).where(outbox.c.topic == topics.EVENTS).order_by(outbox.c.id)
            )
        ).all()
    keyring = Keyring.from_setting(SANDBOX_PAYLOAD_KEYS)
    events = [json.loads(open_value(keyring, r, r.owner)) for r in rows]
    treserva = [(e["state"], e["messageId"]) for e in events if e["destination"] == "treserva"]
    assert treserva == [("sent", message_id(rec)), ("confirmed", message_id(rec))]
    assert all(r.key == message_id(rec) for r in rows)  # never the patient's pseudonym


async def test_a_receipt_may_overtake_the_ok(router, sessions):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch(
        [
            result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT),
            result(message_id(rec), ResponseCode.OK),
        ]
    )
    assert (await deliveries(sessions))[0].state == "confirmed"


async def test_transient_errors_are_retried_with_backoff(router, sessions, clock):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch(
        [result(message_id(rec), ResponseCode.TRANSIENT_ERROR, why="HTTP 503")]
    )
    (d,) = await deliveries(sessions)
    assert d.state == "pending" and d.next_attempt_at > clock.now
    await router.tick()
    assert len(await commands(sessions)) == 1  # not yet due
    clock.advance(2)
    await router.tick()
    cmds = await commands(sessions)
    assert [c.headers["attempt"] for c in cmds] == ["1", "2"]


async def test_spent_attempts_dead_letter_and_alert(router, sessions, clock):
    rec = inbound()
    await router.handle_batch([rec])
    for attempt in (1, 2, 3):
        await router.handle_batch(
            [result(message_id(rec), ResponseCode.TRANSIENT_ERROR, attempt=attempt)]
        )
        clock.advance(20)
        await router.tick()
    (d,) = await deliveries(sessions)
    assert d.state == "dead_letter" and d.attempts == 3
    (a,) = await alerts(sessions)
    assert (a.kind, a.destination, a.state) == ("delivery_failed", "treserva", "open")


async def test_a_fatal_error_dead_letters_at_once(router, sessions):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR, why="HTTP 422")])
    (d,) = await deliveries(sessions)
    assert d.state == "dead_letter" and "422" in d.last_error
    assert [a.kind for a in await alerts(sessions)] == ["delivery_failed"]


async def test_an_unanswered_attempt_times_out_and_is_retried(router, sessions, clock):
    await router.handle_batch([inbound()])
    clock.advance(31)
    assert (await router.tick())["expired"] == 2  # Treserva's and primary care's attempt
    clock.advance(2)
    await router.tick()
    assert [c.headers["attempt"] for c in await commands(sessions)] == ["1", "2"]


async def test_silent_drop_raises_one_grouped_alert_at_the_deadline(router, sessions, clock):
    first, second = inbound(1, patient="a" * 32), inbound(2, patient="b" * 32)
    await router.handle_batch([first, second])
    await router.handle_batch(
        [result(message_id(first), ResponseCode.OK), result(message_id(second), ResponseCode.OK)]
    )
    # primary care confirms its copies; only Treserva stays silent
    await router.handle_batch(
        [
            result(
                message_id(m),
                ResponseCode.OK,
                event=EventCode.RECEIPT,
                responder=System.PRIMARY_CARE,
            )
            for m in (first, second)
        ]
    )
    clock.advance(14 * 60)
    await router.tick()
    assert await alerts(sessions) == []
    clock.advance(61)
    await router.tick()
    await router.tick()  # a second pass does not count the same delivery again
    (a,) = await alerts(sessions)
    assert (a.kind, a.destination, a.event_code, a.affected) == (
        "confirmation_overdue",
        "treserva",
        "admission-notice",
        2,
    )
    async with sessions() as s:
        assert len((await s.execute(select(alert_delivery))).all()) == 2


async def test_a_patients_later_message_waits_but_other_patients_do_not(router, sessions):
    early, later = inbound(1, patient="a" * 32), inbound(2, patient="a" * 32)
    other = inbound(3, patient="b" * 32)
    await router.handle_batch([early, later, other])
    states = {message_id(r): None for r in (early, later, other)}
    for d in await deliveries(sessions):
        states[d.message_id] = d.state
    assert states == {
        message_id(early): "dispatched",
        message_id(later): "pending",
        message_id(other): "dispatched",
    }
    await router.handle_batch([result(message_id(early), ResponseCode.OK)])
    later_state = {d.message_id: d.state for d in await deliveries(sessions)}[message_id(later)]
    assert later_state == "dispatched"


async def test_no_destination_has_more_than_max_in_flight_dispatched(sessions, clock):
    """A window per destination: the rest stay pending until outcomes make room, and the
    tick sends them then (a drain's backlog never queues on Kafka past its timeout)."""
    rules = routing_rules(max_in_flight=2)
    router = await started(Router(sessions=sessions, rules=rules, clock=clock))
    records = [inbound(seed, patient=f"{seed:032d}") for seed in (1, 2, 3)]
    await router.handle_batch(records)

    async def states(destination):
        return [d.state for d in await deliveries(sessions, destination)]

    for destination in ("treserva", "primary-care"):  # each its own window
        assert await states(destination) == ["dispatched", "dispatched", "pending"]
    await router.tick()
    assert await states("treserva") == ["dispatched", "dispatched", "pending"]
    await router.handle_batch([result(message_id(records[0]), ResponseCode.OK)])
    await router.tick()
    assert await states("treserva") == ["sent", "dispatched", "dispatched"]
    assert await states("primary-care") == ["dispatched", "dispatched", "pending"]


async def test_an_older_version_after_a_newer_one_is_delivered_as_superseded(router, sessions):
    newer, older = versioned(3), versioned(2)
    await router.handle_batch([newer])
    await router.handle_batch([result(message_id(newer), ResponseCode.OK)])
    await router.handle_batch([older])
    async with sessions() as s:
        rows = {r.version: r for r in (await s.execute(select(message))).all()}
    assert rows[3].superseded_by is None
    assert rows[2].superseded_by == message_id(newer)
    assert rows[2].stream == rows[3].stream == "takecare|list-1"
    sent = {c.headers["message-id"]: c for c in await commands(sessions)}
    assert sent[message_id(older)].headers["superseded-by"] == message_id(newer)
    assert "superseded-by" not in sent[message_id(newer)].headers
    async with sessions() as s:
        reasons = [r.reason for r in (await s.execute(select(delivery_transition))).all()]
    assert f"routed as superseded by {message_id(newer)}" in reasons


async def test_versions_are_per_sender_and_per_document(router, sessions):
    await router.handle_batch(
        [
            versioned(5),
            versioned(1, document="list-2"),  # another list of the same patient
            versioned(1, source="treserva"),  # Treserva's own list with the same id
            versioned(1, document="sip-1", event="sip-updated"),
        ]
    )
    async with sessions() as s:
        rows = (await s.execute(select(message.c.superseded_by))).all()
    assert [r.superseded_by for r in rows] == [None] * 4


async def test_admission_notices_are_not_versioned_documents(router, sessions):
    await router.handle_batch([inbound(event_id="tc-9")])
    async with sessions() as s:
        (row,) = (await s.execute(select(message.c.stream, message.c.version))).all()
    assert (row.stream, row.version) == (None, None)


async def test_deliveries_in_flight_at_start_up_are_swept_and_sent_again(router, sessions, clock):
    await router.handle_batch([inbound()])
    (d,) = await deliveries(sessions)
    assert d.state == "dispatched"
    assert await router.sweep() == 2  # Treserva's and primary care's attempt
    (d,) = await deliveries(sessions)
    assert d.state == "pending"
    async with sessions() as s:
        reasons = [r.reason for r in (await s.execute(select(delivery_transition))).all()]
        outcomes = [r.outcome for r in (await s.execute(select(delivery_attempt))).all()]
    assert any(r.startswith("retry in") and "swept at start-up" in r for r in reasons)
    assert outcomes == ["swept", "swept"]
    clock.advance(2)
    await router.tick()
    assert [c.headers["attempt"] for c in await commands(sessions)] == ["1", "2"]
    assert await router.sweep() == 2  # the new attempts are in flight again


@pytest.fixture
async def breaker_router(sessions, clock):
    from services.router.routing.circuit import CircuitPolicy

    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=2, max_attempts=4),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
        circuit=CircuitPolicy(failure_threshold=2, open_s=10, max_open_s=40),
    )
    return await started(Router(sessions=sessions, rules=rules, clock=clock))


async def _treserva_attempts(sessions):
    return {d.message_id: d.attempts for d in await deliveries(sessions)}


async def test_an_open_circuit_holds_deliveries_without_spending_attempts(
    breaker_router, sessions, clock
):
    router = breaker_router
    recs = [inbound(i, patient=str(i) * 32) for i in range(1, 5)]
    await router.handle_batch(recs)
    failing = [
        result(message_id(r), ResponseCode.TRANSIENT_ERROR, why="HTTP 503") for r in recs[:2]
    ]
    await router.handle_batch(failing)  # two failures in a row: the circuit opens
    before = await _treserva_attempts(sessions)
    for _ in range(5):  # retries fall due, but nothing goes to Treserva while it is open
        clock.advance(1.5)
        await router.tick()
    assert await _treserva_attempts(sessions) == before
    clock.advance(10)
    await router.tick()  # probe time: exactly one delivery goes
    after_probe = await _treserva_attempts(sessions)
    probes = [m for m in after_probe if after_probe[m] != before[m]]
    assert len(probes) == 1
    await router.handle_batch([result(probes[0], ResponseCode.TRANSIENT_ERROR, attempt=2)])
    clock.advance(11)
    await router.tick()  # the failed probe opened it for longer (20 s): nothing yet
    assert await _treserva_attempts(sessions) == after_probe
    clock.advance(10)
    await router.tick()  # second probe
    probing = await _treserva_attempts(sessions)
    (second,) = [m for m in probing if probing[m] != after_probe[m]]
    await router.handle_batch([result(second, ResponseCode.OK, attempt=probing[second])])
    clock.advance(3)
    await router.tick()  # closed again: everything due goes out
    states = {d.state for d in await deliveries(sessions)}
    assert states <= {"dispatched", "sent"}
    assert all(d.state != "dead_letter" for d in await deliveries(sessions))


async def test_a_message_older_than_its_max_age_is_not_retried_again(sessions, clock):
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=50, max_age_s=60),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
    )
    router = await started(Router(sessions=sessions, rules=rules, clock=clock))
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.TRANSIENT_ERROR)])
    (d,) = await deliveries(sessions)
    assert d.state == "pending"  # young enough: retried
    clock.advance(61)
    await router.tick()
    await router.handle_batch([result(message_id(rec), ResponseCode.TRANSIENT_ERROR, attempt=2)])
    (d,) = await deliveries(sessions)
    assert d.state == "dead_letter" and d.last_error.startswith("older than 60 s")
    # primary care never answered either: its unanswered attempt is just as old
    assert {(a.kind, a.destination) for a in await alerts(sessions)} == {
        ("delivery_failed", "treserva"),
        ("delivery_failed", "primary-care"),
    }


async def test_a_receipt_is_applied_even_if_the_delivery_moved_after_it_was_read(
    router, sessions, clock
):
    """Another worker (an attempt expiring) may move the delivery between the read and the
    write; a receipt never comes twice, so it must land on the delivery as it is now."""
    from sqlalchemy import update as sql_update

    from services.messaging.envelope import read_envelope
    from services.router.routing.deliveries import _apply_receipt, delivery_rows
    from services.router.routing.tables import delivery as delivery_table

    rec = inbound(seed=31)
    await router.handle_batch([rec])
    await router.tick()
    async with sessions() as s:
        (stale,) = (
            await s.execute(
                delivery_rows().where(
                    delivery_table.c.message_id == message_id(rec),
                    delivery_table.c.destination == "treserva",
                )
            )
        ).all()
    assert stale.state == "dispatched"
    async with sessions.begin() as s:  # the attempt expires meanwhile: back to pending
        await s.execute(
            sql_update(delivery_table)
            .where(delivery_table.c.id == stale.id)
            .values(state="pending")
        )
    receipt = result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)
    async with sessions.begin() as s:
        await _apply_receipt(s, stale, read_envelope(receipt.value), router.rules, clock())
    assert [d.state for d in await deliveries(sessions)] == ["confirmed"]


async def test_the_watchdog_checks_run_at_most_every_checks_every(sessions, clock):
    """Expiry, resends and dispatch run every tick; the watchdog's checks only once
    ``checks_every`` has passed, so ten ticks a second do not each scan the deadlines."""
    router = await started(
        Router(
            sessions=sessions,
            rules=routing_rules(),
            clock=clock,
            checks_every=timedelta(seconds=1),
        )
    )
    await router.handle_batch([inbound(7)])
    first = await router.tick()
    assert "overdue" in first and "dispatched" in first
    clock.advance(16 * 60)  # the confirmation is overdue now, and the attempts expired
    soon = await router.tick()
    assert "overdue" in soon and soon["expired"] == 2
    clock.advance(0.5)
    skipped = await router.tick()
    assert "overdue" not in skipped and "dispatched" in skipped
    clock.advance(0.5)
    assert "overdue" in await router.tick()
