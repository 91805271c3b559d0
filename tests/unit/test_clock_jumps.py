"""A step of the wall clock neither fires nor delays the router's timers (issue: after a
2-hour forward jump every in-flight attempt timed out, the circuit opened and 8 notices
confirmed seconds later raised a critical incident, 8 deviations and 8 urgent emails; a
backward jump would delay the silent-drop alert by the size of the jump)."""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.messaging.clock import Clock, Reading, jumped, set_skew
from services.messaging.envelope import EventCode, ResponseCode
from services.router.alerting.rules import AlertingRules
from services.router.ops import dashboard
from services.router.routing import clock_jumps
from services.router.routing.circuit import destination_circuit
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from services.router.settings import RouterSettings
from tests.support.incidents import Sink, admission, alerts
from tests.support.router import T0, message_id, result

pytestmark = pytest.mark.alerts

CONFIRM_S = 15 * 60
HOLD_S = 15 * 60
TWO_HOURS = 2 * 3600


class HostClock:
    """A host's two clocks: time passing moves both, an NTP step only the wall clock."""

    def __init__(self) -> None:
        self.wall, self.mono = T0, 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def host() -> HostClock:
    return HostClock()


def _router(sessions, host: HostClock, sink: Sink) -> Router:
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(seconds=CONFIRM_S),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=60),
        rng=random.Random(1),
        alert_sinks=(sink,),
    )
    return Router(
        sessions=sessions,
        rules=rules,
        clock=host.now,
        monotonic=host.monotonic,
        alerting=AlertingRules(alert_hold=timedelta(seconds=HOLD_S)),
    )


@pytest.fixture
async def router(sessions, host):
    r = _router(sessions, host, Sink())
    await r.sync_subscriptions()
    await r.tick()  # the anchor: this boot's first reading
    return r


async def _treserva_alerts(sessions) -> list[Any]:
    """(Primary care gets the admission too; nobody answers for it here, so its attempts
    time out for real.)"""
    return [a for a in await alerts(sessions) if a.destination == "treserva"]


async def _treserva(sessions):
    async with sessions() as s:
        return (await s.execute(select(delivery).where(delivery.c.destination == "treserva"))).one()


async def _route(router, seed: int = 1) -> str:
    rec = admission(seed, admitted_at=T0, patient=f"{seed:02d}" * 16)
    await router.handle_batch([rec])
    return str(message_id(rec))


async def _tick_through(
    router, host: HostClock, seconds: float, every: float = 30, *, drop: str | None = None
) -> None:
    """Time passes; with ``drop``, Treserva accepts every re-send of that message and drops
    it again, as in the silent drop."""
    for _ in range(int(seconds // every)):
        host.advance(every)
        await router.tick()
        if drop is not None:
            row = await _treserva(router.sessions)
            if row.state == "dispatched":
                await router.handle_batch([result(drop, ResponseCode.OK, attempt=row.attempts)])


async def test_a_forward_jump_neither_times_out_attempts_nor_raises_false_alerts(
    router, sessions, host
):
    mid = await _route(router)
    before = await _treserva(sessions)
    assert before.state == "dispatched"
    host.advance(10)
    host.step(TWO_HOURS)
    done = await router.tick()
    assert done["jumped"] == 1
    after = await _treserva(sessions)
    assert after.state == "dispatched", "the attempt timed out on the jump"
    assert after.attempt_expires_at - before.attempt_expires_at == timedelta(seconds=TWO_HOURS)
    assert after.confirm_by - before.confirm_by == timedelta(seconds=TWO_HOURS)
    await router.handle_batch([result(mid, ResponseCode.OK)])
    host.advance(6)
    await router.handle_batch([result(mid, ResponseCode.OK, event=EventCode.RECEIPT)])
    await _tick_through(router, host, CONFIRM_S + HOLD_S)
    assert (await _treserva(sessions)).state == "confirmed"
    assert await _treserva_alerts(sessions) == []
    async with sessions() as s:
        circuits = (await s.execute(select(destination_circuit))).all()
        shown = await dashboard.overview(s, host.now())
    assert all(c.state == "closed" for c in circuits if c.destination == "treserva")
    (jump,) = shown["clockJumps"]
    assert jump["seconds"] == pytest.approx(TWO_HOURS + 0, abs=1) and jump["timersMoved"] >= 1


async def test_a_backward_jump_delays_the_silent_drop_alert_by_at_most_the_hold(
    router, sessions, host
):
    mid = await _route(router)
    await router.handle_batch([result(mid, ResponseCode.OK)])  # accepted, then dropped
    host.advance(10)
    host.step(-TWO_HOURS)
    await router.tick()
    await _tick_through(router, host, CONFIRM_S - 60)
    assert await _treserva_alerts(sessions) == [], "alerted before the confirmation deadline"
    await _tick_through(router, host, HOLD_S)  # past the deadline and the hold, not 2 hours
    (overdue,) = [a for a in await _treserva_alerts(sessions) if a.kind == "confirmation_overdue"]
    assert overdue.destination == "treserva"


async def test_alerts_wait_one_interval_after_a_jump_and_come_if_still_due(router, sessions, host):
    """The hold defers, never drops: a notice really overdue is alerted when it ends."""
    mid = await _route(router)
    await router.handle_batch([result(mid, ResponseCode.OK)])
    await _tick_through(router, host, CONFIRM_S - 30, drop=mid)
    host.step(TWO_HOURS)
    await _tick_through(router, host, 60, drop=mid)  # now really overdue, but held
    assert await _treserva_alerts(sessions) == []
    await _tick_through(router, host, HOLD_S, drop=mid)
    assert [a.kind for a in await _treserva_alerts(sessions)] == ["confirmation_overdue"]


async def test_two_routers_of_one_host_move_the_timers_once(sessions, host):
    first, second = _router(sessions, host, Sink()), _router(sessions, host, Sink())
    await first.sync_subscriptions()
    await first.tick()
    await second.tick()
    await _route(first)
    before = await _treserva(sessions)
    host.advance(5)
    host.step(TWO_HOURS)
    await first.tick()
    await second.tick()
    after = await _treserva(sessions)
    assert after.confirm_by - before.confirm_by == timedelta(seconds=TWO_HOURS)
    async with sessions() as s:
        assert len((await s.execute(select(clock_jumps.clock_jump))).all()) == 1


async def test_a_restarted_router_sees_a_jump_made_while_it_was_down(sessions, host):
    """The anchor is in the database: a new process of the same boot compares with it."""
    old = _router(sessions, host, Sink())
    await old.sync_subscriptions()
    await old.tick()
    await _route(old)
    before = await _treserva(sessions)
    host.advance(20)
    host.step(-TWO_HOURS)
    new = _router(sessions, host, Sink())
    assert (await new.tick())["jumped"] == 1
    assert (await _treserva(sessions)).confirm_by - before.confirm_by == timedelta(
        seconds=-TWO_HOURS
    )


async def test_a_source_stamp_from_before_a_forward_jump_gets_its_full_deadline(
    router, sessions, host
):
    """An adapter stamped the message on the old scale; the router routes it after the
    jump: its confirmation deadline counts from the stamp moved past the jump."""
    host.advance(5)
    host.step(TWO_HOURS)
    await router.tick()
    await router.tick()  # recent jumps are read with the checks
    await _route(router)  # stamped T0 by its adapter, before the jump
    row = await _treserva(sessions)
    assert row.confirm_by >= host.now() + timedelta(seconds=CONFIRM_S - 10)


def test_a_jump_is_told_from_time_passing_within_the_tolerance():
    t = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    start = Reading(t, 100.0)
    assert jumped(start, Reading(t + timedelta(seconds=60.5), 160.0)) == 0.0
    assert jumped(start, Reading(t + timedelta(hours=2, seconds=60), 160.0)) == 7200.0
    assert jumped(start, Reading(t - timedelta(hours=1), 160.0)) == -3660.0


def test_a_stamp_is_never_put_in_the_routers_future():
    now = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    ahead = now + timedelta(hours=2)  # made on a clock that has since gone back
    assert clock_jumps.on_our_scale(ahead, now, []) == now
    forward = clock_jumps.Jump(now, 7200.0, 1, now)
    old = now - timedelta(hours=2, seconds=30)
    assert clock_jumps.on_our_scale(old, now, [forward]) == old + timedelta(hours=2)
    after = now - timedelta(seconds=1)  # made after the jump: left as it is
    assert clock_jumps.on_our_scale(after, now, [forward]) == after


def test_the_clock_seam_moves_the_wall_clock_and_not_the_monotonic_one(tmp_path: Path):
    mono = [50.0]
    skew = tmp_path / "clock-skew"
    clock = Clock(skew, wall=lambda: 1_800_000_000.0, monotonic=lambda: mono[0])
    assert clock.now() == datetime.fromtimestamp(1_800_000_000, UTC)
    set_skew(skew, 7200)
    mono[0] += 1
    assert clock.now() == datetime.fromtimestamp(1_800_007_200, UTC)
    assert clock.monotonic() == 51.0
    skew.write_text("72")
    mono[0] += 1
    assert clock.now() == datetime.fromtimestamp(1_800_000_072, UTC)
    skew.write_text("-")  # half-written: the last whole value stays
    mono[0] += 1
    assert clock.now() == datetime.fromtimestamp(1_800_000_072, UTC)


def test_the_clock_seam_is_refused_outside_the_sandbox(tmp_path: Path):
    with pytest.raises(ValueError, match="ROUTER_CLOCK_SKEW_FILE: the clock seam"):
        RouterSettings(environment="test", clock_skew_file=tmp_path / "skew")


async def test_timers_set_just_after_a_jump_are_not_moved_again(router, sessions, host):
    """The batch after a jump, before any tick found it: its new timers are already on the
    new scale, and the tick moved them a second time (CI: a notice routed just after a
    2 h jump stayed pending for 2 h more, never dispatched)."""
    await _route(router, seed=1)
    host.advance(5)
    host.step(TWO_HOURS)
    await _route(router, seed=2)  # the batch finds the jump first
    _, created = await _all_treserva(sessions)
    await router.tick()
    _, after = await _all_treserva(sessions)
    assert (after.confirm_by, after.attempt_expires_at, after.next_attempt_at) == (
        created.confirm_by,
        created.attempt_expires_at,
        created.next_attempt_at,
    ), "moved twice"
    assert created.confirm_by >= host.now() + timedelta(seconds=CONFIRM_S - 10)
    async with sessions() as s:
        assert len((await s.execute(select(clock_jumps.clock_jump))).all()) == 1


async def test_a_restarted_routers_first_batch_sees_a_jump_made_while_it_was_down(sessions, host):
    old = _router(sessions, host, Sink())
    await old.sync_subscriptions()
    await old.tick()
    host.advance(20)
    host.step(TWO_HOURS)
    new = _router(sessions, host, Sink())
    await _route(new, seed=3)  # before its first tick
    created = await _treserva(sessions)
    await new.tick()
    assert (await _treserva(sessions)).confirm_by == created.confirm_by, "moved twice"


async def _all_treserva(sessions) -> list[Any]:
    async with sessions() as s:
        found = await s.execute(
            select(delivery).where(delivery.c.destination == "treserva").order_by(delivery.c.id)
        )
        return list(found.all())
