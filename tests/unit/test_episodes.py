"""Episode gaps: what is missing from a stay, not only what failed."""

import random

import pytest

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.discharge import (
    sample_discharge_notice,
    sample_discharge_readiness,
)
from sandbox.simulators.samples.medication_list import sample_takecare_medication_list
from sandbox.simulators.samples.sip_update import sample_takecare_sip_update
from services.adapter_takecare.families import (
    admission_notice,
    discharge_notice,
    discharge_readiness,
    medication_list,
    sip_update,
)
from services.messaging import topics
from services.messaging.envelope import EventCode, ResponseCode, to_json
from services.messaging.kafka import IncomingRecord
from services.router.alerting.events import AlertChange, Severity
from tests.support.incidents import Sink, alerts, make_router
from tests.support.router import Clock, message_id, result

pytestmark = pytest.mark.alerts

_offsets = iter(range(10**9))
PATIENT = "e" * 32


def record(family, doc, now):
    bundle = to_json(
        family.INBOUND.to_bundle(
            family.INBOUND.parse(
                doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
            ),
            now=now,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), PATIENT, bundle.encode(), {})


def admitted(clock, seed=1):
    return record(admission_notice, sample_admission(random.Random(seed), now=clock()), clock())


def ready(clock, seed=2):
    doc = sample_discharge_readiness(random.Random(seed), now=clock())
    return record(discharge_readiness, doc, clock())


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock, sink):
    return await make_router(sessions, clock, sink)


async def confirmed(router, rec):
    """Treserva and primary care accept and confirm ``rec``."""
    from services.messaging.envelope import EventCode, System

    for who in (System.TRESERVA, System.PRIMARY_CARE):
        await router.handle_batch(
            [
                result(message_id(rec), ResponseCode.OK, responder=who),
                result(message_id(rec), ResponseCode.OK, responder=who, event=EventCode.RECEIPT),
            ]
        )


def gaps(sink, family):
    return [e for e in sink.events if e.kind == "episode_gap" and e.family == family]


async def test_no_sip_invitation_is_warned_at_50_and_80_percent_and_escalated_after_three_days(
    router, sessions, clock, sink
):
    await router.handle_batch([admitted(clock)])
    clock.advance(3600)
    await router.handle_batch([ready(clock)])
    day = 24 * 3600
    clock.advance(int(1.5 * day) - 60)  # just short of half the 3 days
    await router.tick()
    assert gaps(sink, "sip-invitation") == []
    clock.advance(120)
    await router.tick()
    (opened,) = gaps(sink, "sip-invitation")
    assert (opened.change, opened.severity, opened.pseudonym) == (
        AlertChange.OPENED,
        Severity.INFO,
        PATIENT,
    )
    assert opened.sender_unit_hsa and opened.due_at is not None
    clock.advance(int(0.9 * day))  # 80 % gone
    await router.tick()
    assert [(e.change, e.severity) for e in gaps(sink, "sip-invitation")][1:] == [
        (AlertChange.ESCALATED, Severity.WARNING)
    ]
    await router.tick()  # nothing new until the next stage
    assert len(gaps(sink, "sip-invitation")) == 2
    assert await deviation_kinds(sessions) == []  # a warning is not yet a deviation
    clock.advance(int(0.6 * day))  # the 3 days are over
    await router.tick()
    changes = [(e.change, e.severity) for e in gaps(sink, "sip-invitation")][2:]
    # an unacknowledged warning is re-announced every 2 h until the breach escalates it
    assert {c for c, _ in changes[:-1]} == {AlertChange.REMINDER}
    assert changes[-1] == (AlertChange.ESCALATED, Severity.CRITICAL)
    assert await deviation_kinds(sessions) == ["episode_gap"]
    invitation = sample_takecare_sip_update(random.Random(3), now=clock(), stage="invitation")
    await router.handle_batch([record(sip_update, invitation, clock())])
    await router.tick()
    assert gaps(sink, "sip-invitation")[-1].change is AlertChange.RESOLVED


async def test_a_sip_warning_resolves_when_ready_for_discharge_is_withdrawn(
    router, sessions, clock, sink
):
    first = admitted(clock)
    await router.handle_batch([first])
    await confirmed(router, first)
    clock.advance(3600)
    await router.handle_batch([ready(clock)])
    clock.advance(2 * 24 * 3600)
    await router.tick()
    assert [e.severity for e in gaps(sink, "sip-invitation")] == [Severity.INFO]
    doc = sample_discharge_readiness(random.Random(7), now=clock(), withdrawn=True)
    await router.handle_batch([record(discharge_readiness, doc, clock())])
    await router.tick()
    assert gaps(sink, "sip-invitation")[-1].change is AlertChange.RESOLVED
    clock.advance(2 * 24 * 3600)  # past the old due time: the clock stopped, nothing more
    await router.tick()
    assert gaps(sink, "sip-invitation")[-1].change is AlertChange.RESOLVED
    states = {a.event_code: a.state for a in await alerts(sessions) if a.kind == "episode_gap"}
    assert states == {"sip-invitation": "resolved"}


async def deviation_kinds(sessions):
    from sqlalchemy import select

    from services.router.routing.tables import deviation

    async with sessions() as s:
        query = select(deviation.c.kind).where(deviation.c.family == "sip-invitation")
        return list((await s.execute(query)).scalars())


async def test_discharged_without_a_medication_list_by_the_end_of_the_day(
    router, sessions, clock, sink
):
    first = admitted(clock)
    await router.handle_batch([first])
    await confirmed(router, first)
    clock.advance(2 * 24 * 3600)
    notice = sample_discharge_notice(random.Random(4), now=clock())
    await router.handle_batch([record(discharge_notice, notice, clock())])
    await router.tick()
    assert gaps(sink, "medication-list") == []
    clock.advance(24 * 3600)  # the discharge day is over
    await router.tick()
    (opened,) = gaps(sink, "medication-list")
    assert opened.pseudonym == PATIENT
    late_list = sample_takecare_medication_list(random.Random(5), now=clock())
    await router.handle_batch([record(medication_list, late_list, clock())])
    await router.tick()
    assert gaps(sink, "medication-list")[-1].change is AlertChange.RESOLVED
    states = {a.event_code: a.state for a in await alerts(sessions) if a.kind == "episode_gap"}
    assert states == {"medication-list": "resolved"}


async def test_a_later_notice_about_an_admission_the_receiver_never_confirmed(
    router, sessions, clock, sink
):
    first = admitted(clock)
    await router.handle_batch([first])
    await router.handle_batch([result(message_id(first), ResponseCode.FATAL_ERROR)])
    clock.advance(3600)
    await router.handle_batch([ready(clock)])
    found = {
        (e.destination, e.family, e.message_id) for e in sink.events if e.kind == "episode_gap"
    }
    # Treserva dead-lettered it; primary care never confirmed it within its deadline
    assert found == {
        ("treserva", "ready-for-discharge", message_id(first)),
        ("primary-care", "ready-for-discharge", message_id(first)),
    }


async def test_the_unconfirmed_admission_gap_resolves_once_the_admission_is_confirmed(
    router, sessions, clock, sink
):
    from services.router.routing.replay import ReplayFilter, replay

    first = admitted(clock)
    await router.handle_batch([first])
    await confirmed(router, first)  # another patient, all well: no gap for them
    clock.advance(3600)
    second = admitted(clock, seed=9)  # a second stay of another patient, refused by Treserva
    second = IncomingRecord(second.topic, 0, next(_offsets), "f" * 32, second.value, second.headers)
    await router.handle_batch([second])
    await router.handle_batch([result(message_id(second), ResponseCode.FATAL_ERROR)])
    await confirmed_by(router, second, "primary-care")
    later = ready(clock)
    later = IncomingRecord(later.topic, 0, next(_offsets), "f" * 32, later.value, later.headers)
    await router.handle_batch([later])
    gap = [e for e in sink.events if e.kind == "episode_gap"]
    assert [(e.destination, e.pseudonym) for e in gap] == [("treserva", "f" * 32)]
    async with sessions.begin() as s:  # Treserva fixed: the admission is replayed …
        await replay(
            s,
            ReplayFilter(message_ids=(message_id(second),)),
            actor="Åsa",
            reason="Treserva rättat",
            force=False,
            now=clock(),
        )
    await router.tick()
    await router.handle_batch(
        [result(message_id(second), ResponseCode.OK, attempt=2, event=EventCode.RECEIPT)]
    )  # … and confirmed
    await router.tick()
    states = {a.event_code: a.state for a in await alerts(sessions) if a.kind == "episode_gap"}
    assert states == {"ready-for-discharge": "resolved"}


async def confirmed_by(router, rec, destination):
    from services.messaging.envelope import System

    who = System(destination)
    await router.handle_batch(
        [
            result(message_id(rec), ResponseCode.OK, responder=who),
            result(message_id(rec), ResponseCode.OK, responder=who, event=EventCode.RECEIPT),
        ]
    )
