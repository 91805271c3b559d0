"""The payment clock's report (betalningsansvar): the days each municipality pays for, per
month, with the evidence behind every day, from the router's own records. The rule is
:mod:`services.router.statistics.payment_clock`'s (pure); this module fetches the stays and
assembles the report.

A stay's evidence comes from three rows: the episode (its latest ready notice, the
withdrawal, the interruption, the death, the discharge), the ready notice's delivery to the
municipality (its ``sent_at``: when the router sent it) and the admission notice's delivery
to the same destination (its ``confirmed_at`` and the receipt's ``receiver_record_id`` and
``receiver_recorded_at``).

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
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.envelope import System
from services.router.routing.episodes import EpisodeState, episode
from services.router.routing.swedish_calendar import STOCKHOLM, local_date
from services.router.routing.tables import care_unit, delivery
from services.router.statistics.payment_clock import (
    PaymentAgreement,
    PaymentAgreements,
    StayEvidence,
    clock_runs,
    first_payable_day,
    payable_days,
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
    """One stay: its evidence, its agreement, and its payable days inside the report."""

    stay: StayEvidence
    agreement: PaymentAgreement
    first_payable: date | None  # None: the clock does not run
    days: tuple[date, ...]


@dataclass(frozen=True, slots=True)
class MonthTotal:
    municipality: str
    month: str  # YYYY-MM
    days: int
    stays: int


@dataclass(frozen=True, slots=True)
class PaymentReport:
    since: date
    until: date
    generated_at: datetime
    months: tuple[MonthTotal, ...]
    stays: tuple[StayDays, ...]  # every stay whose clock was looked at, payable or not


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
    """Each stay's payable days between ``since`` and ``until`` (inclusive), and their sum
    per municipality and month. Pure."""
    today = local_date(now)
    found: list[StayDays] = []
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for stay in stays:
        agreement = agreements.of(stay.municipality)
        days = tuple(d for d in payable_days(stay, agreement, today=today) if since <= d <= until)
        first = (
            first_payable_day(stay.ready_sent_at, agreement)
            if stay.ready_sent_at is not None and clock_runs(stay)
            else None
        )
        found.append(StayDays(stay, agreement, first, days))
        for month in sorted({d.strftime("%Y-%m") for d in days}):
            counts = totals[stay.municipality, month]
            counts[0] += sum(1 for d in days if d.strftime("%Y-%m") == month)
            counts[1] += 1
    return PaymentReport(
        since=since,
        until=until,
        generated_at=now,
        months=tuple(
            MonthTotal(municipality, month, days, count)
            for (municipality, month), (days, count) in sorted(totals.items())
        ),
        stays=tuple(sorted(found, key=lambda s: (s.stay.municipality, s.stay.stay_id))),
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
    ready = delivery.alias("ready_delivery")
    admission = delivery.alias("admission_delivery")
    unit = care_unit.alias("ready_unit")
    rows = (
        await session.execute(
            select(
                episode.c.id,
                episode.c.pseudonym,
                episode.c.discharged_at,
                episode.c.ready_withdrawn_at,
                episode.c.interrupted_at,
                episode.c.deceased_at,
                ready.c.destination,
                ready.c.sent_at,
                unit.c.municipality.label("unit_municipality"),
                admission.c.confirmed_at,
                admission.c.receiver_recorded_at,
                admission.c.receiver_record_id,
            )
            .join(
                ready,
                (ready.c.message_id == episode.c.ready_message_id)
                & ready.c.destination.in_(directory.destinations),
            )
            .outerjoin(unit, unit.c.hsa_id == ready.c.receiver_unit_hsa)
            .outerjoin(
                admission,
                (admission.c.message_id == episode.c.admission_message_id)
                & (admission.c.destination == ready.c.destination),
            )
            .where(
                episode.c.state != EpisodeState.CANCELLED.value,
                ready.c.sent_at.is_not(None),
                ready.c.sent_at < end,
                or_(episode.c.discharged_at.is_(None), episode.c.discharged_at >= start),
                *(
                    or_(stop.is_(None), stop >= start)
                    for stop in (
                        episode.c.ready_withdrawn_at,
                        episode.c.interrupted_at,
                        episode.c.deceased_at,
                    )
                ),
            )
            .order_by(episode.c.id)
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
            withdrawn_at=r.ready_withdrawn_at,
            interrupted_at=r.interrupted_at,
            deceased_at=r.deceased_at,
        )
        for r in rows
        for municipality in [r.unit_municipality or directory.municipality_of(r.destination)]
        if municipality is not None
    ]
    return build_payment_report(stays, agreements, since=since, until=until, now=now)
