"""The payment clock (betalningsansvar, Lag 2017:612 5 kap.): the days a municipality pays
for a hospital bed because its patient stays after being ready for discharge. Pure: no
clock, no I/O; instants in, Stockholm calendar days out.

The rule, as computed by :func:`payable_days`:

* The clock starts from the ready-for-discharge notice (utskrivningsklar) as the region
  **sent** it to the municipality: the router's sent time of that delivery
  (``delivery.sent_at``), never the physician's judgement (``judgedAt``) nor the time the
  hospital wrote it.
* It starts only if the municipality **received** the admission notice (inskrivnings-
  meddelande) of the same stay: the municipality's receipt (kvittens) confirmed that
  delivery. No receipt, no clock: the evidence would not hold.
* It runs from the day after the notice was sent. The first ``days`` counted days are the
  municipality's (the law: 3 calendar days; a regional agreement may say otherwise and may
  count working days, :mod:`services.router.routing.swedish_calendar`). Every calendar day
  after them is a payable bed-day, weekends and holidays included: the bed is occupied
  whatever the day. Sent on Monday with 3 calendar days: Tuesday, Wednesday and Thursday
  are counted, Friday is the first payable day.
* It stops at the discharge (the discharge day itself is not payable: a bed-day is a night
  in the bed, and the patient leaves that day) or at a withdrawal (återtag: the patient is
  no longer ready, the withdrawal day is not payable). A stay still in hospital is counted
  up to the day before ``today`` (a day is payable once it has passed).
* It stops at an interruption of the process (avbrott, e.g. the patient became sicker): the
  patient is no longer ready, as at a withdrawal, and the interruption day is not payable.
  A later ready notice is a new readiness and starts a new clock (the law asks for a new
  utskrivningsklar notice). Each readiness is its own period of evidence (a
  :class:`StayEvidence` each, :mod:`services.router.routing.readiness_periods`): the days
  one period made payable stay payable when a later one starts, and a later ready notice
  while still ready ends the earlier period the same way (superseded). A stop in a period's
  evidence is that period's own: one that came before the notice was even sent leaves
  nothing payable.
* A stay's periods are summed by :func:`payable_days_by_period`: a day is paid once, by the
  first period (in the order the notices were sent) that makes it payable, should periods
  touch or overlap.
* It stops at the patient's death. The municipality pays from the day after its days until
  the patient leaves the hospital, and a death is the patient leaving it: the days before
  the day of death are payable, the day of death itself is not, exactly as the discharge
  day is not (the clock's end is exclusive, whichever of discharge, withdrawal,
  interruption or death ends it first).

Days are Stockholm calendar days (a DST day of 23 or 25 hours is one day).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field

from services.router.routing.swedish_calendar import STOCKHOLM, is_working_day, local_date

LAW_DAYS = 3  # 5 kap. 3 §: three calendar days unless a regional agreement says otherwise


class DayCount(enum.StrEnum):
    """How an agreement counts the municipality's days."""

    CALENDAR = "calendar"  # kalenderdagar (the law)
    WORKING = "working"  # vardagar: weekdays that are no holiday nor eve treated as one


class PaymentAgreement(BaseModel):
    """The days the municipality has before it pays, and how they are counted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int = Field(default=LAW_DAYS, ge=0, le=60)
    kind: DayCount = DayCount.CALENDAR


LAW = PaymentAgreement()


@dataclass(frozen=True, slots=True)
class PaymentAgreements:
    """The agreement of each municipality (by its four-digit code, e.g. ``0980`` Gotland);
    a municipality without one follows ``default`` (the law unless configured)."""

    by_municipality: Mapping[str, PaymentAgreement] = field(default_factory=dict)
    default: PaymentAgreement = LAW

    def of(self, municipality: str) -> PaymentAgreement:
        return self.by_municipality.get(municipality, self.default)


@dataclass(frozen=True, slots=True)
class StayEvidence:
    """What one stay's payment clock is computed from; every field is evidence an invoice
    check can ask for. The patient is a pseudonym, never a personnummer."""

    stay_id: int
    pseudonym: str
    municipality: str
    ready_sent_at: datetime | None  # the router's sent time of the ready notice to it
    admission_confirmed_at: datetime | None  # the router had the admission receipt
    admission_received_at: datetime | None  # the receiving journal's own time (receipt)
    admission_record_id: str | None  # the receiving journal's own record id (receipt)
    discharged_at: datetime | None
    withdrawn_at: datetime | None = None  # återtag of this readiness
    interrupted_at: datetime | None = None  # avbrott of this readiness's process
    deceased_at: datetime | None = None  # the patient died during the stay
    # the readiness period: its ready notice, and the message that ended it
    period_id: int | None = None
    ready_message_id: str | None = None
    superseded_at: datetime | None = None  # a later ready notice of the stay
    ended_by_message_id: str | None = None


def first_payable_day(ready_sent_at: datetime, agreement: PaymentAgreement) -> date:
    """The first day the municipality pays for: the day after its ``days`` counted days,
    which run from the day after the notice was sent."""
    day = local_date(ready_sent_at)
    counted = 0
    while counted < agreement.days:
        day += timedelta(days=1)
        if agreement.kind is DayCount.CALENDAR or is_working_day(day):
            counted += 1
    return day + timedelta(days=1)


def working_day_deadline(ready_sent_at: datetime, agreement: PaymentAgreement) -> datetime | None:
    """When the municipality's days end under an agreement counting *working* days: the
    start (Stockholm midnight) of the first payable day. None under calendar days: the law's
    own terms, with no working-day deadline to show."""
    if agreement.kind is not DayCount.WORKING:
        return None
    first = first_payable_day(ready_sent_at, agreement)
    return datetime.combine(first, time(0), tzinfo=STOCKHOLM)


def clock_runs(stay: StayEvidence) -> bool:
    """The clock runs only for a ready notice that was sent, about a stay whose admission
    notice the municipality confirmed by receipt."""
    return stay.ready_sent_at is not None and stay.admission_confirmed_at is not None


def payable_days(stay: StayEvidence, agreement: PaymentAgreement, *, today: date) -> list[date]:
    """The stay's payable bed-days, in order (see the module docstring); empty when the
    clock does not run."""
    if stay.ready_sent_at is None or not clock_runs(stay):
        return []
    first = first_payable_day(stay.ready_sent_at, agreement)
    stops = (
        stay.discharged_at,
        stay.withdrawn_at,
        stay.interrupted_at,
        stay.superseded_at,
        stay.deceased_at,
    )
    end = min([today, *(local_date(stop) for stop in stops if stop is not None)])  # exclusive
    return [first + timedelta(days=i) for i in range((end - first).days)]


def payable_days_by_period(
    periods: Sequence[tuple[StayEvidence, PaymentAgreement]], *, today: date
) -> list[tuple[date, ...]]:
    """Each period's payable days, in the order given, a day counted only by the first
    period of its stay that makes it payable (periods that touch or overlap pay a day once).
    Give a stay's periods in the order their notices were sent."""
    paid: dict[int, set[date]] = {}
    found: list[tuple[date, ...]] = []
    for stay, agreement in periods:
        claimed = paid.setdefault(stay.stay_id, set())
        days = tuple(d for d in payable_days(stay, agreement, today=today) if d not in claimed)
        claimed.update(days)
        found.append(days)
    return found
