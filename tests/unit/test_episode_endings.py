"""The end of a process: a death ends the episode, an interruption pauses it until a new
ready-for-discharge notice, a transfer changes the responsible ward and nothing else. The gap
watchdogs stop, open gap incidents get an all-clear saying why, every transition is
recorded (services.router.routing.episodes)."""

import random

import pytest
from sqlalchemy import select

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.discharge import sample_discharge_readiness
from sandbox.simulators.samples.patient_deceased import sample_patient_deceased
from sandbox.simulators.samples.people import hospital_units
from sandbox.simulators.samples.process_interrupted import sample_process_interrupted
from sandbox.simulators.samples.transfer import OTHER_HOSPITALS, sample_transfer
from services.adapter_takecare.families import (
    admission_notice,
    discharge_readiness,
    patient_deceased,
    process_interrupted,
    transfer,
)
from services.messaging import topics
from services.messaging.envelope import to_json
from services.messaging.kafka import IncomingRecord
from services.router.alerting.events import AlertChange, Severity
from services.router.routing.domain import (
    EpisodeState,
    IllegalTransition,
    check_episode_transition,
)
from services.router.routing.episodes import episode, episode_transition
from tests.support.incidents import Sink, alerts, make_router
from tests.support.router import Clock

pytestmark = pytest.mark.alerts

_offsets = iter(range(10**9))
PATIENT = "d" * 32
DAY = 24 * 3600


def record(family, doc, now):
    parsed = family.INBOUND.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = to_json(
        family.INBOUND.to_bundle(parsed, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), PATIENT, bundle.encode(), {})


def admitted(clock):
    return record(admission_notice, sample_admission(random.Random(1), now=clock()), clock())


def ready(clock, seed=2):
    doc = sample_discharge_readiness(random.Random(seed), now=clock())
    return record(discharge_readiness, doc, clock())


def withdrawn(clock):
    doc = sample_discharge_readiness(random.Random(7), now=clock(), withdrawn=True)
    return record(discharge_readiness, doc, clock())


def deceased(clock):
    doc = sample_patient_deceased(random.Random(5), now=clock())
    doc["death"]["deceasedAt"] = clock().isoformat()
    return record(patient_deceased, doc, clock())


def interrupted(clock, seed=6):
    doc = sample_process_interrupted(random.Random(seed), now=clock())
    doc["interruption"]["interruptedAt"] = clock().isoformat()
    return record(process_interrupted, doc, clock())


def moved(clock):
    return record(transfer, sample_transfer(random.Random(8), now=clock()), clock())


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock, sink):
    return await make_router(sessions, clock, sink)


def sip_gaps(sink):
    return [e for e in sink.events if e.kind == "episode_gap" and e.family == "sip-invitation"]


async def the_episode(sessions):
    async with sessions() as s:
        return (await s.execute(select(episode).where(episode.c.pseudonym == PATIENT))).one()


async def transitions(sessions):
    async with sessions() as s:
        rows = await s.execute(
            select(
                episode_transition.c.from_state,
                episode_transition.c.to_state,
                episode_transition.c.event_code,
            ).order_by(episode_transition.c.id)
        )
        return [tuple(r) for r in rows]


async def ready_with_a_sip_warning(router, clock, sink):
    await router.handle_batch([admitted(clock)])
    clock.advance(3600)
    await router.handle_batch([ready(clock)])
    clock.advance(2 * DAY)  # past half the SIP invitation's 3 days
    await router.tick()
    assert [e.severity for e in sip_gaps(sink)] == [Severity.INFO]


async def test_a_death_ends_the_episode_stops_the_sip_watchdog_and_gives_the_all_clear(
    router, sessions, clock, sink
):
    await ready_with_a_sip_warning(router, clock, sink)
    await router.handle_batch([deceased(clock)])
    died_at = clock()
    assert sip_gaps(sink)[-1].change is AlertChange.RESOLVED
    (incident,) = [a for a in await alerts(sessions) if a.event_code == "sip-invitation"]
    assert incident.state == "resolved"
    assert "the patient died" in incident.resolution
    clock.advance(3 * DAY)  # past the old due time: no warning, no breach
    await router.tick()
    assert sip_gaps(sink)[-1].change is AlertChange.RESOLVED
    row = await the_episode(sessions)
    assert (row.state, row.deceased_at, row.sip_check_at, row.sip_gap_open) == (
        "deceased",
        died_at,
        None,
        False,
    )
    assert await transitions(sessions) == [
        (None, "admitted", "admission-notice"),
        ("admitted", "ready", "ready-for-discharge"),
        ("ready", "deceased", "patient-deceased"),
    ]


async def test_nothing_moves_a_deceased_patients_episode_again(router, sessions, clock, sink):
    await router.handle_batch([admitted(clock)])
    clock.advance(3600)
    await router.handle_batch([deceased(clock)])
    clock.advance(3600)
    await router.handle_batch([ready(clock)])  # a late notice: no new SIP clock
    clock.advance(4 * DAY)
    await router.tick()
    assert sip_gaps(sink) == []
    assert (await the_episode(sessions)).state == "deceased"
    assert [t[1] for t in await transitions(sessions)] == ["admitted", "deceased"]


async def test_an_interruption_stops_the_watchdog_until_a_new_ready_notice_restarts_it(
    router, sessions, clock, sink
):
    await ready_with_a_sip_warning(router, clock, sink)
    await router.handle_batch([interrupted(clock)])
    stopped_at = clock()
    assert sip_gaps(sink)[-1].change is AlertChange.RESOLVED
    (incident,) = [a for a in await alerts(sessions) if a.event_code == "sip-invitation"]
    assert "interrupted" in incident.resolution
    clock.advance(DAY)
    await router.handle_batch([withdrawn(clock)])  # nothing left to withdraw: refused
    row = await the_episode(sessions)
    assert (row.state, row.interrupted_at, row.ready_withdrawn_at) == (
        "interrupted",
        stopped_at,
        None,
    )
    clock.advance(3 * DAY)
    await router.tick()
    assert len(sip_gaps(sink)) == 2  # the opened warning and its all-clear, nothing more
    await router.handle_batch([ready(clock, seed=3)])  # ready again: a new process
    restarted = clock()
    row = await the_episode(sessions)
    assert (row.state, row.ready_at, row.interrupted_at) == ("ready", restarted, None)
    clock.advance(int(1.6 * DAY))  # half of the new 3 days
    await router.tick()
    assert [(e.change, e.severity) for e in sip_gaps(sink)][2:] == [
        (AlertChange.OPENED, Severity.INFO)
    ]
    assert [t[:2] for t in await transitions(sessions)] == [
        (None, "admitted"),
        ("admitted", "ready"),
        ("ready", "interrupted"),
        ("interrupted", "ready"),
    ]


async def test_a_transfer_changes_the_ward_and_restarts_nothing(router, sessions, clock, sink):
    await router.handle_batch([admitted(clock)])
    clock.advance(3600)
    await router.handle_batch([ready(clock)])
    before = await the_episode(sessions)
    clock.advance(DAY)
    doc = sample_transfer(random.Random(8), now=clock())
    new_ward, name = next(  # another ward than the one the patient was admitted to
        unit for unit in (*hospital_units(), *OTHER_HOSPITALS) if unit[0] != before.sender_unit_hsa
    )
    doc["transfer"]["toUnit"] = {"hsaId": new_ward, "name": name}
    doc["encounter"]["unit"]["hsaId"] = before.sender_unit_hsa  # moved from where admitted
    rec = record(transfer, doc, clock())
    await router.handle_batch([rec])
    after = await the_episode(sessions)
    assert (after.id, after.state, after.sender_unit_hsa) == (before.id, "ready", new_ward)
    assert (after.ready_at, after.sip_due_at) == (before.ready_at, before.sip_due_at)
    assert (await transitions(sessions))[-1] == ("ready", "ready", "transfer")
    clock.advance(int(0.6 * DAY))  # the SIP clock kept running from the first readiness
    await router.tick()
    (warning,) = sip_gaps(sink)
    assert warning.sender_unit_hsa == new_ward  # whom to phone: the ward the patient is on


@pytest.mark.parametrize("final", ["discharged", "cancelled", "deceased"])
def test_a_finished_episode_allows_no_transition(final):
    for target in EpisodeState:
        with pytest.raises(IllegalTransition):
            check_episode_transition(EpisodeState(final), target)


def test_an_interrupted_process_restarts_only_with_a_new_readiness():
    check_episode_transition(EpisodeState.INTERRUPTED, EpisodeState.READY)
    with pytest.raises(IllegalTransition):  # a withdrawal has no readiness to withdraw
        check_episode_transition(EpisodeState.INTERRUPTED, EpisodeState.ADMITTED)
