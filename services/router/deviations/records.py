"""Deviation reports (*avvikelse i samverkan*): every failed or late notification between the
two sides becomes one counted record, so deviations that were reported on paper, if at all,
can be counted per month and exported to a deviation system such as Flexite
(:mod:`services.router.deviations.export`).

The incident rules call :func:`record_deviation` when a notification fails or is late and
:func:`close_deviation` when the message finally gets through; a closed deviation stays
counted. A confirmation after the legal deadline is recorded by the confirmation itself
(:mod:`services.router.deviations.late_confirmations`). SQL lives in the ``async``
functions at the end; everything above them is pure.

A deviation carries no patient identity: at most the keyed pseudonym, the message id and the
HSA-ids of the care units. :func:`record_deviation` refuses anything that looks like a
personnummer or samordningsnummer::

    ValueError
     ├── DeviationRejected   a field is malformed or would carry patient identity
     └── InvalidMonth        a month is not ``YYYY-MM`` (2000-2099)
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import serialize, utcnow
from services.messaging.envelope import System
from services.router.routing.tables import deviation

STOCKHOLM = ZoneInfo("Europe/Stockholm")
"""Months are counted in Swedish local time: a deviation at 23:30 UTC on 31 October is
a November deviation."""


class DeviationKind(enum.StrEnum):
    """The documented failure classes. The column is an open string: a new rule may record
    a new kind without a migration; exports then show the code as its text."""

    NOT_CONFIRMED_IN_TIME = "not_confirmed_in_time"  # accepted, then no receipt in time
    DELIVERY_FAILED = "delivery_failed"  # dead letter: fatal error or attempts spent
    LEGAL_DEADLINE_BREACHED = "legal_deadline_breached"  # Lag 2017:612 deadline passed
    EPISODE_GAP = "episode_gap"  # e.g. discharged with no medication list


KIND_TEXT: dict[str, str] = {
    DeviationKind.NOT_CONFIRMED_IN_TIME: "Ej bekräftat i tid",
    DeviationKind.DELIVERY_FAILED: "Leverans misslyckades",
    DeviationKind.LEGAL_DEADLINE_BREACHED: "Lagstadgad tidsfrist överskriden",
    DeviationKind.EPISODE_GAP: "Information saknas i vårdförloppet",
}


class Direction(enum.StrEnum):
    """Between which sides a notification went. TakeCare is the region's journal (hospital
    and primary care), Treserva the municipality's."""

    HOSPITAL_TO_MUNICIPALITY = "hospital-to-municipality"
    HOSPITAL_TO_PRIMARY_CARE = "hospital-to-primary-care"
    MUNICIPALITY_TO_HOSPITAL = "municipality-to-hospital"
    OTHER = "other"  # e.g. a webhook subscriber


DIRECTION_TEXT: dict[Direction, str] = {
    Direction.HOSPITAL_TO_MUNICIPALITY: "Sjukhus till kommun",
    Direction.HOSPITAL_TO_PRIMARY_CARE: "Sjukhus till primärvård",
    Direction.MUNICIPALITY_TO_HOSPITAL: "Kommun till sjukhus",
    Direction.OTHER: "Övrigt",
}

_DIRECTIONS: dict[tuple[str, str], Direction] = {
    (System.TAKECARE, System.TRESERVA): Direction.HOSPITAL_TO_MUNICIPALITY,
    (System.TAKECARE, System.PRIMARY_CARE): Direction.HOSPITAL_TO_PRIMARY_CARE,
    (System.TRESERVA, System.TAKECARE): Direction.MUNICIPALITY_TO_HOSPITAL,
}


def direction(source: str, destination: str) -> Direction:
    return _DIRECTIONS.get((source, destination), Direction.OTHER)


class DeviationRejected(ValueError):
    """A deviation that would be malformed or carry patient identity. The message names the
    field, never its value."""


class InvalidMonth(ValueError):
    """Not a month of the form ``YYYY-MM``."""


_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_HSA_ID = re.compile(r"^SE[0-9]{10}-[A-Za-z0-9]{1,31}$")  # as in the native contracts
_PSEUDONYM = re.compile(r"^[0-9a-f]{32}$")  # services.messaging.identifiers.pseudonym
_MONTH = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")
# Ten or twelve digits, optionally with '-' or '+' before the last four: a personnummer's
# shape. An organisation number (in every HSA-id) has the same shape but a "month" of 20
# or more, so it is told apart by the date; the check digit is deliberately not required.
_ID_SHAPE = re.compile(r"(?<![0-9])((?:19|20)?[0-9]{6})[-+]?([0-9]{4})(?![0-9])")


def looks_like_personnummer(text: str) -> bool:
    """Whether ``text`` holds something shaped like a personnummer or samordningsnummer
    (day of birth + 60) with a plausible date of birth."""
    for match in _ID_SHAPE.finditer(text):
        date = match.group(1)[-6:]
        month, day = int(date[2:4]), int(date[4:6])
        if 1 <= month <= 12 and (1 <= day <= 31 or 61 <= day <= 91):
            return True
    return False


def lateness_seconds(due_at: datetime | None, at: datetime) -> int | None:
    """How late ``at`` is against the deadline, in whole seconds (0 when in time); None
    without a deadline."""
    if due_at is None:
        return None
    return max(0, int((at - due_at).total_seconds()))


def month_window(month: str) -> tuple[datetime, datetime]:
    """The month ``YYYY-MM`` in Stockholm time as a half-open UTC interval."""
    found = _MONTH.match(month)
    if found is None:
        raise InvalidMonth("month must be YYYY-MM between 2000-01 and 2099-12, e.g. 2026-11")
    year, number = int(found.group(1)), int(found.group(2))
    start = datetime(year, number, 1, tzinfo=STOCKHOLM)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=STOCKHOLM)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_of(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%Y-%m")


_WHAT: dict[str, str] = {
    DeviationKind.NOT_CONFIRMED_IN_TIME: "bekräftades inte i tid av",
    DeviationKind.DELIVERY_FAILED: "kunde inte levereras till",
    DeviationKind.LEGAL_DEADLINE_BREACHED: "nådde inte inom lagstadgad tid fram till",
    DeviationKind.EPISODE_GAP: "saknas hos",
}


def default_description(kind: str, family_text: str, destination: str) -> str:
    """A plain-Swedish description a rule may pass when it has nothing better to say."""
    what = _WHAT.get(kind, "avvek vid överföring till")
    return f"{family_text} {what} {destination}."


@dataclass(frozen=True, slots=True)
class Deviation:
    """One deviation as read back (the export's and the API's read model)."""

    id: int
    kind: str
    family: str
    source: str
    destination: str
    detected_at: datetime
    description: str
    message_id: str | None = None
    delivery_id: int | None = None
    sender_unit_hsa: str | None = None
    receiver_unit_hsa: str | None = None
    pseudonym: str | None = None
    occurred_at: datetime | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    lateness_s: int | None = None
    alert_id: int | None = None

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def direction(self) -> Direction:
        return direction(self.source, self.destination)

    @property
    def confirmed_late(self) -> bool:
        """A legal deadline breached and the notice confirmed after it: its ``resolved_at``
        is the confirmation, its ``lateness_s`` how long after the deadline."""
        return (
            self.kind == DeviationKind.LEGAL_DEADLINE_BREACHED
            and self.resolved_at is not None
            and self.due_at is not None
            and self.resolved_at > self.due_at
        )


def new_deviation(
    *,
    kind: str,
    family: str,
    source: str,
    destination: str,
    detected_at: datetime,
    description: str,
    message_id: str | None = None,
    delivery_id: int | None = None,
    sender_unit_hsa: str | None = None,
    receiver_unit_hsa: str | None = None,
    pseudonym: str | None = None,
    occurred_at: datetime | None = None,
    due_at: datetime | None = None,
    alert_id: int | None = None,
) -> dict[str, Any]:
    """The row to insert, checked: raise :class:`DeviationRejected` naming the bad field."""
    if not _KIND.match(kind):
        raise DeviationRejected("kind: lower-case letters, digits and '_', at most 40")
    for name, value, limit in (
        ("family", family, 60),
        ("source", source, 40),
        ("destination", destination, 40),
        ("description", description, 500),
    ):
        if not value.strip() or len(value) > limit:
            raise DeviationRejected(f"{name}: 1 to {limit} characters")
    for name, hsa in (
        ("sender_unit_hsa", sender_unit_hsa),
        ("receiver_unit_hsa", receiver_unit_hsa),
    ):
        if hsa is not None and not _HSA_ID.match(hsa):
            raise DeviationRejected(f"{name}: not an HSA-id (SE + 10 digits + '-' + id)")
    if pseudonym is not None and not _PSEUDONYM.match(pseudonym):
        raise DeviationRejected("pseudonym: the keyed pseudonym (32 hex), never an identity")
    if message_id is not None and len(message_id) > 36:
        raise DeviationRejected("message_id: at most 36 characters")
    for name, text in (
        ("description", description),
        ("family", family),
        ("message_id", message_id),
    ):
        if text is not None and looks_like_personnummer(text):
            raise DeviationRejected(f"{name}: looks like a personnummer; no patient data here")
    for name, at in (
        ("detected_at", detected_at),
        ("occurred_at", occurred_at),
        ("due_at", due_at),
    ):
        if at is not None and at.tzinfo is None:
            raise DeviationRejected(f"{name}: needs a time zone")
    return {
        "kind": kind,
        "family": family,
        "source": source,
        "destination": destination,
        "message_id": message_id,
        "delivery_id": delivery_id,
        "sender_unit_hsa": sender_unit_hsa,
        "receiver_unit_hsa": receiver_unit_hsa,
        "pseudonym": pseudonym,
        "occurred_at": occurred_at,
        "due_at": due_at,
        "detected_at": detected_at,
        "resolved_at": None,
        "lateness_s": lateness_seconds(due_at, detected_at),
        "description": description.strip(),
        "alert_id": alert_id,
    }


@dataclass(slots=True)
class MonthCount:
    month: str  # YYYY-MM, Stockholm time, by detection
    total: int = 0
    resolved: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_direction: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "total": self.total,
            "resolved": self.resolved,
            "byKind": dict(sorted(self.by_kind.items())),
            "byDirection": dict(sorted(self.by_direction.items())),
        }


def count_by_month(deviations: Iterable[Deviation]) -> list[MonthCount]:
    """Counts per month of detection (Stockholm time), by kind and by direction, oldest
    month first. A resolved deviation is still counted."""
    months: dict[str, MonthCount] = {}
    for d in deviations:
        month = month_of(d.detected_at)
        count = months.setdefault(month, MonthCount(month))
        count.total += 1
        count.resolved += d.resolved
        count.by_kind[d.kind] += 1
        count.by_direction[d.direction.value] += 1
    return [months[m] for m in sorted(months)]


# ── SQL at the edge ──────────────────────────────────────────────────────────────────────


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(deviation)


async def record_deviation(
    session: AsyncSession,
    *,
    kind: str,
    family: str,
    source: str,
    destination: str,
    detected_at: datetime,
    message_id: str | None = None,
    delivery_id: int | None = None,
    sender_unit_hsa: str | None = None,
    receiver_unit_hsa: str | None = None,
    pseudonym: str | None = None,
    occurred_at: datetime | None = None,
    due_at: datetime | None = None,
    description: str,
    alert_id: int | None = None,
) -> int:
    """Record a deviation and return its id. Idempotent: the same delivery and kind, or
    without a delivery the same kind, destination, family, message, pseudonym and deadline,
    give the existing deviation's id (an alert id is filled in if it was missing). Runs in
    the caller's transaction. Raises :class:`DeviationRejected`."""
    values = new_deviation(
        kind=kind,
        family=family,
        source=source,
        destination=destination,
        detected_at=detected_at,
        description=description,
        message_id=message_id,
        delivery_id=delivery_id,
        sender_unit_hsa=sender_unit_hsa,
        receiver_unit_hsa=receiver_unit_hsa,
        pseudonym=pseudonym,
        occurred_at=occurred_at,
        due_at=due_at,
        alert_id=alert_id,
    )
    values["created_at"] = utcnow()
    if delivery_id is not None:
        same = deviation.c.delivery_id == delivery_id
        # ON CONFLICT, not a lock: two router replicas may detect the same failure at once
        inserted = await session.execute(
            _insert(session)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["kind", "delivery_id"])
            .returning(deviation.c.id)
        )
        new_id = inserted.scalar()
        if new_id is not None:
            return int(new_id)
    else:
        await serialize(session, f"deviation:{kind}:{destination}:{family}")
        same = and_(
            deviation.c.delivery_id.is_(None),
            deviation.c.destination == destination,
            deviation.c.family == family,
            deviation.c.message_id.is_not_distinct_from(message_id),
            deviation.c.pseudonym.is_not_distinct_from(pseudonym),
            deviation.c.due_at.is_not_distinct_from(due_at),
        )
    existing = (
        await session.execute(
            select(deviation.c.id, deviation.c.alert_id)
            .where(deviation.c.kind == kind, same)
            .order_by(deviation.c.id)
            .limit(1)
        )
    ).first()
    if existing is None:  # only without a delivery: with one, the insert above won
        inserted = await session.execute(
            deviation.insert().values(**values).returning(deviation.c.id)
        )
        return int(inserted.scalar_one())
    if alert_id is not None and existing.alert_id is None:
        await session.execute(
            update(deviation).where(deviation.c.id == existing.id).values(alert_id=alert_id)
        )
    return int(existing.id)


async def close_deviation(session: AsyncSession, *, delivery_id: int, resolved_at: datetime) -> int:
    """The delivery finally got through: set ``resolved_at`` and the final lateness against
    the deadline on its open deviations; return how many. They stay counted."""
    return await close_deviations(session, [delivery_id], resolved_at)


async def close_deviations(
    session: AsyncSession, delivery_ids: Iterable[int], resolved_at: datetime
) -> int:
    """:func:`close_deviation` for many deliveries, with one statement to find their open
    deviations (most deliveries have none)."""
    if resolved_at.tzinfo is None:
        raise DeviationRejected("resolved_at: needs a time zone")
    rows = (
        await session.execute(
            select(deviation.c.id, deviation.c.due_at, deviation.c.lateness_s).where(
                deviation.c.delivery_id.in_(sorted(set(delivery_ids))),
                deviation.c.resolved_at.is_(None),
            )
        )
    ).all()
    for row in rows:
        late = lateness_seconds(row.due_at, resolved_at)
        await session.execute(
            update(deviation)
            .where(deviation.c.id == row.id)
            .values(resolved_at=resolved_at, lateness_s=row.lateness_s if late is None else late)
        )
    return len(rows)


def _filtered(
    query: Select[Any],
    *,
    month: str | None,
    kind: str | None,
    destination: str | None,
    family: str | None,
) -> Select[Any]:
    if month is not None:
        start, end = month_window(month)
        query = query.where(deviation.c.detected_at >= start, deviation.c.detected_at < end)
    if kind is not None:
        query = query.where(deviation.c.kind == kind)
    if destination is not None:
        query = query.where(deviation.c.destination == destination)
    if family is not None:
        query = query.where(deviation.c.family == family)
    return query


async def list_deviations(
    session: AsyncSession,
    *,
    month: str | None = None,
    kind: str | None = None,
    destination: str | None = None,
    family: str | None = None,
    limit: int | None = None,
) -> list[Deviation]:
    """Deviations detected in ``month`` (Stockholm time) and matching the filters, in order
    of detection. Raises :class:`InvalidMonth`."""
    query = _filtered(
        select(*(c for c in deviation.c if c.name != "created_at")),
        month=month,
        kind=kind,
        destination=destination,
        family=family,
    ).order_by(deviation.c.detected_at, deviation.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [Deviation(**row._asdict()) for row in (await session.execute(query)).all()]


async def monthly_counts(
    session: AsyncSession, *, since: str | None = None, until: str | None = None
) -> list[MonthCount]:
    """Counts per month from ``since`` to ``until`` (both ``YYYY-MM``, inclusive)."""
    query = select(
        deviation.c.detected_at,
        deviation.c.kind,
        deviation.c.source,
        deviation.c.destination,
        deviation.c.resolved_at,
    )
    if since is not None:
        query = query.where(deviation.c.detected_at >= month_window(since)[0])
    if until is not None:
        query = query.where(deviation.c.detected_at < month_window(until)[1])
    rows = (await session.execute(query)).all()
    return count_by_month(
        Deviation(
            id=0,
            kind=r.kind,
            family="",
            source=r.source,
            destination=r.destination,
            detected_at=r.detected_at,
            description="",
            resolved_at=r.resolved_at,
        )
        for r in rows
    )
