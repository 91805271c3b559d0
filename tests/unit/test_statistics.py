"""Statistics (issue 6): the Stockholm calendar helpers, and every figure computed from rows
seeded straight into SQL with known times, on SQLite and on PostgreSQL. Around the
2026-03-29 DST change: 22:30 UTC on Sunday 29 March is already Monday (CEST, +02:00)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.router.statistics.periods import (
    InvalidRange,
    Period,
    default_range,
    key_of,
    median,
    spans,
    utc_window,
)
from services.router.statistics.report import (
    NOTICE_FAMILIES,
    Arrival,
    LegalOutcome,
    build_report,
    resolve_range,
    statistics,
)
from tests.support.statistics import NOW, add_delivery, add_message, add_stay, utc

# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "day", "week"),
    [
        ("2026-03-22T22:30", "2026-03-22", "2026-W12"),  # 23:30 CET, Sunday
        ("2026-03-22T23:30", "2026-03-23", "2026-W13"),  # 00:30 CET, Monday
        ("2026-03-29T21:30", "2026-03-29", "2026-W13"),  # 23:30 CEST, Sunday
        ("2026-03-29T22:30", "2026-03-30", "2026-W14"),  # 00:30 CEST, Monday
        ("2026-10-24T22:30", "2026-10-25", "2026-W43"),  # 00:30 CEST, the 25-hour Sunday
        ("2026-10-25T22:59", "2026-10-25", "2026-W43"),  # 23:59 CET, still that Sunday
        ("2027-01-03T12:00", "2027-01-03", "2026-W53"),  # ISO year 2026 has 53 weeks
        ("2027-01-03T23:00", "2027-01-04", "2027-W01"),
    ],
)
def test_an_instant_falls_in_its_stockholm_day_and_iso_week(at, day, week):
    assert key_of(Period.DAY, utc(at)) == day
    assert key_of(Period.WEEK, utc(at)) == week


def test_a_dst_day_is_23_hours_and_a_week_runs_monday_to_sunday():
    start, end = utc_window(spans(Period.DAY, date(2026, 3, 29), date(2026, 3, 29)))
    assert (start, end) == (utc("2026-03-28T23:00"), utc("2026-03-29T22:00"))
    (week,) = spans(Period.WEEK, date(2026, 3, 25), date(2026, 3, 29))
    assert (week.key, week.first_day, week.last_day) == (
        "2026-W13",
        date(2026, 3, 23),
        date(2026, 3, 29),
    )
    start, end = utc_window([week])
    assert end - start == timedelta(days=7, hours=-1)


def test_spans_cover_every_period_in_order_empty_ones_too():
    found = spans(Period.WEEK, date(2026, 12, 24), date(2027, 1, 11))
    assert [s.key for s in found] == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    assert len(spans(Period.DAY, date(2026, 2, 1), date(2026, 3, 1))) == 29


def test_a_range_backwards_or_too_long_is_refused():
    with pytest.raises(InvalidRange, match="is after until"):
        spans(Period.DAY, date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(InvalidRange, match="at most 400"):
        spans(Period.DAY, date(2025, 1, 1), date(2026, 3, 1))
    assert len(spans(Period.WEEK, date(2025, 1, 1), date(2026, 3, 1))) == 52 + 9


def test_default_ranges_are_30_days_and_12_weeks():
    assert default_range(Period.DAY, date(2026, 4, 10)) == (date(2026, 3, 12), date(2026, 4, 10))
    found = resolve_range(Period.WEEK, None, None, date(2026, 4, 10))  # a Friday
    assert len(found) == 12
    assert (found[0].first_day, found[-1].last_day) == (date(2026, 1, 19), date(2026, 4, 12))
    only_until = resolve_range(Period.DAY, None, date(2026, 1, 30), date(2026, 4, 10))
    assert (only_until[0].first_day, len(only_until)) == (date(2026, 1, 1), 30)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), ([5.0], 5.0), ([9.0, 1.0, 4.0], 4.0), ([4.0, 1.0, 10.0, 2.0], 3.0)],
)
def test_median(values, expected):
    assert median(values) == expected


def test_an_empty_period_has_no_share_rather_than_zero_percent():
    periods = spans(Period.DAY, date(2026, 3, 30), date(2026, 3, 31))
    report = build_report(
        Period.DAY,
        periods,
        now=NOW,
        arrivals=[Arrival("admission-notice", utc("2026-03-30T08:00"))],
        legal=[LegalOutcome(utc("2026-03-30T09:00"), None)],
    )
    first, second = report.periods
    assert first.on_time.ratio == 0.0 and first.on_time.whole == 1  # known, and late
    assert second.on_time.ratio is None and second.same_day_discharge.ratio is None
    assert second.admission_to_confirmed["treserva"].median_seconds is None
    assert second.notices == dict.fromkeys(NOTICE_FAMILIES, 0)
    assert first.notices_total == 1


# --- seeded in SQL --------------------------------------------------------------------------


async def report(sessions, period: Period, since: date, until: date):
    async with sessions() as s:
        found = await statistics(s, period=period, since=since, until=until, now=NOW)
    return {p.key: p for p in found.periods}, found


async def test_notices_are_counted_per_family_in_their_stockholm_day_and_week(sessions):
    async with sessions.begin() as s:
        await add_message(s, "admission-notice", "2026-03-22T22:30")  # Sun 23:30 CET: W12
        await add_message(s, "admission-notice", "2026-03-22T23:30")  # Mon 00:30 CET: W13
        await add_message(s, "discharge-notice", "2026-03-29T21:30")  # Sun 23:30 CEST: W13
        await add_message(s, "discharge-notice", "2026-03-29T22:30")  # Mon 00:30 CEST: W14
        await add_message(s, "sip-invitation", "2026-03-29T22:45")
        await add_message(s, "sip-updated", "2026-03-30T10:00")
        await add_message(s, "medication-list", "2026-03-31T10:00")
        await add_message(s, "receipt", "2026-03-31T10:00")  # not a notice
        await add_message(s, "admission-notice", "2026-04-06T22:00")  # Tue 00:00: W15
    weeks, found = await report(sessions, Period.WEEK, date(2026, 3, 16), date(2026, 4, 5))
    assert list(weeks) == ["2026-W12", "2026-W13", "2026-W14"]
    assert (found.since, found.until) == (date(2026, 3, 16), date(2026, 4, 5))
    assert weeks["2026-W12"].notices["admission-notice"] == 1
    assert weeks["2026-W13"].notices["admission-notice"] == 1
    assert weeks["2026-W13"].notices["discharge-notice"] == 1
    w14 = weeks["2026-W14"]
    assert {k: v for k, v in w14.notices.items() if v} == {
        "discharge-notice": 1,
        "sip-invitation": 1,
        "sip-updated": 1,
        "medication-list": 1,
    }
    assert (w14.notices_total, w14.sip) == (4, 2)
    days, _ = await report(sessions, Period.DAY, date(2026, 3, 29), date(2026, 3, 30))
    assert (days["2026-03-29"].notices_total, days["2026-03-30"].notices_total) == (1, 3)
    assert (days["2026-03-29"].sip, days["2026-03-30"].sip) == (0, 2)


async def test_the_on_time_share_counts_deadlines_in_their_period_once_the_outcome_is_known(
    sessions,
):
    async with sessions.begin() as s:
        # Week 14 (30 March to 5 April): two on time of four known.
        await add_delivery(s, due="2026-03-30T10:00", confirmed="2026-03-30T09:00")  # on time
        await add_delivery(s, due="2026-03-30T12:00", confirmed="2026-03-30T12:00")  # at it
        await add_delivery(s, due="2026-03-30T12:00", confirmed="2026-03-30T12:00:01")  # late
        await add_delivery(s, due="2026-03-31T12:00")  # never confirmed, passed: late
        await add_delivery(s, due="2026-04-05T21:59", event_code="discharge-notice")  # late
        await add_delivery(s, due="2026-04-05T22:00", confirmed="2026-04-05T23:00")  # W15
        # Week 15: one confirmed before its deadline (known), one not yet due (pending)
        await add_delivery(s, due="2026-04-11T08:00", confirmed="2026-04-10T09:00")
        await add_delivery(s, due="2026-04-11T12:00")
        await add_delivery(s, confirmed="2026-03-30T09:00")  # no legal deadline
    weeks, _ = await report(sessions, Period.WEEK, date(2026, 3, 23), date(2026, 4, 12))
    w13, w14, w15 = weeks["2026-W13"], weeks["2026-W14"], weeks["2026-W15"]
    assert (w14.on_time.part, w14.on_time.whole, w14.legal_pending) == (2, 5, 0)
    assert w14.on_time.ratio == pytest.approx(0.4)
    assert (w15.on_time.part, w15.on_time.whole, w15.legal_pending) == (1, 2, 1)
    assert w13.on_time.ratio is None and w13.on_time.whole == 0


async def test_the_median_admission_to_confirmed_is_per_destination_and_admission_day(
    sessions,
):
    async with sessions.begin() as s:
        for minutes in (30, 90, 10):
            await add_delivery(
                s,
                legal_from="2026-03-30T08:00",
                due="2026-03-31T08:00",
                confirmed=(utc("2026-03-30T08:00") + timedelta(minutes=minutes)).isoformat()[:19],
            )
        await add_delivery(
            s,
            destination="primary-care",
            legal_from="2026-03-30T08:00",
            due="2026-03-31T08:00",
            confirmed="2026-03-30T08:05",
        )
        await add_delivery(s, legal_from="2026-03-30T08:00", due="2026-03-31T08:00")  # pending
        await add_delivery(  # not an admission notice
            s,
            event_code="discharge-notice",
            legal_from="2026-03-30T08:00",
            due="2026-03-30T22:00",
            confirmed="2026-03-30T20:00",
        )
        await add_delivery(  # admitted 00:30 Tuesday, Stockholm time
            s, legal_from="2026-03-30T22:30", due="2026-03-31T22:30", confirmed="2026-03-31T00:30"
        )
    days, found = await report(sessions, Period.DAY, date(2026, 3, 30), date(2026, 3, 31))
    assert found.destinations == ("treserva", "primary-care")
    monday, tuesday = days["2026-03-30"], days["2026-03-31"]
    assert monday.admission_to_confirmed["treserva"].confirmed == 3
    assert monday.admission_to_confirmed["treserva"].median_seconds == 30 * 60
    assert monday.admission_to_confirmed["primary-care"].median_seconds == 5 * 60
    assert tuesday.admission_to_confirmed["treserva"].median_seconds == 2 * 3600
    assert tuesday.admission_to_confirmed["primary-care"].median_seconds is None
    weeks, _ = await report(sessions, Period.WEEK, date(2026, 3, 30), date(2026, 3, 30))
    assert weeks["2026-W14"].admission_to_confirmed["treserva"].median_seconds == 60 * 60


async def test_same_day_discharge_compares_stockholm_calendar_days(sessions):
    async with sessions.begin() as s:
        await add_stay(s, "2026-03-30T07:00", "2026-03-30T15:00")  # same day
        await add_stay(s, "2026-03-30T21:30", "2026-03-30T22:30")  # Mon 23:30 → Tue 00:30
        await add_stay(s, "2026-03-31T22:30", "2026-04-01T10:00")  # both Wednesday locally
        await add_stay(s, None, "2026-04-01T11:00")  # never declared ready
        await add_stay(s, "2026-04-01T08:00", None)  # not discharged yet
        await add_stay(s, "2026-03-20T08:00", "2026-03-22T10:00")  # week 12
    weeks, _ = await report(sessions, Period.WEEK, date(2026, 3, 23), date(2026, 4, 5))
    w13, w14 = weeks["2026-W13"], weeks["2026-W14"]
    assert (w14.same_day_discharge.part, w14.same_day_discharge.whole) == (2, 3)
    assert w14.same_day_discharge.ratio == pytest.approx(2 / 3)
    assert w14.discharged_without_ready == 1
    assert w13.same_day_discharge.ratio is None
    days, _ = await report(sessions, Period.DAY, date(2026, 3, 30), date(2026, 4, 1))
    assert days["2026-03-30"].same_day_discharge.ratio == 1.0
    assert days["2026-03-31"].same_day_discharge.ratio == 0.0  # the one discharged 00:30
    assert days["2026-04-01"].same_day_discharge.ratio == 1.0


async def test_the_query_reads_only_the_range(sessions):
    async with sessions.begin() as s:
        await add_message(s, "sip-invitation", "2026-03-28T22:59")  # 23:59 local, 28 March
        await add_message(s, "sip-invitation", "2026-03-28T23:00")  # 00:00 local, 29 March
        await add_message(s, "sip-invitation", "2026-03-29T21:59")  # 23:59 CEST
        await add_message(s, "sip-invitation", "2026-03-29T22:00")  # 00:00, 30 March
    _, found = await report(sessions, Period.DAY, date(2026, 3, 29), date(2026, 3, 29))
    assert [p.sip for p in found.periods] == [2]
