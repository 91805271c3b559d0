"""Deviation records on a real database: idempotent recording, closing with the final
lateness, months counted in Stockholm time, and no patient identity accepted."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.router.deviations.records import (
    DeviationKind,
    DeviationRejected,
    InvalidMonth,
    close_deviation,
    list_deviations,
    looks_like_personnummer,
    month_window,
    monthly_counts,
    record_deviation,
)
from services.router.routing.tables import deviation
from tests.support.deviations import T0, add_delivery, facts

pytestmark = pytest.mark.alerts


async def count(sessions) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(deviation)))


async def test_recording_the_same_failed_delivery_twice_keeps_one_deviation(sessions):
    async with sessions.begin() as s:
        delivery_id = await add_delivery(s, "a1b2c3d4-0000-4000-8000-00000000000a")
        first = await record_deviation(s, **facts(delivery_id=delivery_id))
    async with sessions.begin() as s:  # a second replica, or the rule firing again later
        again = await record_deviation(
            s, **facts(delivery_id=delivery_id, detected_at=T0 + timedelta(hours=1), alert_id=None)
        )
        other_kind = await record_deviation(
            s, **facts(delivery_id=delivery_id, kind=DeviationKind.DELIVERY_FAILED)
        )
    assert again == first and other_kind != first
    assert await count(sessions) == 2
    (kept,) = [d for d in await list_deviations_all(sessions) if d.id == first]
    assert kept.detected_at == T0 + timedelta(minutes=15)  # the first detection stays


async def list_deviations_all(sessions):
    async with sessions() as s:
        return await list_deviations(s)


async def test_without_a_delivery_the_same_gap_is_recorded_once(sessions):
    gap = facts(kind=DeviationKind.EPISODE_GAP, family="medication-list", due_at=T0)
    async with sessions.begin() as s:
        first = await record_deviation(s, **gap)
        assert await record_deviation(s, **gap) == first
        assert await record_deviation(s, **{**gap, "message_id": None}) != first
    assert await count(sessions) == 2


async def test_an_alert_id_learnt_later_is_filled_in(sessions):
    from services.router.routing.tables import alert

    async with sessions.begin() as s:
        delivery_id = await add_delivery(s, "a1b2c3d4-0000-4000-8000-00000000000b")
        first = await record_deviation(s, **facts(delivery_id=delivery_id))
        alert_id = (
            await s.execute(
                alert.insert()
                .returning(alert.c.id)
                .values(
                    kind="confirmation_overdue",
                    destination="treserva",
                    event_code="admission-notice",
                    state="open",
                    opened_at=T0,
                    last_seen_at=T0,
                    affected=1,
                    summary="x",
                )
            )
        ).scalar_one()
        assert await record_deviation(s, **facts(delivery_id=delivery_id, alert_id=alert_id)) == (
            first
        )
    (found,) = await list_deviations_all(sessions)
    assert found.alert_id == alert_id


async def test_closing_sets_the_final_lateness_and_it_stays_counted(sessions):
    async with sessions.begin() as s:
        delivery_id = await add_delivery(s, "a1b2c3d4-0000-4000-8000-00000000000c")
        await record_deviation(
            s, **facts(delivery_id=delivery_id, detected_at=T0 + timedelta(minutes=20))
        )
    (open_one,) = await list_deviations_all(sessions)
    assert open_one.lateness_s == 5 * 60 and not open_one.resolved  # at detection
    async with sessions.begin() as s:
        closed = await close_deviation(
            s, delivery_id=delivery_id, resolved_at=T0 + timedelta(hours=2, minutes=15)
        )
        assert await close_deviation(s, delivery_id=delivery_id, resolved_at=T0) == 0
    assert closed == 1
    (done,) = await list_deviations_all(sessions)
    assert done.resolved_at == T0 + timedelta(hours=2, minutes=15)
    assert done.lateness_s == 2 * 3600  # against the deadline, not against detection
    async with sessions() as s:
        (month,) = await monthly_counts(s)
    assert month.total == 1 and month.resolved == 1


async def test_closing_without_a_deadline_keeps_lateness_unknown(sessions):
    async with sessions.begin() as s:
        delivery_id = await add_delivery(s, "a1b2c3d4-0000-4000-8000-00000000000d")
        await record_deviation(
            s, **facts(delivery_id=delivery_id, kind="delivery_failed", due_at=None)
        )
        assert await close_deviation(s, delivery_id=delivery_id, resolved_at=T0) == 1
    (done,) = await list_deviations_all(sessions)
    assert done.lateness_s is None and done.resolved_at == T0


async def test_months_are_counted_in_stockholm_time(sessions):
    # 31 October 23:30 UTC is 1 November 00:30 in Stockholm (CET, +01:00)
    autumn_edge = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    late_october = datetime(2026, 10, 31, 22, 30, tzinfo=UTC)  # 23:30 in Stockholm
    async with sessions.begin() as s:
        for i, at in enumerate((late_october, autumn_edge, autumn_edge + timedelta(days=3))):
            await record_deviation(
                s,
                **facts(
                    kind="episode_gap" if i else "delivery_failed",
                    destination="primary-care" if i == 2 else "treserva",
                    detected_at=at,
                    message_id=f"a1b2c3d4-0000-4000-8000-00000000001{i}",
                ),
            )
    async with sessions() as s:
        months = [m.to_json() for m in await monthly_counts(s)]
        november = await list_deviations(s, month="2026-11")
        october = await list_deviations(s, month="2026-10")
        only_gaps = await list_deviations(s, month="2026-11", destination="treserva")
        later = await monthly_counts(s, since="2026-11")
    assert months == [
        {
            "month": "2026-10",
            "total": 1,
            "resolved": 0,
            "byKind": {"delivery_failed": 1},
            "byDirection": {"hospital-to-municipality": 1},
        },
        {
            "month": "2026-11",
            "total": 2,
            "resolved": 0,
            "byKind": {"episode_gap": 2},
            "byDirection": {"hospital-to-municipality": 1, "hospital-to-primary-care": 1},
        },
    ]
    assert [d.detected_at for d in november] == [autumn_edge, autumn_edge + timedelta(days=3)]
    assert [d.detected_at for d in october] == [late_october]
    assert len(only_gaps) == 1
    assert [m.month for m in later] == ["2026-11"]


def test_a_month_window_follows_summer_time():
    start, end = month_window("2026-03")  # CET at the start, CEST at the end
    assert start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert month_window("2026-12")[1] == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "26-11", "1999-12", "2026-11-01", ""):
        with pytest.raises(InvalidMonth):
            month_window(bad)


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "Patient 19121212-1212 fick inget meddelande."},
        {"description": "Gäller 121212+1212."},
        {"description": "Samordningsnummer 201012721237"},
        {"pseudonym": "191212121212"},
        {"sender_unit_hsa": "191212121212"},
        {"message_id": "19121212-1212"},
        {"kind": "Not Confirmed"},
        {"description": "  "},
        {"detected_at": datetime(2026, 11, 3, 9, 0)},
    ],
)
async def test_patient_identity_and_malformed_fields_are_refused(sessions, changes):
    async with sessions.begin() as s:
        with pytest.raises(DeviationRejected) as refused:
            await record_deviation(s, **facts(**changes))
    assert "1212" not in str(refused.value)  # the message never repeats the value
    assert await count(sessions) == 0


def test_organisation_numbers_in_hsa_ids_are_not_mistaken_for_personnummer():
    assert not looks_like_personnummer("SE2321000222-AKUT och SE2120000803-HSJV")
    assert not looks_like_personnummer("a1b2c3d4-0000-4000-8000-00000000000a")
    assert looks_like_personnummer("19121212-1212") and looks_like_personnummer("1212121212")
