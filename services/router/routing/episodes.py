"""Episodes: each patient's stay as the messages tell it, so the router can see what is
missing rather than only what failed.

::

    admitted ──ready for discharge──▶ ready ──discharge notice──▶ discharged
       ▲                                │
       └──────────withdrawn─────────────┘          (a cancelled admission ends it: the
                                                    notice's own cancelled event, or a
                                                    makulering naming the notice)

Gaps raise an ``episode_gap`` incident (by pseudonym and unit, never by name):

- ready for discharge, and no SIP invitation within 3 days (calendar days by law; working
  days where a regional agreement says so): warned at 50 % (info) and 80 % (warning) of
  that time, escalated to critical at the breach, as the legal deadlines of deliveries are
  (:mod:`services.router.routing.deadlines`);
- discharged, and no medication list by the end of the discharge day;
- a later notice about a stay whose admission notice the receiver never confirmed (it went
  to dead letter, or its confirmation is overdue).

An episode gap incident resolves itself when no episode has that gap open any more.

An episode also keeps its latest ready notice (``ready_message_id``) and when it was withdrawn
(``ready_withdrawn_at``): the payment clock reads them
(:mod:`services.router.statistics.payment`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.care_facts import CareFacts
from services.messaging.db import BigId, UtcDateTime, metadata
from services.messaging.envelope import Envelope, EventCode
from services.router import domain_events
from services.router.alerting.events import Severity
from services.router.alerting.incidents import Affected, AlertSink, resolve
from services.router.routing.deadlines import (
    SIP_INVITATION_WITHIN_DAYS,
    Stage,
    add_days,
    end_of_day,
    next_stage_at,
    stage,
)
from services.router.routing.domain import SETTLED, AlertKind, AlertState, DeliveryState
from services.router.routing.tables import alert, delivery, message


class EpisodeState(enum.StrEnum):
    ADMITTED = "admitted"
    READY = "ready"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"


class Gap(enum.StrEnum):
    """The family an episode is missing (the incident's family)."""

    SIP_INVITATION = EventCode.SIP_INVITATION.value
    MEDICATION_LIST = EventCode.MEDICATION_LIST.value


episode = Table(
    "episode",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("pseudonym", String(32), nullable=False),
    Column("state", String(20), nullable=False),
    Column("sender_unit_hsa", String(64), nullable=True),
    Column("admission_message_id", String(36), nullable=True),
    Column("admitted_at", UtcDateTime, nullable=True),
    Column("ready_at", UtcDateTime, nullable=True),
    # the latest ready notice of the stay and when it was withdrawn (återtag), if it was:
    # the payment clock runs from that notice's delivery to the municipality
    # (services.router.statistics.payment); kept when withdrawn, as evidence
    Column("ready_message_id", String(36), nullable=True),
    Column("ready_withdrawn_at", UtcDateTime, nullable=True),
    Column("sip_due_at", UtcDateTime, nullable=True),
    Column("sip_invited_at", UtcDateTime, nullable=True),
    Column("discharged_at", UtcDateTime, nullable=True),
    Column("medication_due_at", UtcDateTime, nullable=True),
    Column("medication_list_at", UtcDateTime, nullable=True),
    # the SIP invitation's stage (deadlines.Stage) and when to look at it again
    Column("sip_stage", Integer, nullable=False, server_default="0"),
    Column("sip_check_at", UtcDateTime, nullable=True),
    # an incident holds this episode: closed again when the missing message arrives
    Column("sip_gap_open", Boolean, nullable=False, server_default="0"),
    Column("medication_gap_open", Boolean, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_episode_patient", "pseudonym", "state"),
)

_SIP_CLOCK_STOPPED: dict[str, object] = {
    "sip_due_at": None,
    "sip_stage": int(Stage.ON_TRACK),
    "sip_check_at": None,
    "sip_gap_open": False,
}

_LATER_NOTICES = frozenset(
    {
        EventCode.ADMISSION_NOTICE_UPDATED,
        EventCode.READY_FOR_DISCHARGE,
        EventCode.DISCHARGE_NOTICE,
    }
)


_CURRENT = (EpisodeState.ADMITTED.value, EpisodeState.READY.value)


@dataclass(frozen=True, slots=True)
class Current:
    """A patient's current episode (admitted or ready), as :func:`track` needs it."""

    id: int | None  # None: begun in this batch, stored when the book is flushed
    admission_message_id: str | None


class EpisodeBook:
    """The current episodes of a batch's patients, read with one statement
    (:func:`load_current`) and kept up to date as :func:`track` moves them on; a patient
    not in the book is read when asked for. Episodes the batch begins are stored together
    by :meth:`flush` (the caller's, before it commits), with what the batch did to them."""

    def __init__(self, current: dict[str, Current | None]) -> None:
        self._current = current
        self._begun: list[dict[str, object]] = []  # in the order begun
        self._begun_of: dict[str, dict[str, object]] = {}  # while still current

    async def current(self, session: AsyncSession, pseudonym: str) -> Current | None:
        if pseudonym not in self._current:
            found = await load_current(session, [pseudonym])
            self._current[pseudonym] = found._current[pseudonym]
        return self._current[pseudonym]

    def begin(self, values: dict[str, object]) -> None:
        pseudonym = str(values["pseudonym"])
        self._begun.append(values)
        self._begun_of[pseudonym] = values
        self._current[pseudonym] = Current(None, str(values["admission_message_id"]))

    async def update(
        self,
        session: AsyncSession,
        pseudonym: str,
        current: Current,
        values: dict[str, object],
        now: datetime,
    ) -> None:
        if current.id is None:
            self._begun_of[pseudonym].update(values, updated_at=now)
        else:
            await session.execute(
                update(episode).where(episode.c.id == current.id).values(updated_at=now, **values)
            )
        state = values.get("state")
        if state is not None and state not in _CURRENT:  # no longer current
            self._current[pseudonym] = None
            self._begun_of.pop(pseudonym, None)

    async def flush(self, session: AsyncSession) -> None:
        """Store the episodes begun, in order: one statement per run of rows of one shape
        (all of them, unless the batch also moved some on)."""
        begun, self._begun = self._begun, []
        for pseudonym in self._begun_of:
            self._current.pop(pseudonym, None)  # read again, with its id, if asked
        self._begun_of = {}
        run: list[dict[str, object]] = []
        for values in begun:
            if run and run[0].keys() != values.keys():
                await session.execute(episode.insert(), run)
                run = []
            run.append(values)
        if run:
            await session.execute(episode.insert(), run)


async def load_current(session: AsyncSession, pseudonyms: Iterable[str]) -> EpisodeBook:
    """The book of ``pseudonyms``' current episodes (the latest admitted or ready one)."""
    wanted = sorted(set(pseudonyms))
    current: dict[str, Current | None] = dict.fromkeys(wanted)
    if not wanted:
        return EpisodeBook(current)
    rows = await session.execute(
        select(episode.c.id, episode.c.pseudonym, episode.c.admission_message_id)
        .where(episode.c.pseudonym.in_(wanted), episode.c.state.in_(_CURRENT))
        .order_by(episode.c.id)
    )
    for row in rows:
        current[row.pseudonym] = Current(int(row.id), row.admission_message_id)  # latest wins
    return EpisodeBook(current)


async def track(
    session: AsyncSession,
    env: Envelope,
    facts: CareFacts,
    pseudonym: str | None,
    now: datetime,
    *,
    book: EpisodeBook,
    sip_in_working_days: bool = False,
    sinks: Sequence[AlertSink] = (),
) -> None:
    """Move the patient's current episode on with one accepted message. ``book``: the
    batch's episodes (:func:`load_current`); the caller flushes it."""
    if pseudonym is None:
        return
    code = env.event_code
    current = await book.current(session, pseudonym)
    at = env.timestamp
    if code == EventCode.ADMISSION_NOTICE and current is None:
        book.begin(
            dict(
                pseudonym=pseudonym,
                state=EpisodeState.ADMITTED.value,
                sender_unit_hsa=facts.sender_unit_hsa,
                admission_message_id=env.message_id,
                admitted_at=facts.stay_started_at or at,
                updated_at=now,
            )
        )
        return
    if code == EventCode.MEDICATION_LIST and env.source_system != "takecare":
        return  # the municipality's list to the hospital is not the discharge list
    if current is None:
        if code == EventCode.MEDICATION_LIST:  # after the discharge notice
            await book.flush(session)  # it reads the stored episodes
            await record_discharge_medication(session, pseudonym, at, now)
        return  # otherwise a stay the broker never saw begin: nothing to compare with
    values: dict[str, object] = {}
    if code in _LATER_NOTICES:
        await _unconfirmed_admission(session, current, code, facts, now, sinks)
    if code == EventCode.READY_FOR_DISCHARGE:
        due = add_days(at, SIP_INVITATION_WITHIN_DAYS, working=sip_in_working_days)
        values = {
            "state": EpisodeState.READY.value,
            "ready_at": at,
            "ready_message_id": env.message_id,
            "ready_withdrawn_at": None,
            "sip_due_at": due,
            "sip_stage": int(Stage.ON_TRACK),
            "sip_check_at": next_stage_at(at, due, Stage.ON_TRACK),
        }
    elif code == EventCode.READY_FOR_DISCHARGE_WITHDRAWN:
        # no longer ready: the SIP clock stops, and a warning it raised no longer holds
        # the payment clock stops too: the withdrawal day is not payable
        values = {"state": EpisodeState.ADMITTED.value, "ready_at": None, "ready_withdrawn_at": at}
        values |= _SIP_CLOCK_STOPPED
    elif code == EventCode.DISCHARGE_NOTICE:
        discharged = facts.stay_ended_at or at
        values = {
            "state": EpisodeState.DISCHARGED.value,
            "discharged_at": discharged,
            "medication_due_at": end_of_day(discharged),
        }
    elif code == EventCode.ADMISSION_NOTICE_CANCELLED or (
        # the generic cancellation (makulering) of the stay's admission notice ends it alike
        code == EventCode.MESSAGE_CANCELLED
        and facts.cancels is not None
        and facts.cancels == current.admission_message_id
    ):
        values = {"state": EpisodeState.CANCELLED.value, "medication_gap_open": False}
        values |= _SIP_CLOCK_STOPPED
    elif code == EventCode.SIP_INVITATION:
        values = {"sip_invited_at": at, "sip_gap_open": False, "sip_check_at": None}
    elif code == EventCode.MEDICATION_LIST:
        values = {"medication_list_at": at, "medication_gap_open": False}
    if values:
        await book.update(session, pseudonym, current, values, now)


async def record_discharge_medication(
    session: AsyncSession, pseudonym: str | None, at: datetime, now: datetime
) -> None:
    """A medication list that arrives after the discharge notice still closes the gap."""
    if pseudonym is None:
        return
    latest = await session.scalar(
        select(func.max(episode.c.id)).where(
            episode.c.pseudonym == pseudonym,
            episode.c.state == EpisodeState.DISCHARGED.value,
            episode.c.medication_list_at.is_(None),
        )
    )
    if latest is not None:
        await session.execute(
            update(episode)
            .where(episode.c.id == latest)
            .values(medication_list_at=at, medication_gap_open=False, updated_at=now)
        )


async def check_gaps(
    session: AsyncSession, now: datetime, *, sinks: Sequence[AlertSink] = ()
) -> int:
    """Warn and escalate as SIP invitations near and pass their due time, open (or join) a
    gap incident for each episode newly past the end of its discharge day with no
    medication list, and resolve gap incidents no episode keeps open. Returns the episodes
    newly flagged."""
    flagged = await _check_sip_invitations(session, now, sinks)
    await _resolve_closed(session, Gap.SIP_INVITATION, episode.c.sip_gap_open, now, sinks)
    rows = (
        await session.execute(
            select(
                episode.c.id,
                episode.c.pseudonym,
                episode.c.sender_unit_hsa,
                episode.c.medication_due_at,
            )
            .where(
                episode.c.state == EpisodeState.DISCHARGED.value,
                episode.c.medication_list_at.is_(None),
                episode.c.medication_due_at <= now,
                ~episode.c.medication_gap_open,
            )
            .limit(200)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        await session.execute(
            update(episode).where(episode.c.id == row.id).values(medication_gap_open=True)
        )
        await _gap(session, Gap.MEDICATION_LIST, row, row.medication_due_at, now, sinks)
        flagged += 1
    await _resolve_closed(session, Gap.MEDICATION_LIST, episode.c.medication_gap_open, now, sinks)
    return flagged


_STAGE_SEVERITY = {
    Stage.HALF: Severity.INFO,
    Stage.LATE: Severity.WARNING,
    Stage.BREACHED: Severity.CRITICAL,
}


async def _check_sip_invitations(
    session: AsyncSession, now: datetime, sinks: Sequence[AlertSink]
) -> int:
    """Each ready episode without its SIP invitation whose next stage has come: info at
    50 % of the time, warning at 80 %, critical at the breach (the gap proper)."""
    rows = (
        await session.execute(
            select(
                episode.c.id,
                episode.c.pseudonym,
                episode.c.sender_unit_hsa,
                episode.c.ready_at,
                episode.c.sip_due_at,
                episode.c.sip_stage,
            )
            .where(
                episode.c.state == EpisodeState.READY.value,
                episode.c.sip_invited_at.is_(None),
                episode.c.sip_check_at <= now,
            )
            .order_by(episode.c.sip_check_at)
            .limit(200)
            .with_for_update(skip_locked=True)
        )
    ).all()
    raised = 0
    for row in rows:
        reached = stage(row.ready_at, row.sip_due_at, now)
        values: dict[str, object] = {
            "sip_stage": int(reached),
            "sip_check_at": next_stage_at(row.ready_at, row.sip_due_at, reached),
        }
        if reached > row.sip_stage:
            values["sip_gap_open"] = True
        await session.execute(update(episode).where(episode.c.id == row.id).values(**values))
        if reached <= row.sip_stage:
            continue
        await _gap(
            session, Gap.SIP_INVITATION, row, row.sip_due_at, now, sinks, _STAGE_SEVERITY[reached]
        )
        raised += 1
    return raised


async def _gap(
    session: AsyncSession,
    gap: Gap,
    row: Any,
    due_at: datetime,
    now: datetime,
    sinks: Sequence[AlertSink],
    severity: Severity = Severity.CRITICAL,
) -> None:
    await domain_events.emit(
        session,
        domain_events.IncidentFound(
            kind=AlertKind.EPISODE_GAP,
            destination="treserva",
            event_code=gap.value,
            affected=Affected(
                delivery_id=None,
                pseudonym=row.pseudonym,
                sender_unit_hsa=row.sender_unit_hsa,
                due_at=due_at,
            ),
            now=now,
            severity=severity,
            sinks=sinks,
        ),
    )


async def _resolve_closed(
    session: AsyncSession,
    gap: Gap,
    flag: Column[bool],
    now: datetime,
    sinks: Sequence[AlertSink],
) -> None:
    still_open = await session.scalar(select(func.count()).select_from(episode).where(flag))
    if still_open:
        return
    ids: list[int] = list(
        (
            await session.execute(
                select(alert.c.id).where(
                    alert.c.kind == AlertKind.EPISODE_GAP.value,
                    alert.c.event_code == gap.value,
                    alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
                )
            )
        ).scalars()
    )
    for alert_id in ids:
        await resolve(
            session,
            int(alert_id),
            actor="router",
            note=f"cause cleared: every episode has its {gap.value}",
            now=now,
            sinks=sinks,
        )


async def _unconfirmed_admission(
    session: AsyncSession,
    current: Current,
    code: str,
    facts: CareFacts,
    now: datetime,
    sinks: Sequence[AlertSink],
) -> None:
    """A later notice about a stay whose admission notice a receiver never confirmed."""
    admission_id = current.admission_message_id
    if admission_id is None:
        return
    rows = (
        await session.execute(
            select(delivery.c.id, delivery.c.destination, delivery.c.state, message.c.pseudonym)
            .join(message, message.c.id == delivery.c.message_id)
            .where(
                delivery.c.message_id == admission_id,
                (delivery.c.state == DeliveryState.DEAD_LETTER.value)
                | (
                    delivery.c.state.not_in([s.value for s in SETTLED])
                    & (delivery.c.confirm_by <= now)
                ),
            )
        )
    ).all()
    for row in rows:
        await domain_events.emit(
            session,
            domain_events.IncidentFound(
                kind=AlertKind.EPISODE_GAP,
                destination=row.destination,
                event_code=code,
                affected=Affected(
                    delivery_id=row.id,
                    message_id=admission_id,
                    pseudonym=row.pseudonym,
                    sender_unit_hsa=facts.sender_unit_hsa,
                ),
                now=now,
                severity=Severity.CRITICAL,
                sinks=sinks,
            ),
        )
