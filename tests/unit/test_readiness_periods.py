"""Every readiness of a stay is its own payment evidence (``readiness_period``): the days a
readiness made payable are not lost when it is interrupted or withdrawn and a new ready
notice starts a new clock, a day is never paid twice, and each row of the CSV an invoice
check reads names the ready notice whose clock it is."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import event, select, update

from sandbox.simulators.samples.discharge import (
    sample_discharge_notice,
    sample_discharge_readiness,
)
from sandbox.simulators.samples.patient_deceased import sample_patient_deceased
from sandbox.simulators.samples.process_interrupted import sample_process_interrupted
from services.adapter_takecare.families import (
    discharge_notice,
    discharge_readiness,
    patient_deceased,
    process_interrupted,
)
from services.messaging import topics
from services.messaging.cancellation import Cancellation, Canceller, cancellation_bundle
from services.messaging.envelope import BusinessKey, System, to_json
from services.messaging.fhir_parts import PatientInfo
from services.messaging.identifiers import parse_patient_identifier
from services.messaging.kafka import IncomingRecord
from services.router.routing.episodes import episode
from services.router.routing.readiness_periods import PeriodEnd, readiness_period
from services.router.routing.tables import delivery
from services.router.statistics import payment_export
from services.router.statistics.payment import build_payment_report
from services.router.statistics.payment_clock import (
    PaymentAgreement,
    PaymentAgreements,
    StayEvidence,
    payable_days_by_period,
)
from tests.support.payment import PATIENT, a_stay, record, report
from tests.support.router import Clock, message_id

NOV, DEC = (lambda d: date(2026, 11, d)), (lambda d: date(2026, 12, d))


async def ready_again(router, sessions, clock, seed):
    """A new ready notice now, sent to the municipality at once (it would wait behind the
    unconfirmed earlier one otherwise)."""
    rec = record(
        discharge_readiness, sample_discharge_readiness(random.Random(seed), now=clock()), clock()
    )
    await router.handle_batch([rec])
    async with sessions.begin() as s:
        await s.execute(
            update(delivery)
            .where(delivery.c.message_id == message_id(rec))
            .values(sent_at=clock.now, state="sent")
        )
    return rec


async def interrupted(router, clock, local):
    doc = sample_process_interrupted(random.Random(4), now=clock())
    doc["interruption"]["interruptedAt"] = local
    rec = record(process_interrupted, doc, clock())
    await router.handle_batch([rec])
    return rec


async def periods(sessions):
    async with sessions() as s:
        return (await s.execute(select(readiness_period).order_by(readiness_period.c.id))).all()


def csv_rows(found):
    rows = list(csv.reader(io.StringIO(payment_export.to_csv(found)[1:]), delimiter=";"))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


async def test_ready_interrupted_ready_again_discharged_pays_both_readinesses(sessions):
    clock = Clock()
    router = await a_stay(sessions, clock)  # ready notice sent Monday 23 Nov: pays from 27th
    clock.now = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)
    stop = await interrupted(router, clock, "2026-11-30T08:00:00+01:00")  # 27, 28, 29 paid
    clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday: ready again
    again = await ready_again(router, sessions, clock, seed=9)  # pays from Saturday 5 Dec
    clock.now = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # discharged Tuesday 8 Dec
    doc = sample_discharge_notice(random.Random(5), now=clock())
    doc["destination"] = "home"
    leave = record(discharge_notice, doc, clock())
    await router.handle_batch([leave])

    first, second = await periods(sessions)
    assert (first.ended_by, first.ended_by_message_id) == ("interrupted", message_id(stop))
    assert first.ended_at == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert (second.ready_message_id, second.ended_by) == (message_id(again), "discharged")
    assert second.ended_by_message_id == message_id(leave)
    assert first.episode_id == second.episode_id

    found = await report(sessions, datetime(2026, 12, 10, 12, 0, tzinfo=UTC))
    one, two = found.stays
    assert one.days == (NOV(27), NOV(28), NOV(29))
    assert two.days == (DEC(5), DEC(6), DEC(7))  # the day of leaving is not payable
    assert (one.stay.ready_message_id, two.stay.ready_message_id) == (
        first.ready_message_id,
        message_id(again),
    )
    assert [(m.month, m.days, m.stays) for m in found.months] == [
        ("2026-11", 3, 1),
        ("2026-12", 3, 1),
    ]
    rows = csv_rows(found)
    assert [(r["Dag"], r["Utskrivningsklar meddelande-id"]) for r in rows] == [
        *((d.isoformat(), first.ready_message_id) for d in (NOV(27), NOV(28), NOV(29))),
        *((d.isoformat(), message_id(again)) for d in (DEC(5), DEC(6), DEC(7))),
    ]
    assert {r["Avbruten"] for r in rows[:3]} == {"2026-11-30T08:00:00+01:00"}
    assert {r["Perioden avslutad av meddelande-id"] for r in rows[3:]} == {message_id(leave)}
    assert {r["Utskriven"] for r in rows} != {""}
    document = payment_export.to_document(found)
    assert [len(s.days) for s in document.stays] == [3, 3]
    assert document.stays[0].endedByMessageId == message_id(stop)


async def test_withdrawn_then_ready_again_pays_both_readinesses(sessions):
    clock = Clock()
    router = await a_stay(sessions, clock)
    clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)  # Sunday: withdrawn
    doc = sample_discharge_readiness(random.Random(3), now=clock(), withdrawn=True)
    withdrawal = record(discharge_readiness, doc, clock())
    await router.handle_batch([withdrawal])
    clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # Wednesday: ready again
    again = await ready_again(router, sessions, clock, seed=11)  # pays from Sunday 6 Dec

    found = await report(sessions, datetime(2026, 12, 9, 12, 0, tzinfo=UTC))
    one, two = found.stays
    assert one.stay.withdrawn_at == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    assert one.stay.ended_by_message_id == message_id(withdrawal)
    assert one.days == (NOV(27), NOV(28))  # the withdrawal day is not payable
    assert (two.stay.withdrawn_at, two.stay.ready_message_id) == (None, message_id(again))
    assert two.days == (DEC(6), DEC(7), DEC(8))  # still in hospital: up to yesterday
    assert sum(m.days for m in found.months) == 5 == len(csv_rows(found))
    (row,) = [p for p in await periods(sessions) if p.ended_by is not None]
    assert row.ended_by == PeriodEnd.WITHDRAWN.value


async def test_interrupted_then_deceased_keeps_the_days_before_the_interruption(sessions):
    clock = Clock()
    router = await a_stay(sessions, clock)
    clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    stop = await interrupted(router, clock, "2026-11-29T08:00:00+01:00")
    clock.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    doc = sample_patient_deceased(random.Random(4), now=clock())
    doc["death"]["deceasedAt"] = "2026-12-03T03:10:00+01:00"
    await router.handle_batch([record(patient_deceased, doc, clock())])

    (row,) = await periods(sessions)  # the death ends no readiness: the interruption did
    assert (row.ended_by, row.ended_by_message_id) == ("interrupted", message_id(stop))
    found = await report(sessions, datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    (stay,) = found.stays
    assert stay.days == (NOV(27), NOV(28))
    assert stay.stay.deceased_at == datetime(2026, 12, 3, 2, 10, tzinfo=UTC)
    rows = csv_rows(found)
    assert [r["Dag"] for r in rows] == ["2026-11-27", "2026-11-28"]
    assert {r["Avliden"] for r in rows} == {"2026-12-03T03:10:00+01:00"}


async def test_a_death_while_ready_ends_the_period(sessions):
    clock = Clock()
    router = await a_stay(sessions, clock)
    clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    doc = sample_patient_deceased(random.Random(4), now=clock())
    doc["death"]["deceasedAt"] = "2026-11-29T03:10:00+01:00"
    await router.handle_batch([record(patient_deceased, doc, clock())])
    (row,) = await periods(sessions)
    assert (row.ended_by, row.ended_at) == ("deceased", datetime(2026, 11, 29, 2, 10, tzinfo=UTC))
    async with sessions() as s:
        (state,) = (await s.execute(select(episode.c.state))).one()
    assert state == "deceased"


def evidence(period, sent, *, ended=None, stay=1):
    return StayEvidence(
        stay_id=stay,
        pseudonym=f"{stay:032x}",
        municipality="0980",
        ready_sent_at=sent,
        admission_confirmed_at=sent - timedelta(days=2),
        admission_received_at=sent - timedelta(days=2),
        admission_record_id="TRS-1",
        discharged_at=None,
        superseded_at=ended,
        period_id=period,
        ready_message_id=f"ready-{period}",
    )


def test_periods_that_overlap_pay_a_day_once_by_the_earlier_period():
    sent = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # Monday: pays from Friday 6 March
    law = PaymentAgreement()
    overlapping = [  # as if the first had not been ended (it would have been, superseded)
        (evidence(1, sent), law),
        (evidence(2, sent + timedelta(days=1)), law),
        (evidence(3, sent, stay=2), law),  # another stay pays its own days
    ]
    one, two, other = payable_days_by_period(overlapping, today=date(2026, 3, 10))
    assert one == (date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9))
    assert two == ()
    assert other == one


def test_the_csv_an_invoice_check_reads_has_one_row_per_stay_and_day():
    """An invoice check counts a stay's rows per month and matches each to its ready
    notice: the rows of every period, no (stay, day) twice, adding up to the months."""
    sent = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    found = build_payment_report(
        [  # listed out of order: the report orders a stay's periods by when they were sent
            evidence(2, sent + timedelta(days=10)),
            evidence(1, sent, ended=sent + timedelta(days=7)),  # superseded on 9 March
            evidence(3, sent, stay=2),
        ],
        PaymentAgreements(),
        since=date(2026, 3, 1),
        until=date(2026, 3, 31),
        now=datetime(2026, 3, 20, 12, tzinfo=UTC),
    )
    rows = csv_rows(found)
    keyed = Counter((r["Vårdtillfälle"], r["Dag"]) for r in rows)
    assert max(keyed.values()) == 1
    assert [m.days for m in found.months] == [len(rows)]
    assert found.months[0].stays == 2  # stays, not periods
    stay_one = [(r["Dag"], r["Utskrivningsklar meddelande-id"], r["Period"]) for r in rows]
    assert stay_one[:3] == [  # 6, 7, 8 March; superseded on the 9th
        ("2026-03-06", "ready-1", "1"),
        ("2026-03-07", "ready-1", "1"),
        ("2026-03-08", "ready-1", "1"),
    ]
    assert stay_one[3] == ("2026-03-16", "ready-2", "2")  # sent 12th: pays from the 16th
    assert rows[0]["Ersatt av ny utskrivningsklar"] == "2026-03-09T13:00:00+01:00"


def test_0035_gives_each_existing_episode_one_period_from_its_current_row(tmp_path):
    import sqlite3

    from alembic import command

    from services.messaging.db import alembic_config

    path = tmp_path / "router.db"
    url = f"sqlite+aiosqlite:///{path}"
    command.upgrade(alembic_config(url), "0034")
    db = sqlite3.connect(path)
    t = "2026-11-2{} 09:00:00.000000"
    episodes = [  # id, state, ready_message_id, ready_at, withdrawn, interrupted, discharged
        (1, "ready", "r1", t.format(1), None, None, None),
        (2, "admitted", "r2", None, t.format(2), None, None),
        (3, "interrupted", "r3", None, None, t.format(3), None),
        (4, "discharged", "r4", t.format(1), None, None, t.format(4)),
        (5, "admitted", None, None, None, None, None),  # never ready: no period
    ]
    with db:
        db.execute(
            "INSERT INTO message (id, event_code, source, sent_at, received_at, payload) VALUES"
            " ('r2', 'ready-for-discharge', 'takecare', ?, ?, '{}')",
            (t.format(0), t.format(0)),
        )
        for row in episodes:
            db.execute(
                "INSERT INTO episode (id, pseudonym, state, ready_message_id, ready_at,"
                " ready_withdrawn_at, interrupted_at, discharged_at, admission_message_id,"
                " updated_at) VALUES (?, 'p', ?, ?, ?, ?, ?, ?, 'a', ?)",
                (*row, t.format(5)),
            )
        db.execute(
            "INSERT INTO episode_transition (episode_id, from_state, to_state, event_code,"
            " message_id, at, reason) VALUES (4, 'ready', 'discharged', 'discharge-notice',"
            " 'd4', ?, 'discharged')",
            (t.format(4),),
        )
    command.upgrade(alembic_config(url), "head")
    found = db.execute(
        "SELECT episode_id, ready_message_id, admission_message_id, substr(ready_at, 1, 19),"
        " ended_by, substr(ended_at, 1, 19), ended_by_message_id"
        " FROM readiness_period ORDER BY episode_id"
    ).fetchall()
    db.close()
    day = "2026-11-2{} 09:00:00"
    assert found == [
        (1, "r1", "a", day.format(1), None, None, None),
        (2, "r2", "a", day.format(0), "withdrawn", day.format(2), None),  # the notice's time
        (3, "r3", "a", day.format(5), "interrupted", day.format(3), None),  # nothing better
        (4, "r4", "a", day.format(1), "discharged", day.format(4), "d4"),
    ]


async def test_one_batch_that_admits_readies_interrupts_and_readies_again(engine, sessions):
    """Periods of an episode the same batch begins take its id when the batch is stored;
    one the batch opened and ended is stored ended."""
    from sandbox.simulators.samples.admission_notice import sample_admission
    from services.adapter_takecare.families import admission_notice
    from tests.support.incidents import Sink, make_router

    clock = Clock()
    router = await make_router(sessions, clock, Sink())
    admission = record(admission_notice, sample_admission(random.Random(1), now=clock()), clock())
    ready = record(
        discharge_readiness, sample_discharge_readiness(random.Random(2), now=clock()), clock()
    )
    doc = sample_process_interrupted(random.Random(4), now=clock())
    stop = record(process_interrupted, doc, clock())
    again = record(
        discharge_readiness, sample_discharge_readiness(random.Random(9), now=clock()), clock()
    )
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_rest) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await router.handle_batch([admission, ready, stop, again])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    first, second = await periods(sessions)
    async with sessions() as s:
        (episode_id,) = (await s.execute(select(episode.c.id))).one()
    assert first.episode_id == second.episode_id == episode_id
    assert (first.ready_message_id, first.ended_by) == (message_id(ready), "interrupted")
    assert (second.ready_message_id, second.ended_by) == (message_id(again), None)
    assert sum("readiness_period" in statement for statement in sent) == 1  # set-based


async def test_a_cancelled_ready_notice_pays_nothing_and_the_stay_is_admitted_again(sessions):
    """A makulering of the ready notice in force: the readiness never was. Its period ends
    as cancelled (nothing payable), the episode is back to admitted and its SIP clock stops;
    a later ready notice starts a clock of its own."""
    clock = Clock()
    router = await a_stay(sessions, clock)
    (first,) = await periods(sessions)
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    bundle = cancellation_bundle(
        Cancellation(
            cancelled_message_id=first.ready_message_id,
            cancelled_at=clock(),
            reason="Skickat på fel patient",
            patient=PatientInfo(
                identifier=parse_patient_identifier("191212121212"),
                family_name="Tolvansson",
                given_name="Tolvan",
                address=None,
                protected=False,
            ),
            cancelled_by=Canceller("Karin Lindqvist", "SE2321000222-P4711", "SE2321000222-AKUT"),
        ),
        key=BusinessKey(System.TAKECARE.value, "tc-mak-ready", 1),
        source=System.TAKECARE,
        now=clock(),
    )
    cancel = IncomingRecord(topics.INBOUND, 0, 10**8, PATIENT, to_json(bundle).encode(), {})
    await router.handle_batch([cancel])

    (row,) = await periods(sessions)
    assert (row.ended_by, row.ended_by_message_id) == ("cancelled", message_id(cancel))
    async with sessions() as s:
        found = (await s.execute(select(episode.c.state, episode.c.sip_due_at))).one()
    assert (found.state, found.sip_due_at) == ("admitted", None)
    assert (await report(sessions, datetime(2026, 12, 7, 12, 0, tzinfo=UTC))).stays == ()

    clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday: ready, for real
    again = await ready_again(router, sessions, clock, seed=12)  # pays from Saturday 5 Dec
    (stay,) = (await report(sessions, datetime(2026, 12, 8, 12, 0, tzinfo=UTC))).stays
    assert stay.stay.ready_message_id == message_id(again)
    assert stay.days == (DEC(5), DEC(6), DEC(7))
