"""Reporting periods on the Stockholm calendar: days and ISO weeks. Pure: no I/O, no clock.

A period is named by its key: ``2026-03-29`` for a day, ``2026-W13`` for an ISO week (Monday
to Sunday, the week that holds the year's first Thursday is week 1). An instant belongs to
the period of its Stockholm *local* date, so 23:30 UTC on a winter Sunday is already Monday,
and a DST day (23 or 25 hours) is still one day.

::

    ValueError
     └── InvalidRange        since after until, or more periods than a report may hold
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from services.router.routing.deadlines import STOCKHOLM

MAX_PERIODS = 400  # a bound on the range a report may cover: 400 days or 400 weeks
DEFAULT_DAYS = 30
DEFAULT_WEEKS = 12


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"


class InvalidRange(ValueError):
    """A reporting range that cannot be reported: since after until, or too long."""


@dataclass(frozen=True, slots=True)
class Span:
    """One period: its key and its first and last Stockholm calendar day (inclusive)."""

    key: str
    first_day: date
    last_day: date


def local_date(at: datetime) -> date:
    """The Stockholm calendar day of an aware instant."""
    return at.astimezone(STOCKHOLM).date()


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def period_start(period: Period, day: date) -> date:
    """The first day of the period that holds ``day`` (itself, or that week's Monday)."""
    return day if period is Period.DAY else day - timedelta(days=day.weekday())


def period_key(period: Period, day: date) -> str:
    return day.isoformat() if period is Period.DAY else week_key(day)


def key_of(period: Period, at: datetime) -> str:
    """The key of the period an instant falls in, on the Stockholm calendar."""
    return period_key(period, local_date(at))


def _step(period: Period) -> timedelta:
    return timedelta(days=1 if period is Period.DAY else 7)


def default_range(period: Period, today: date) -> tuple[date, date]:
    """The last 30 days, or the last 12 weeks, up to and including ``today``'s period."""
    count = DEFAULT_DAYS if period is Period.DAY else DEFAULT_WEEKS
    last = period_start(period, today)
    return last - _step(period) * (count - 1), today


def spans(period: Period, since: date, until: date) -> list[Span]:
    """Every period from the one holding ``since`` to the one holding ``until``, in order
    (empty ones too). Raises :class:`InvalidRange`."""
    if since > until:
        raise InvalidRange("since is after until")
    first, last = period_start(period, since), period_start(period, until)
    count = (last - first) // _step(period) + 1
    if count > MAX_PERIODS:
        raise InvalidRange(
            f"{count} {period.value}s asked for; a report holds at most {MAX_PERIODS}"
        )
    length = _step(period) - timedelta(days=1)
    return [
        Span(period_key(period, start), start, start + length)
        for start in (first + _step(period) * i for i in range(count))
    ]


def utc_window(periods: Sequence[Span]) -> tuple[datetime, datetime]:
    """The periods as one half-open UTC interval: from local midnight of the first day to
    local midnight after the last (queries filter on it)."""
    start = datetime.combine(periods[0].first_day, time(0), tzinfo=STOCKHOLM)
    end = datetime.combine(periods[-1].last_day + timedelta(days=1), time(0), tzinfo=STOCKHOLM)
    return start.astimezone(UTC), end.astimezone(UTC)


def median(values: Iterable[float]) -> float | None:
    """The median, the mean of the middle two for an even count; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
