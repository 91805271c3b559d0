"""Legal deadlines of care-transition messages (Lag 2017:612) and the stages at which the
router warns before a breach. Pure: times in, times out; the Swedish calendar is computed.

| family | legal deadline |
|---|---|
| admission notice (inskrivningsmeddelande) | 24 h after admission (Encounter.period.start) |
| discharge notice (utskrivningsmeddelande) | the end of the discharge day, Swedish time |
| SIP invitation (kallelse till SIP) | 3 days after ready for discharge (episode rule) |

A deadline counted in *working days* (where a regional agreement says so) skips Saturdays,
Sundays and Swedish public holidays (:func:`add_working_days`;
:mod:`services.router.routing.swedish_calendar`).
"""

from __future__ import annotations

import enum
from datetime import datetime, time, timedelta

from services.messaging.care_facts import CareFacts
from services.messaging.envelope import EventCode

# the calendar, re-exported where it was before it had a module of its own
from services.router.routing.swedish_calendar import STOCKHOLM as STOCKHOLM
from services.router.routing.swedish_calendar import is_working_day as is_working_day
from services.router.routing.swedish_calendar import swedish_holidays as swedish_holidays

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
