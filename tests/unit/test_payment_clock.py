"""The Swedish calendar and the payment clock (betalningsansvar), pure: known dates, the
rule's cases, and Hypothesis properties over years and sent times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.routing.swedish_calendar import (
    STOCKHOLM,
    all_saints_day,
    easter_sunday,
    is_working_day,
    midsummer_eve,
    swedish_holidays,
)
from services.router.statistics.payment_clock import (
    DayCount,
    PaymentAgreement,
    PaymentAgreements,
    StayEvidence,
    clock_runs,
    first_payable_day,
    payable_days,
)

CALENDAR_3 = PaymentAgreement()
WORKING_3 = PaymentAgreement(days=3, kind=DayCount.WORKING)

# --- the calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2028, date(2028, 4, 16)),
        (2038, date(2038, 4, 25)),  # the latest possible
        (2285, date(2285, 3, 22)),  # the earliest possible
    ],
)
def test_easter_by_the_gregorian_computus(year, easter):
    assert easter_sunday(year) == easter


@pytest.mark.parametrize(
    ("year", "eve", "saints"),
    [
        (2025, date(2025, 6, 20), date(2025, 11, 1)),
        (2026, date(2026, 6, 19), date(2026, 10, 31)),
        (2027, date(2027, 6, 25), date(2027, 11, 6)),
    ],
)
def test_midsummer_eve_and_all_saints(year, eve, saints):
    assert midsummer_eve(year) == eve
    assert all_saints_day(year) == saints


def test_the_non_working_weekdays_of_2026():
    weekdays = sorted(d for d in swedish_holidays(2026) if d.weekday() < 5)
    assert weekdays == [
        date(2026, 1, 1),  # nyårsdagen
        date(2026, 1, 6),  # trettondedag jul
        date(2026, 4, 3),  # långfredagen
        date(2026, 4, 6),  # annandag påsk
        date(2026, 5, 1),  # första maj
        date(2026, 5, 14),  # Kristi himmelsfärdsdag
        date(2026, 6, 19),  # midsommarafton
        date(2026, 12, 24),  # julafton
        date(2026, 12, 25),  # juldagen
        date(2026, 12, 31),  # nyårsafton (annandag jul is a Saturday in 2026)
    ]


@given(st.integers(min_value=1900, max_value=2200))
def test_calendar_properties(year):
    easter = easter_sunday(year)
    assert easter.weekday() == 6 and date(year, 3, 22) <= easter <= date(year, 4, 25)
    eve = midsummer_eve(year)
    assert eve.weekday() == 4 and date(year, 6, 19) <= eve <= date(year, 6, 25)
    saints = all_saints_day(year)
    assert saints.weekday() == 5 and date(year, 10, 31) <= saints <= date(year, 11, 6)
    assert not is_working_day(easter - timedelta(days=2))
    assert not is_working_day(easter + timedelta(days=1))
    assert not is_working_day(date(year, 12, 24))
    # the first working day of the year is never 1 January
    assert not is_working_day(date(year, 1, 1))


# --- the clock ------------------------------------------------------------------------------


def stay(
    sent: datetime | None,
    *,
    received: bool = True,
    discharged: datetime | None = None,
    withdrawn: datetime | None = None,
) -> StayEvidence:
    return StayEvidence(
        stay_id=1,
        pseudonym="p" * 32,
        municipality="0980",
        ready_sent_at=sent,
        admission_confirmed_at=datetime(2026, 3, 1, tzinfo=UTC) if received else None,
        admission_received_at=None,
        admission_record_id=None,
        discharged_at=discharged,
        withdrawn_at=withdrawn,
    )


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


def test_three_calendar_days_from_the_day_after_sending():
    monday = local("2026-03-02T15:00")
    assert first_payable_day(monday, CALENDAR_3) == date(2026, 3, 6)  # Tue–Thu, then Friday
    days = payable_days(stay(monday), CALENDAR_3, today=date(2026, 3, 9))
    assert days == [date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8)]  # weekend too


def test_sent_on_good_friday_working_days_skip_easter():
    good_friday = local("2026-04-03T11:00")
    # Sat, Sun, annandag påsk are not working days: Tue 7, Wed 8, Thu 9 are counted
    assert first_payable_day(good_friday, WORKING_3) == date(2026, 4, 10)
    assert first_payable_day(good_friday, CALENDAR_3) == date(2026, 4, 7)


def test_sent_on_the_friday_before_easter_week():
    friday = local("2025-04-11T09:00")  # Easter 2025-04-20
    # Mon 14, Tue 15, Wed 16 are counted: payable from Maundy Thursday
    assert first_payable_day(friday, WORKING_3) == date(2025, 4, 17)
    thursday = local("2025-04-17T09:00")  # långfredag, annandag påsk skipped
    assert first_payable_day(thursday, WORKING_3) == date(2025, 4, 25)


def test_the_day_is_the_stockholm_day_of_the_sent_time():
    # 23:30 UTC on Saturday 28 March 2026 is 00:30 on Sunday in Stockholm (CET)
    late = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert first_payable_day(late, CALENDAR_3) == date(2026, 4, 2)
    # and after the DST change, 22:30 UTC on Sunday 29 March is Monday 00:30 (CEST)
    assert first_payable_day(datetime(2026, 3, 29, 22, 30, tzinfo=UTC), CALENDAR_3) == date(
        2026, 4, 3
    )


def test_no_admission_receipt_no_clock():
    sent = local("2026-03-02T15:00")
    assert not clock_runs(stay(sent, received=False))
    assert payable_days(stay(sent, received=False), CALENDAR_3, today=date(2026, 4, 1)) == []
    assert payable_days(stay(None), CALENDAR_3, today=date(2026, 4, 1)) == []


def test_the_discharge_day_and_the_withdrawal_day_end_the_clock():
    sent = local("2026-03-02T15:00")  # payable from Friday 6 March
    discharged = payable_days(
        stay(sent, discharged=local("2026-03-08T10:00")), CALENDAR_3, today=date(2026, 4, 1)
    )
    assert discharged == [date(2026, 3, 6), date(2026, 3, 7)]
    withdrawn = payable_days(
        stay(sent, withdrawn=local("2026-03-07T09:00")), CALENDAR_3, today=date(2026, 4, 1)
    )
    assert withdrawn == [date(2026, 3, 6)]
    early = stay(sent, discharged=local("2026-03-05T10:00"))
    assert payable_days(early, CALENDAR_3, today=date(2026, 4, 1)) == []


def test_a_stay_still_in_hospital_counts_the_days_that_have_passed():
    sent = local("2026-03-02T15:00")
    assert payable_days(stay(sent), CALENDAR_3, today=date(2026, 3, 6)) == []
    assert payable_days(stay(sent), CALENDAR_3, today=date(2026, 3, 7)) == [date(2026, 3, 6)]


def test_agreements_per_municipality_fall_back_to_the_law():
    agreements = PaymentAgreements({"0980": WORKING_3})
    assert agreements.of("0980") == WORKING_3
    assert agreements.of("0180") == PaymentAgreement(days=3, kind=DayCount.CALENDAR)


sent_times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@given(sent_times, st.integers(min_value=0, max_value=15))
def test_clock_properties(sent, days):
    calendar = PaymentAgreement(days=days)
    working = PaymentAgreement(days=days, kind=DayCount.WORKING)
    sent_day = sent.astimezone(STOCKHOLM).date()
    first = first_payable_day(sent, calendar)
    assert first == sent_day + timedelta(days=days + 1)
    later = first_payable_day(sent, working)
    assert later >= first
    counted = [
        sent_day + timedelta(days=i)
        for i in range(1, (later - sent_day).days)
        if is_working_day(sent_day + timedelta(days=i))
    ]
    assert len(counted) == days  # exactly `days` working days before the first payable
    found = payable_days(stay(sent), calendar, today=first + timedelta(days=10))
    assert found == [first + timedelta(days=i) for i in range(10)]


@given(
    sent_times,
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.sampled_from([CALENDAR_3, WORKING_3]),
)
def test_payable_days_are_consecutive_and_end_before_the_discharge_day(
    sent, hours_later, days_later, agreement
):
    discharged = sent + timedelta(days=days_later, hours=hours_later)
    today = date(2036, 1, 1)
    found = payable_days(stay(sent, discharged=discharged), agreement, today=today)
    last = discharged.astimezone(STOCKHOLM).date()
    assert all(d < last for d in found)
    assert all(b - a == timedelta(days=1) for a, b in pairwise(found))
    if found:
        assert found[0] == first_payable_day(sent, agreement)
        # up to the day before the discharge, or before today when that is still to come
        # (Hypothesis found a discharge on 2036-01-02 with today 2036-01-01)
        assert found[-1] == min(last, today) - timedelta(days=1)
    assert (
        payable_days(stay(sent, received=False, discharged=discharged), agreement, today=last) == []
    )
