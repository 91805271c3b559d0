"""A notice confirmed after its legal deadline is always one deviation, confirmed late, whether
or not the watchdog ran between the deadline and the receipt; one confirmed in time is none."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.messaging.envelope import EventCode, ResponseCode
from services.router.deviations.records import DeviationKind, list_deviations
from services.router.routing.tables import delivery
from tests.support.incidents import Sink, admission, make_router
from tests.support.router import T0, Clock, message_id, result

pytestmark = pytest.mark.alerts

BREACHED = DeviationKind.LEGAL_DEADLINE_BREACHED


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    return await make_router(sessions, clock, Sink())


async def legal_due(sessions, destination="treserva"):
    async with sessions() as s:
        return (
            await s.execute(
                select(delivery.c.legal_due_at).where(delivery.c.destination == destination)
            )
        ).scalar_one()


async def breaches(sessions, destination="treserva"):
    async with sessions() as s:
        found = await list_deviations(s, kind=BREACHED, destination=destination)
    return found


async def receipt(router, rec, clock):
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    return clock()


async def test_a_confirmation_after_the_deadline_with_no_watchdog_run_is_one_deviation(
    router, sessions, clock
):
    rec = admission(1, admitted_at=T0 - timedelta(hours=23), patient="ab" * 16)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])  # accepted
    due = await legal_due(sessions)
    assert due == T0 + timedelta(hours=1)
    clock.advance(90 * 60)  # the watchdog is down: no tick between the deadline and the receipt
    confirmed_at = await receipt(router, rec, clock)
    (found,) = await breaches(sessions)
    assert found.confirmed_late and found.resolved_at == confirmed_at
    assert found.due_at == due and found.detected_at == confirmed_at
    assert found.lateness_s == 30 * 60
    assert found.pseudonym == "ab" * 16 and found.message_id == message_id(rec)
    assert found.alert_id is None  # no incident was opened: the breach was found afterwards
    assert (
        found.description
        == "Inskrivningsmeddelande bekräftades av treserva först efter lagstadgad tid."
    )
    # a receipt redelivered by Kafka changes nothing
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    assert [d.id for d in await breaches(sessions)] == [found.id]


async def test_a_breach_the_watchdog_recorded_is_closed_by_the_late_confirmation_not_doubled(
    router, sessions, clock
):
    rec = admission(2, admitted_at=T0 - timedelta(hours=23), patient="cd" * 16)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    clock.advance(61 * 60)
    await router.tick()  # the watchdog sees the breach first
    (recorded,) = await breaches(sessions)
    assert recorded.alert_id is not None and not recorded.confirmed_late
    clock.advance(29 * 60)
    confirmed_at = await receipt(router, rec, clock)
    (found,) = await breaches(sessions)
    assert found.id == recorded.id and found.alert_id == recorded.alert_id
    assert found.detected_at == recorded.detected_at  # the first detection stays
    assert found.confirmed_late and found.resolved_at == confirmed_at
    assert found.lateness_s == 30 * 60


async def test_a_confirmation_before_the_deadline_is_no_deviation(router, sessions, clock):
    rec = admission(3, admitted_at=T0 - timedelta(hours=23), patient="ef" * 16)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    clock.advance(59 * 60)  # a minute before the deadline
    await receipt(router, rec, clock)
    assert await breaches(sessions) == []
    async with sessions() as s:
        assert await list_deviations(s) == []
