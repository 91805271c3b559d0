"""The router's tick sleeps until something falls due instead of polling every 0.25 s
(issue 18): an idle router ticks about once per round of checks, and a timer that falls
due between two ticks wakes it then."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.messaging.envelope import ResponseCode
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from tests.support.router import Clock, inbound, message_id, result, routing_rules, started

INTERVAL_S = 0.25


class Mono:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


async def _router(sessions, *, checks_s: float, lease_s: float = 30.0) -> tuple[Router, Clock]:
    clock = Clock()
    router = Router(
        sessions=sessions,
        rules=routing_rules(),  # an attempt times out after 30 s
        clock=clock,
        monotonic=Mono(),
        lease_s=lease_s,
        checks_every=timedelta(seconds=checks_s),
    )
    await started(router)
    await router.tick()
    return router, clock


async def test_an_idle_router_sleeps_until_its_next_round_of_checks(sessions) -> None:
    router, _ = await _router(sessions, checks_s=10)
    assert await router.next_wait(INTERVAL_S) == pytest.approx(10)


async def test_an_attempt_in_flight_wakes_the_tick_at_its_timeout(sessions) -> None:
    router, clock = await _router(sessions, checks_s=60, lease_s=300)
    await router.handle_batch([inbound(1)])  # dispatched: its attempt times out in 30 s
    clock.advance(1)
    assert await router.next_wait(INTERVAL_S) == pytest.approx(29)


async def test_a_sent_delivery_wakes_the_tick_at_its_confirmation_deadline(sessions) -> None:
    router, _ = await _router(sessions, checks_s=3600, lease_s=3 * 3600)
    record = inbound(1)
    await router.handle_batch([record])
    await router.handle_batch([result(str(message_id(record)), ResponseCode.OK)])
    async with sessions.begin() as s:  # primary care's copy confirmed: only Treserva waits
        await s.execute(
            delivery.update().where(delivery.c.destination != "treserva").values(state="confirmed")
        )
    # the admission's deadline: 15 minutes from its Bundle.timestamp (the test clock's now)
    assert await router.next_wait(INTERVAL_S) == pytest.approx(15 * 60)


async def test_a_timer_already_due_is_not_waited_for_beyond_the_interval(sessions) -> None:
    router, clock = await _router(sessions, checks_s=10)
    await router.handle_batch([inbound(1)])
    clock.advance(60)  # the attempt's timeout has passed
    assert await router.next_wait(INTERVAL_S) == INTERVAL_S


async def test_checks_at_every_tick_keep_the_interval(sessions) -> None:
    router, _ = await _router(sessions, checks_s=0)
    assert await router.next_wait(INTERVAL_S) == INTERVAL_S


async def test_the_lease_is_renewed_in_time(sessions) -> None:
    router, _ = await _router(sessions, checks_s=3600, lease_s=6)
    assert await router.next_wait(INTERVAL_S) == pytest.approx(2)
