"""The payment clock's report (betalningsansvar): the days each municipality pays for, per
month, with the evidence behind every day, from the router's own records. The rule is
:mod:`services.router.statistics.payment_clock`'s (pure); this module fetches the stays and
assembles the report.

The evidence is per readiness period (``readiness_period``,
:mod:`services.router.routing.readiness_periods`): a stay that was ready, interrupted or
withdrawn, and ready again has one :class:`StayDays` per ready notice, and the report sums
the payable days of all of them (a day once per stay). A period's evidence comes from four
rows: the period (its ready notice and what ended it: a withdrawal, an interruption, a later
ready notice, with the message that did), the episode (the death, the discharge), the ready
notice's delivery to the municipality (its ``sent_at``: when the router sent it) and the
admission notice's delivery to the same destination (its ``confirmed_at`` and the receipt's
``receiver_record_id`` and ``receiver_recorded_at``).

The municipality is the one the ready notice was delivered to: the municipality (kommunkod)
of the unit the delivery was addressed to (``delivery.receiver_unit_hsa`` in the unit
directory, issue 20). A delivery that names no unit (routed before addressing by unit) falls
back to :class:`MunicipalityDirectory`, which maps a destination to the one configured
municipality (``ROUTER_PAYMENT_MUNICIPALITY``, Gotland 0980 by default).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.envelope import System
from services.router.routing.episodes import EpisodeState, episode
from services.router.routing.readiness_periods import PeriodEnd, readiness_period
from services.router.routing.swedish_calendar import STOCKHOLM, local_date
from services.router.routing.tables import care_unit, delivery
from services.router.statistics.payment_clock import (
    PaymentAgreement,
    PaymentAgreements,
    StayEvidence,
    clock_runs,
    first_payable_day,
    payable_days_by_period,
)
from services.router.statistics.periods import InvalidRange

GOTLAND = "0980"
MAX_DAYS = 400 * 7  # at most as long as the longest statistics report (400 weeks)


@dataclass(frozen=True, slots=True)
class MunicipalityDirectory:
    """Which municipality a delivery's destination (a subscription id) serves."""

    by_destination: Mapping[str, str] = field(
        default_factory=lambda: {System.TRESERVA.value: GOTLAND}
    )

    def municipality_of(self, destination: str) -> str | None:
        return self.by_destination.get(destination)

    @property
    def destinations(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_destination))


@dataclass(frozen=True, slots=True)
class StayDays:
    """One readiness period of a stay: its evidence, its agreement, and its payable days
    inside the report (those no earlier period of the stay pays)."""

    stay: StayEvidence
    agreement: PaymentAgreement
    first_payable: date | None  # None: the clock does not run
    days: tuple[date, ...]


@dataclass(frozen=True, slots=True)
class MonthTotal:
    municipality: str
    month: str  # YYYY-MM
    days: int
    stays: int  # stays, not periods: a stay ready twice in a month is one


@dataclass(frozen=True, slots=True)
class PaymentReport:
    since: date
    until: date
    generated_at: datetime
    months: tuple[MonthTotal, ...]
    stays: tuple[StayDays, ...]  # every period whose clock was looked at, payable or not


def default_range(today: date) -> tuple[date, date]:
    """The current month up to today."""
    return today.replace(day=1), today


def build_payment_report(
    stays: Iterable[StayEvidence],
    agreements: PaymentAgreements,
    *,
    since: date,
    until: date,
    now: datetime,
) -> PaymentReport:
    """Each readiness period's payable days between ``since`` and ``until`` (inclusive),
    and their sum per municipality and month. ``stays``: one evidence per period; a day two
    periods of a stay would pay is the earlier period's. Pure."""
    today = local_date(now)
    ordered = sorted(stays, key=_sent_order)
    periods = [(stay, agreements.of(stay.municipality)) for stay in ordered]
    found: list[StayDays] = []
    day_count: dict[tuple[str, str], int] = defaultdict(int)
    stays_in: dict[tuple[str, str], set[int]] = defaultdict(set)
    for (stay, agreement), all_days in zip(
        periods, payable_days_by_period(periods, today=today), strict=True
    ):
        days = tuple(d for d in all_days if since <= d <= until)
        first = (
            first_payable_day(stay.ready_sent_at, agreement)
            if stay.ready_sent_at is not None and clock_runs(stay)
            else None
        )
        found.append(StayDays(stay, agreement, first, days))
        for d in days:
            key = (stay.municipality, d.strftime("%Y-%m"))
            day_count[key] += 1
            stays_in[key].add(stay.stay_id)
    return PaymentReport(
        since=since,
        until=until,
        generated_at=now,
        months=tuple(
            MonthTotal(municipality, month, day_count[municipality, month], len(ids))
            for (municipality, month), ids in sorted(stays_in.items())
        ),
        stays=tuple(sorted(found, key=lambda s: (s.stay.municipality, s.stay.stay_id))),
    )


def _sent_order(stay: StayEvidence) -> tuple[int, datetime, int]:
    """A stay's periods in the order their ready notices were sent (an unsent one last)."""
    sent = stay.ready_sent_at
    return (
        stay.stay_id,
        sent if sent is not None else datetime.max.replace(tzinfo=UTC),
        stay.period_id or 0,
    )


async def payment_report(
    session: AsyncSession,
    *,
    agreements: PaymentAgreements,
    directory: MunicipalityDirectory,
    since: date | None = None,
    until: date | None = None,
    now: datetime,
) -> PaymentReport:
    """The payment clock from ``since`` to ``until`` (Stockholm days, both inclusive;
    default: this month up to today). Raises
    :class:`~services.router.statistics.periods.InvalidRange`."""
    first, last = default_range(local_date(now))
    since = since or (until.replace(day=1) if until is not None else first)
    until = until or max(since, last)
    if since > until:
        raise InvalidRange("since is after until")
    if (until - since).days + 1 > MAX_DAYS:
        raise InvalidRange(f"a payment report covers at most {MAX_DAYS} days")
    start = datetime.combine(since, time(0), tzinfo=STOCKHOLM)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=STOCKHOLM)
    period = readiness_period
    ready = delivery.alias("ready_delivery")
    admission = delivery.alias("admission_delivery")
    unit = care_unit.alias("ready_unit")
    rows = (
        await session.execute(
            select(
                episode.c.id,
                episode.c.pseudonym,
                episode.c.discharged_at,
                episode.c.deceased_at,
                period.c.id.label("period_id"),
                period.c.ready_message_id,
                period.c.ended_at,
                period.c.ended_by,
                period.c.ended_by_message_id,
                ready.c.destination,
                ready.c.sent_at,
                unit.c.municipality.label("unit_municipality"),
                admission.c.confirmed_at,
                admission.c.receiver_recorded_at,
                admission.c.receiver_record_id,
            )
            .select_from(period)
            .join(episode, episode.c.id == period.c.episode_id)
            .join(
                ready,
                (ready.c.message_id == period.c.ready_message_id)
                & ready.c.destination.in_(directory.destinations),
            )
            .outerjoin(unit, unit.c.hsa_id == ready.c.receiver_unit_hsa)
            .outerjoin(
                admission,
                (
                    admission.c.message_id
                    == func.coalesce(period.c.admission_message_id, episode.c.admission_message_id)
                )
                & (admission.c.destination == ready.c.destination),
            )
            .where(
                episode.c.state != EpisodeState.CANCELLED.value,
                or_(period.c.ended_by.is_(None), period.c.ended_by != PeriodEnd.CANCELLED.value),
                ready.c.sent_at.is_not(None),
                ready.c.sent_at < end,
                *(
                    or_(stop.is_(None), stop >= start)
                    for stop in (
                        period.c.ended_at,
                        episode.c.discharged_at,
                        episode.c.deceased_at,
                    )
                ),
            )
            .order_by(episode.c.id, period.c.id)
        )
    ).all()
    stays = [
        StayEvidence(
            stay_id=int(r.id),
            pseudonym=r.pseudonym,
            municipality=municipality,
            ready_sent_at=r.sent_at,
            admission_confirmed_at=r.confirmed_at,
            admission_received_at=r.receiver_recorded_at,
            admission_record_id=r.receiver_record_id,
            discharged_at=r.discharged_at,
            withdrawn_at=_ended(r, PeriodEnd.WITHDRAWN),
            interrupted_at=_ended(r, PeriodEnd.INTERRUPTED),
            deceased_at=r.deceased_at,
            period_id=int(r.period_id),
            ready_message_id=r.ready_message_id,
            superseded_at=_ended(r, PeriodEnd.SUPERSEDED),
            ended_by_message_id=r.ended_by_message_id,
        )
        for r in rows
        for municipality in [r.unit_municipality or directory.municipality_of(r.destination)]
        if municipality is not None
    ]
    return build_payment_report(stays, agreements, since=since, until=until, now=now)


def _ended(row: Row[Any], kind: PeriodEnd) -> datetime | None:
    """When the period ended, if ``kind`` ended it."""
    ended_at: datetime | None = row.ended_at
    return ended_at if row.ended_by == kind.value else None
