"""Incidents on a real database, with time moved by the test: opened once per group,
escalated, re-announced only after their quiet interval, acknowledged, resolved by hand or
when the cause clears; legal deadlines warned at 50 % and 80 % and escalated at the breach."""

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from sandbox.simulators.samples.people import hospital_units
from services.messaging import topics
from services.messaging.envelope import EventCode, ResponseCode
from services.router.alerting.events import AlertChange, Severity
from services.router.ops.app import create_app
from services.router.routing import deadlines
from services.router.routing.tables import alert, delivery
from services.router.settings import SANDBOX_OPS_TOKEN, RouterSettings
from tests.support.incidents import Sink, admission, alerts, make_router
from tests.support.router import T0, Clock, message_id, result

pytestmark = pytest.mark.alerts

TREATED_AS_HOLIDAYS_2026 = {
    date(2026, 1, 1),
    date(2026, 1, 6),
    date(2026, 4, 3),  # långfredagen
    date(2026, 4, 5),  # påskdagen
    date(2026, 4, 6),  # annandag påsk
    date(2026, 5, 1),
    date(2026, 5, 14),  # Kristi himmelsfärd
    date(2026, 5, 24),  # pingstdagen
    date(2026, 6, 6),
    date(2026, 6, 19),  # midsommarafton
    date(2026, 6, 20),
    date(2026, 10, 31),  # alla helgons dag
    date(2026, 12, 24),
    date(2026, 12, 25),
    date(2026, 12, 26),
    date(2026, 12, 31),
}


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock, sink):
    return await make_router(sessions, clock, sink)


# --- the calendar ---------------------------------------------------------------------------


def test_swedish_holidays_of_2026():
    assert deadlines.swedish_holidays(2026) == TREATED_AS_HOLIDAYS_2026


def test_working_days_skip_weekends_and_christmas():
    wednesday = datetime(2026, 12, 23, 10, 0, tzinfo=deadlines.STOCKHOLM)
    # 24–27 Dec and 31 Dec, 1 Jan are not working days: 28, 29, 30 Dec are the three
    assert deadlines.add_working_days(wednesday, 3).date() == date(2026, 12, 30)
    assert deadlines.add_days(wednesday, 3, working=False).date() == date(2026, 12, 26)


def test_discharge_day_ends_at_swedish_midnight_across_daylight_saving():
    discharged = datetime(2026, 10, 25, 9, 0, tzinfo=UTC)  # summer time ended that night
    assert deadlines.end_of_day(discharged) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


def test_stages_of_a_deadline():
    start, due = T0, T0 + timedelta(hours=24)
    at = [deadlines.stage(start, due, T0 + timedelta(hours=h)) for h in (1, 12, 20, 24)]
    assert at == [
        deadlines.Stage.ON_TRACK,
        deadlines.Stage.HALF,
        deadlines.Stage.LATE,
        deadlines.Stage.BREACHED,
    ]
    assert deadlines.next_stage_at(start, due, deadlines.Stage.HALF) == start + timedelta(
        hours=19.2
    )


# --- incidents --------------------------------------------------------------------------------


async def test_a_dead_letter_opens_one_critical_incident_naming_only_pseudonym_and_unit(
    router, sessions, sink
):
    first = admission(1, admitted_at=T0, patient="a" * 32)
    second = admission(2, admitted_at=T0, patient="b" * 32)
    await router.handle_batch([first, second])
    await router.handle_batch(
        [
            result(message_id(first), ResponseCode.FATAL_ERROR, why="HTTP 422"),
            result(message_id(second), ResponseCode.FATAL_ERROR, why="HTTP 422"),
        ]
    )
    (incident,) = await alerts(sessions)
    assert (incident.kind, incident.severity, incident.affected) == (
        "delivery_failed",
        "critical",
        2,
    )
    opened, joined = sink.events  # the second failure joined the incident
    assert opened.change is AlertChange.OPENED
    assert opened.pseudonym == "a" * 32 and opened.message_id == message_id(first)
    # told too, for its own receiving unit; ops channels skip it (see notifications)
    assert joined.change is AlertChange.AFFECTED and joined.alert_id == opened.alert_id
    assert joined.pseudonym == "b" * 32 and joined.message_id == message_id(second)
    assert opened.sender_unit_hsa in {hsa for hsa, _ in hospital_units()}  # the admitting ward


async def test_reminders_are_throttled_and_stop_when_acknowledged(router, sessions, clock, sink):
    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR)])
    await router.tick()

    def failed():
        return [e.change for e in sink.events if e.kind == "delivery_failed"]

    clock.advance(29 * 60)
    await router.tick()
    assert failed() == [AlertChange.OPENED]  # a critical incident is quiet for 30 min
    clock.advance(60)
    await router.tick()
    await router.tick()
    assert failed() == [AlertChange.OPENED, AlertChange.REMINDER]
    (incident,) = [a for a in await alerts(sessions) if a.kind == "delivery_failed"]
    from services.router.alerting import incidents

    async with sessions.begin() as s:
        assert await incidents.acknowledge(
            s, incident.id, actor="Åsa", note="ringer Treserva", now=clock(), sinks=(sink,)
        )
    clock.advance(3 * 3600)
    await router.tick()
    assert failed()[-1] is AlertChange.ACKNOWLEDGED  # no reminder after that


async def test_an_overdue_confirmation_resolves_itself_when_the_receipt_comes(
    router, sessions, clock, sink
):
    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])  # accepted, no receipt
    clock.advance(16 * 60)
    await router.tick()
    assert ("confirmation_overdue", AlertChange.OPENED, Severity.CRITICAL) in sink.changes()
    opened = {a.destination: a.state for a in await alerts(sessions)}
    assert opened == {"treserva": "open", "primary-care": "open"}  # one per destination
    await router.handle_batch(
        [result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)]
    )  # Treserva confirms; primary care has not yet
    await router.tick()
    states = {a.destination: a.state for a in await alerts(sessions)}
    assert states == {"treserva": "resolved", "primary-care": "open"}
    from services.messaging.envelope import System

    await router.handle_batch(
        [
            result(
                message_id(rec),
                ResponseCode.OK,
                event=EventCode.RECEIPT,
                responder=System.PRIMARY_CARE,
            )
        ]
    )
    await router.tick()
    incidents = await alerts(sessions)
    assert {(a.kind, a.state, a.resolved_by) for a in incidents} == {
        ("confirmation_overdue", "resolved", "router")
    }
    assert [e.change for e in sink.events].count(AlertChange.RESOLVED) == 2


async def test_a_legal_deadline_is_warned_before_and_escalated_at_the_breach(
    router, sessions, clock, sink
):
    rec = admission(1, admitted_at=T0 - timedelta(hours=13), patient="a" * 32)
    await router.handle_batch([rec])
    async with sessions() as s:
        due = (await s.execute(select(delivery.c.legal_due_at))).scalars().first()
    assert due == T0 + timedelta(hours=11)  # 24 h from admission
    await router.tick()  # 13 of 24 h gone: 54 %

    def to_treserva():
        return [
            e for e in sink.events if e.kind == "deadline_at_risk" and e.destination == "treserva"
        ]

    deadline_events = to_treserva()
    assert [(e.change, e.severity) for e in deadline_events] == [
        (AlertChange.OPENED, Severity.INFO)
    ]
    assert deadline_events[0].due_at == due and deadline_events[0].pseudonym == "a" * 32
    clock.advance(6 * 3600)  # 19 h gone: 79 %, nothing new
    await router.tick()
    assert len(to_treserva()) == 1
    clock.advance(20 * 60)  # 80 %
    await router.tick()
    assert [(e.change, e.severity) for e in to_treserva()][1:] == [
        (AlertChange.ESCALATED, Severity.WARNING)
    ]
    clock.advance(5 * 3600)  # past the deadline
    await router.tick()
    last = to_treserva()[-1]
    assert (last.change, last.severity) == (AlertChange.ESCALATED, Severity.CRITICAL)
    assert len({e.alert_id for e in to_treserva()}) == 1  # one incident, escalated twice
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    await router.tick()  # Treserva confirms at last: its deadline incident resolves
    assert to_treserva()[-1].change is AlertChange.RESOLVED


async def test_operators_acknowledge_and_resolve_over_the_api(router, sessions, clock, sink):
    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR)])
    (incident,) = await alerts(sessions)
    app = create_app(RouterSettings(), sessions=sessions, clock=clock, alert_sinks=(sink,))
    body = {"operator": "Åsa Öberg", "note": "Treserva informerad per telefon"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://r",
        headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
    ) as client:
        acked = await client.post(f"/api/v1/alerts/{incident.id}/acknowledge", json=body)
        resolved = await client.post(f"/api/v1/alerts/{incident.id}/resolve", json=body)
        again = await client.post(f"/api/v1/alerts/{incident.id}/resolve", json=body)
        missing = await client.post("/api/v1/alerts/999999/resolve", json=body)
        bad = await client.post(f"/api/v1/alerts/{incident.id}/resolve", json={"operator": "x"})
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    # the body names "Åsa Öberg", but who acted is who the key vouches for
    assert acked.json()["acknowledged_by"] == "API client ops"
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert again.status_code == 409
    assert missing.status_code == 404
    assert bad.status_code == 422
    assert [e.change for e in sink.events][-2:] == [
        AlertChange.ACKNOWLEDGED,
        AlertChange.RESOLVED,
    ]


async def test_a_silently_dropped_notice_is_sent_again_at_its_deadline(router, sessions, clock):
    from services.messaging.outbox import outbox

    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])  # then dropped
    clock.advance(14 * 60)
    await router.tick()

    async def attempts_to_treserva():
        async with sessions() as s:
            rows = (await s.execute(select(outbox))).all()
        return [r.headers["attempt"] for r in rows if r.topic == topics.outbound("treserva")]

    assert await attempts_to_treserva() == ["1"]
    clock.advance(2 * 60)  # past the 15-min confirmation deadline
    await router.tick()
    assert await attempts_to_treserva() == ["1", "2"]  # the same message id, sent again
    await router.tick()
    assert await attempts_to_treserva() == ["1", "2"]  # once per deadline interval
    await router.handle_batch(
        [result(message_id(rec), ResponseCode.OK, attempt=2, event=EventCode.RECEIPT)]
    )
    async with sessions() as s:
        state = await s.scalar(select(delivery.c.state).where(delivery.c.destination == "treserva"))
    assert state == "confirmed"


async def test_each_late_or_failed_notice_is_counted_as_a_deviation(router, sessions, clock):
    from services.router.routing.tables import deviation

    rec = admission(1, admitted_at=T0, patient="ab" * 16)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])  # then dropped
    clock.advance(20 * 60)
    await router.tick()  # overdue: an incident, and a deviation per delivery
    clock.advance(10 * 60)
    await router.handle_batch(
        [result(message_id(rec), ResponseCode.OK, attempt=2, event=EventCode.RECEIPT)]
    )
    async with sessions() as s:
        rows = (await s.execute(select(deviation).order_by(deviation.c.id))).all()
    by_destination = {r.destination: r for r in rows}
    treserva = by_destination["treserva"]
    assert treserva.kind == "not_confirmed_in_time"
    assert treserva.pseudonym == "ab" * 16 and treserva.message_id == message_id(rec)
    assert treserva.sender_unit_hsa and treserva.alert_id is not None
    assert treserva.resolved_at == clock()
    # confirmed 15 min after its 15-min confirmation deadline (the bundle is stamped T0)
    assert treserva.lateness_s == 15 * 60
    assert by_destination["primary-care"].resolved_at is None  # still not confirmed


async def test_a_failed_delivery_incident_resolves_once_the_replay_is_confirmed(
    router, sessions, clock, sink
):
    from services.router.routing.replay import ReplayFilter, replay

    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR, why="HTTP 422")])
    async with sessions.begin() as s:
        (outcome,) = await replay(
            s,
            ReplayFilter(message_ids=(message_id(rec),)),
            actor="Åsa",
            reason="Treserva rättade sitt schema",
            force=False,
            now=clock(),
        )
    assert outcome.replayed
    await router.tick()
    await router.tick()
    assert (await alerts(sessions))[0].state == "open"  # replayed, not yet confirmed
    await router.handle_batch(
        [result(message_id(rec), ResponseCode.OK, attempt=2, event=EventCode.RECEIPT)]
    )
    await router.tick()
    failed = [a for a in await alerts(sessions) if a.kind == "delivery_failed"]
    assert [(a.state, a.resolved_by) for a in failed] == [("resolved", "router")]


async def test_a_destination_down_for_too_long_opens_an_incident_until_it_answers(
    router, sessions, clock, sink
):
    from services.router.routing import circuit

    async with sessions.begin() as s:
        for _ in range(5):  # five transient failures in a row: the circuit opens
            await circuit.record_failure(s, "treserva", circuit.CircuitPolicy(), clock())
    clock.advance(9 * 60)
    await router.tick()
    assert [e for e in sink.events if e.kind == "destination_down"] == []
    clock.advance(2 * 60)  # open for 11 minutes, over the 10-minute limit
    await router.tick()
    await router.tick()
    down = [e for e in sink.events if e.kind == "destination_down"]
    assert [(e.change, e.destination, e.severity) for e in down] == [
        (AlertChange.OPENED, "treserva", Severity.CRITICAL)
    ]
    async with sessions.begin() as s:
        await circuit.record_success(s, "treserva", clock())
    await router.tick()
    down = [e for e in sink.events if e.kind == "destination_down"]
    assert down[-1].change is AlertChange.OPENED, "resolved before it stayed up"
    clock.advance(circuit.CircuitPolicy().settle_s)  # closed, and it stays closed
    await router.tick()
    down = [e for e in sink.events if e.kind == "destination_down"]
    assert down[-1].change is AlertChange.RESOLVED


async def test_an_incident_another_replica_resolved_first_does_not_stop_the_tick(
    router, sessions, clock, sink, monkeypatch
):
    """Two routers' ticks both find the same cleared incident; the one that comes second
    finds it resolved already and goes on (it used to raise and end that replica)."""
    from sqlalchemy import update

    from services.router.alerting import incidents

    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    clock.advance(16 * 60)
    await router.tick()
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    original = incidents.resolve

    async def resolved_elsewhere_first(session, alert_id, **kw):
        await session.execute(update(alert).where(alert.c.id == alert_id).values(state="resolved"))
        return await original(session, alert_id, **kw)

    monkeypatch.setattr(incidents, "resolve", resolved_elsewhere_first)
    done = await router.tick()  # raised IllegalTransition (resolved → resolved) before
    assert done["resolved"] == 0
    states = {a.destination: a.state for a in await alerts(sessions)}
    assert states == {"treserva": "resolved", "primary-care": "open"}


async def test_an_operator_resolving_what_the_watchdog_resolved_meanwhile_gets_a_conflict(
    router, sessions, clock
):
    """The operator's resolve reads the incident open; before it writes, the watchdog (or
    another replica) resolves it. The write finds the new state and judges it again: 409
    ("it closed itself meanwhile"), not 404 "no such alert" (a shared e2e stack on
    PostgreSQL saw the 404)."""
    from sqlalchemy import update

    from services.router.alerting import incidents
    from services.router.routing.domain import IllegalTransition

    rec = admission(1, admitted_at=T0, patient="a" * 32)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR)])
    (incident,) = await alerts(sessions)

    class ResolvedAfterTheRead:
        """The operator's session; the watchdog commits between its read and its write."""

        def __init__(self, session):
            self.session, self.reads = session, 0

        async def scalar(self, statement):
            found = await self.session.scalar(statement)
            self.reads += 1
            if self.reads == 1:
                await self.session.execute(
                    update(alert).where(alert.c.id == incident.id).values(state="resolved")
                )
            return found

        def __getattr__(self, name):
            return getattr(self.session, name)

    async with sessions.begin() as s:
        with pytest.raises(IllegalTransition):
            await incidents.resolve(
                ResolvedAfterTheRead(s),  # type: ignore[arg-type]
                incident.id,
                actor="ops",
                note="n",
                now=clock(),
            )
