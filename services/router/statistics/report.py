"""Statistics for managers (issue 6): one row per Stockholm calendar day or ISO week with
every figure, from the router's own records, so the hospital and the municipality can read
the same numbers at last.

What each figure counts, exactly:

* **notices**: messages the broker accepted, per family (``message.event_code``), in the
  period of ``message.received_at``. Receipts and delivery outcomes are not notices.
* **on-time share** (lagstadgad tid): deliveries with a legal deadline
  (``delivery.legal_due_at``: admission notices 24 h after the admission, discharge notices
  the end of the discharge day), counted in the period their *deadline* falls in, and only
  once the outcome is known: confirmed (``confirmed_at`` set), or the deadline passed
  (``legal_due_at <= now``). On time means ``confirmed_at <= legal_due_at``. A delivery
  still unconfirmed before its deadline is not counted yet but shown as ``legal_pending``;
  one confirmed after its deadline, or never, is late. Every destination counts.
* **admission → confirmed**: for admission-notice deliveries (``admission-notice`` only, not
  its updates), ``confirmed_at - legal_from``; ``legal_from`` is the stay's start
  (Encounter.period.start, never later than the broker received it). Counted in the period
  of the admission, per destination (Treserva always listed), only confirmed deliveries;
  the median is in seconds, None when none was confirmed.
* **same-day discharge**: stays (``episode``) discharged in the period (``discharged_at``)
  that had been declared ready for discharge (utskrivningsklar, ``ready_at``); the share
  discharged on the Stockholm calendar day they were declared ready. A stay discharged
  with no ready notice the broker saw is left out of the share and counted as
  ``discharged_without_ready``.
* **SIP**: SIP messages (samordnad individuell plan: invitation, created, updated,
  completed), both directions, in the period of ``received_at``.

Shares and medians are None where there is nothing to divide: never a 0 % that means "no
data". Counts are 0 when nothing happened.

The queries fetch only the columns needed inside the range's UTC window; bucketing is done
in Python (:mod:`services.router.statistics.periods`) so it is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.envelope import EventCode, System
from services.router.routing.episodes import episode
from services.router.routing.tables import delivery, message
from services.router.statistics.periods import (
    Period,
    Span,
    default_range,
    key_of,
    local_date,
    median,
    spans,
    utc_window,
)

NOTICE_FAMILIES: tuple[str, ...] = tuple(
    e.value for e in EventCode if e not in (EventCode.DELIVERY_OUTCOME, EventCode.RECEIPT)
)
SIP_FAMILIES: frozenset[str] = frozenset(
    {
        EventCode.SIP_INVITATION,
        EventCode.SIP_CREATED,
        EventCode.SIP_UPDATED,
        EventCode.SIP_COMPLETED,
    }
)
ALWAYS_REPORTED = (System.TRESERVA.value,)


@dataclass(frozen=True, slots=True)
class Share:
    """``part`` of ``whole``; the ratio is None when the whole is 0."""

    part: int = 0
    whole: int = 0

    @property
    def ratio(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True, slots=True)
class Latency:
    """Admission → confirmed for one destination in one period."""

    confirmed: int = 0
    median_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """Every figure of one period."""

    span: Span
    notices: dict[str, int]  # every NOTICE_FAMILIES code, 0 included
    on_time: Share  # confirmed by the legal deadline / deliveries due with a known outcome
    legal_pending: int  # due in the period, deadline not passed, not confirmed yet
    admission_to_confirmed: dict[str, Latency]  # destination → latency
    same_day_discharge: Share  # discharged on the ready day / discharged after a ready notice
    discharged_without_ready: int
    sip: int

    @property
    def key(self) -> str:
        return self.span.key

    @property
    def notices_total(self) -> int:
        return sum(self.notices.values())


@dataclass(frozen=True, slots=True)
class StatisticsReport:
    period: Period
    since: date  # first day of the first period
    until: date  # last day of the last period
    generated_at: datetime
    destinations: tuple[str, ...]  # the keys of every admission_to_confirmed
    periods: tuple[PeriodFigures, ...]
    families: tuple[str, ...] = field(default=NOTICE_FAMILIES)


# --- rows as fetched ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    event_code: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LegalOutcome:
    due_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AdmissionConfirmed:
    destination: str
    admitted_at: datetime
    confirmed_at: datetime


@dataclass(frozen=True, slots=True)
class Discharge:
    ready_at: datetime | None
    discharged_at: datetime


# --- pure assembly ---------------------------------------------------------------------------


def resolve_range(
    period: Period, since: date | None, until: date | None, today: date
) -> list[Span]:
    """The periods asked for; a missing bound is filled from the default range (the last 30
    days or 12 weeks). Raises :class:`~services.router.statistics.periods.InvalidRange`."""
    if since is None:
        since = default_range(period, until or today)[0]
    return spans(period, since, until or max(since, today))


def build_report(
    period: Period,
    periods: Sequence[Span],
    *,
    now: datetime,
    arrivals: Iterable[Arrival] = (),
    legal: Iterable[LegalOutcome] = (),
    admissions: Iterable[AdmissionConfirmed] = (),
    discharges: Iterable[Discharge] = (),
) -> StatisticsReport:
    """Bucket fetched rows into the periods; rows outside them are ignored."""
    notices: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(NOTICE_FAMILIES, 0))
    for a in arrivals:
        if a.event_code in NOTICE_FAMILIES:
            notices[key_of(period, a.received_at)][a.event_code] += 1

    on_time: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # on time, known, pending
    for d in legal:
        counts = on_time[key_of(period, d.due_at)]
        if d.confirmed_at is None and d.due_at > now:
            counts[2] += 1
            continue
        counts[1] += 1
        counts[0] += d.confirmed_at is not None and d.confirmed_at <= d.due_at

    waits: dict[tuple[str, str], list[float]] = defaultdict(list)
    for c in admissions:
        seconds = (c.confirmed_at - c.admitted_at).total_seconds()
        waits[key_of(period, c.admitted_at), c.destination].append(seconds)
    destinations = (*ALWAYS_REPORTED, *sorted({d for _, d in waits} - set(ALWAYS_REPORTED)))

    stays: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # same day, ready, no ready
    for s in discharges:
        counts = stays[key_of(period, s.discharged_at)]
        if s.ready_at is None:
            counts[2] += 1
            continue
        counts[1] += 1
        counts[0] += local_date(s.ready_at) == local_date(s.discharged_at)

    rows = []
    for span in periods:
        found = notices[span.key]
        in_time, known, pending = on_time[span.key]
        same, ready, no_ready = stays[span.key]
        rows.append(
            PeriodFigures(
                span=span,
                notices=found,
                on_time=Share(in_time, known),
                legal_pending=pending,
                admission_to_confirmed={
                    dest: Latency(len(w), median(w))
                    for dest in destinations
                    for w in [waits.get((span.key, dest), [])]
                },
                same_day_discharge=Share(same, ready),
                discharged_without_ready=no_ready,
                sip=sum(n for code, n in found.items() if code in SIP_FAMILIES),
            )
        )
    return StatisticsReport(
        period=period,
        since=periods[0].first_day,
        until=periods[-1].last_day,
        generated_at=now,
        destinations=destinations,
        periods=tuple(rows),
    )


# --- queries ---------------------------------------------------------------------------------


async def statistics(
    session: AsyncSession,
    *,
    period: Period,
    since: date | None = None,
    until: date | None = None,
    now: datetime,
) -> StatisticsReport:
    """Every figure per day or ISO week from ``since`` to ``until`` (Stockholm calendar days,
    both inclusive; defaults: the last 30 days or 12 weeks up to ``now``). Raises
    :class:`~services.router.statistics.periods.InvalidRange`."""
    periods = resolve_range(period, since, until, local_date(now))
    start, end = utc_window(periods)
    arrivals = (
        await session.execute(
            select(message.c.event_code, message.c.received_at).where(
                message.c.received_at >= start,
                message.c.received_at < end,
                message.c.event_code.in_(NOTICE_FAMILIES),
            )
        )
    ).all()
    legal = (
        await session.execute(
            select(delivery.c.legal_due_at, delivery.c.confirmed_at).where(
                delivery.c.legal_due_at >= start, delivery.c.legal_due_at < end
            )
        )
    ).all()
    admissions = (
        await session.execute(
            select(delivery.c.destination, delivery.c.legal_from, delivery.c.confirmed_at)
            .join(message, message.c.id == delivery.c.message_id)
            .where(
                message.c.event_code == EventCode.ADMISSION_NOTICE.value,
                delivery.c.legal_from >= start,
                delivery.c.legal_from < end,
                delivery.c.confirmed_at.is_not(None),
            )
        )
    ).all()
    discharges = (
        await session.execute(
            select(episode.c.ready_at, episode.c.discharged_at).where(
                episode.c.discharged_at >= start, episode.c.discharged_at < end
            )
        )
    ).all()
    return build_report(
        period,
        periods,
        now=now,
        arrivals=(Arrival(r.event_code, r.received_at) for r in arrivals),
        legal=(LegalOutcome(r.legal_due_at, r.confirmed_at) for r in legal),
        admissions=(
            AdmissionConfirmed(r.destination, r.legal_from, r.confirmed_at) for r in admissions
        ),
        discharges=(Discharge(r.ready_at, r.discharged_at) for r in discharges),
    )
