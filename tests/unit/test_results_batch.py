"""A Kafka batch's results, applied set-based (services/router/routing/results.py): whatever
the batch mixes, each delivery ends where one-by-one processing took it, with every
transition and public event in order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.messaging import topics
from services.messaging.envelope import EventCode, FailureKind, ResponseCode, System
from services.messaging.outbox import outbox
from services.router.deviations.records import list_deviations
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery, delivery_attempt, delivery_transition
from tests.support.router import Clock, inbound, message_id, result, routing_rules, started


async def routed(sessions, clock, *seeds):
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=clock))
    records = [inbound(seed, patient=f"{seed:032x}") for seed in seeds]
    await router.handle_batch(records)
    return router, [message_id(r) for r in records]


async def treserva(sessions, mid):
    async with sessions() as s:
        row = (
            await s.execute(
                select(delivery).where(
                    delivery.c.message_id == mid, delivery.c.destination == "treserva"
                )
            )
        ).one()
        steps = (
            await s.execute(
                select(delivery_transition.c.to_state)
                .where(delivery_transition.c.delivery_id == row.id)
                .order_by(delivery_transition.c.id)
            )
        ).scalars()
        return row, list(steps)


def ok(mid, **kw):
    return result(mid, ResponseCode.OK, responder=System.TRESERVA, **kw)


def receipt(mid):
    return ok(mid, event=EventCode.RECEIPT)


async def events_of(sessions, mid):
    async with sessions() as s:
        values = (
            await s.execute(
                select(outbox.c.id, outbox.c.key, outbox.c.payload)
                .where(outbox.c.topic == topics.EVENTS, outbox.c.key == mid)
                .order_by(outbox.c.id)
            )
        ).all()
    return len(values)


async def test_an_outcome_and_its_receipt_in_one_batch_confirm_with_every_step(sessions):
    clock = Clock()
    router, (mid,) = await routed(sessions, clock, 1)
    await router.handle_batch([ok(mid), receipt(mid)])
    row, steps = await treserva(sessions, mid)
    assert row.state == "confirmed" and row.sent_at is not None and row.confirmed_at is not None
    assert steps == ["pending", "dispatched", "sent", "confirmed"]
    assert await events_of(sessions, mid) == 2  # sent and confirmed, both public


async def test_a_receipt_that_overtakes_the_outcome_confirms_and_the_outcome_only_completes(
    sessions,
):
    router, (mid,) = await routed(sessions, Clock(), 1)
    await router.handle_batch([receipt(mid), ok(mid)])
    row, steps = await treserva(sessions, mid)
    assert row.state == "confirmed"
    assert steps == ["pending", "dispatched", "confirmed"]
    async with sessions() as s:
        outcome = await s.scalar(
            select(delivery_attempt.c.outcome).where(delivery_attempt.c.delivery_id == row.id)
        )
    assert outcome == "ok"


async def test_the_same_outcome_twice_in_a_batch_is_recorded_once(sessions):
    router, (mid,) = await routed(sessions, Clock(), 1)
    await router.handle_batch([ok(mid), ok(mid)])
    _row, steps = await treserva(sessions, mid)
    assert steps == ["pending", "dispatched", "sent"]


async def test_a_failure_between_oks_sees_what_the_batch_wrote_before_it(sessions):
    """Three patients: ok, a transient failure (the one-by-one path, after what was
    collected is written), ok and receipt after it."""
    router, (a, b, c) = await routed(sessions, Clock(), 1, 2, 3)
    failure = result(
        b,
        ResponseCode.TRANSIENT_ERROR,
        responder=System.TRESERVA,
        why="timeout",
        failure=FailureKind.TRANSPORT,
    )
    await router.handle_batch([ok(a), failure, ok(c), receipt(a), receipt(c)])
    (_row_a, steps_a), (row_b, steps_b), (_row_c, steps_c) = [
        await treserva(sessions, m) for m in (a, b, c)
    ]
    assert steps_a == steps_c == ["pending", "dispatched", "sent", "confirmed"]
    assert row_b.state == "pending" and steps_b == ["pending", "dispatched", "pending"]
    assert row_b.last_error == "timeout"


async def test_a_confirmation_closes_the_deviation_counted_while_it_was_late(sessions):
    clock = Clock()
    router, (mid,) = await routed(sessions, clock, 1)
    await router.handle_batch([ok(mid)])
    clock.advance(timedelta(minutes=20).total_seconds())  # past the 15 min to confirm
    await router.tick()
    async with sessions() as s:
        (late,) = [d for d in await list_deviations(s) if d.destination == "treserva"]
    assert late.resolved_at is None
    clock.advance(600)
    await router.handle_batch([receipt(mid)])
    async with sessions() as s:
        (closed,) = [d for d in await list_deviations(s) if d.destination == "treserva"]
    assert closed.resolved_at == clock.now
    assert closed.lateness_s is not None and closed.lateness_s > 0  # against its deadline
