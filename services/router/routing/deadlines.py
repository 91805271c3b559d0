"""Legal deadlines of care-transition messages (Lag 2017:612) and the stages at which the
router warns before a breach. Pure: times in, times out; the Swedish calendar is computed.

| family | legal deadline |
|---|---|
| admission notice (inskrivningsmeddelande) | 24 h after admission (Encounter.period.start) |
| discharge notice (utskrivningsmeddelande) | the end of the discharge day, Swedish time |
| SIP invitation (kallelse till SIP) | 3 days after ready for discharge (episode rule) |

A deadline counted in *working days* (where a regional agreement says so) skips Saturdays,
Sundays and Swedish public holidays (:func:`add_working_days`).
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.messaging.care_facts import CareFacts
from services.messaging.envelope import EventCode

STOCKHOLM = ZoneInfo("Europe/Stockholm")

ADMISSION_NOTICE_WITHIN = timedelta(hours=24)
SIP_INVITATION_WITHIN_DAYS = 3


class Stage(enum.IntEnum):
    """How far into the time to its legal deadline an unconfirmed message is."""

    ON_TRACK = 0
    HALF = 1  # 50 % of the time gone: a warning, for the record
    LATE = 2  # 80 % gone: someone must act now
    BREACHED = 3


def legal_deadline(event_code: str, facts: CareFacts, sent_at: datetime) -> datetime | None:
    """When the receiver must have the message by law; None for families without one."""
    if event_code in (EventCode.ADMISSION_NOTICE, EventCode.ADMISSION_NOTICE_UPDATED):
        return (facts.stay_started_at or sent_at) + ADMISSION_NOTICE_WITHIN
    if event_code == EventCode.DISCHARGE_NOTICE:
        return end_of_day(facts.stay_ended_at or sent_at)
    return None


def end_of_day(at: datetime) -> datetime:
    """Midnight after ``at``, Swedish time (the last moment of that calendar day)."""
    day = at.astimezone(STOCKHOLM).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=STOCKHOLM)


def stage(started: datetime, due: datetime, now: datetime) -> Stage:
    if now >= due:
        return Stage.BREACHED
    span = (due - started).total_seconds()
    gone = (now - started).total_seconds() / span if span > 0 else 1.0
    if gone >= 0.8:
        return Stage.LATE
    if gone >= 0.5:
        return Stage.HALF
    return Stage.ON_TRACK


def next_stage_at(started: datetime, due: datetime, current: Stage) -> datetime | None:
    """When the next stage begins (for scheduling the next check); None after a breach."""
    marks = {Stage.ON_TRACK: 0.5, Stage.HALF: 0.8, Stage.LATE: 1.0}
    if current is Stage.BREACHED:
        return None
    return started + (due - started) * marks[current]


def add_days(start: datetime, days: int, *, working: bool) -> datetime:
    """``days`` calendar days later, or ``days`` working days later (same time of day)."""
    if not working:
        return start + timedelta(days=days)
    return add_working_days(start, days)


def add_working_days(start: datetime, days: int) -> datetime:
    local = start.astimezone(STOCKHOLM)
    day = local.date()
    left = days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in swedish_holidays(day.year)


def swedish_holidays(year: int) -> frozenset[date]:
    """Public holidays (allmänna helgdagar) plus midsummer and Christmas Eve and New Year's
    Eve, which are treated as holidays in practice."""
    easter = _easter(year)
    midsummer_eve = next(date(year, 6, d) for d in range(19, 26) if date(year, 6, d).weekday() == 4)
    all_saints = next(
        d for d in (date(year, 10, 31) + timedelta(days=i) for i in range(7)) if d.weekday() == 5
    )
    return frozenset(
        {
            date(year, 1, 1),  # nyårsdagen
            date(year, 1, 6),  # trettondedag jul
            easter - timedelta(days=2),  # långfredagen
            easter,  # påskdagen
            easter + timedelta(days=1),  # annandag påsk
            date(year, 5, 1),  # första maj
            easter + timedelta(days=39),  # Kristi himmelsfärdsdag
            easter + timedelta(days=49),  # pingstdagen
            date(year, 6, 6),  # nationaldagen
            midsummer_eve,  # midsommarafton
            midsummer_eve + timedelta(days=1),  # midsommardagen
            all_saints,  # alla helgons dag
            date(year, 12, 24),  # julafton
            date(year, 12, 25),  # juldagen
            date(year, 12, 26),  # annandag jul
            date(year, 12, 31),  # nyårsafton
        }
    )


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)
