"""Episodes: each patient's stay as the messages tell it, so the router can see what is
missing rather than only what failed.

The states and the transitions allowed between them are drawn, and checked, in
:mod:`services.router.routing.domain` (``EpisodeState``); every transition an accepted message
makes is recorded in ``episode_transition`` (from, to, the message, when, why). In short::

    admitted ──ready──▶ ready ──discharge notice──▶ discharged
       ▲                 │  │
       └───withdrawn─────┘  └──process interrupted──▶ interrupted ──ready──▶ ready (anew)
    admitted / ready / interrupted ──patient deceased──▶ deceased
                                   ──admission cancelled──▶ cancelled
      (the notice's own cancelled event, or a makulering naming the admission notice)

How the end of a process is read (Lag 2017:612):

- **patient deceased** (avliden): the stay and its process end at the time of death
  (``deceased_at``, the Encounter's ``period.end``). Every gap watchdog of the stay stops, an
  open gap incident nobody else keeps open is resolved with an all-clear saying why, and the
  payment clock stops: the day of death is not payable, as the day of a discharge is not
  (:mod:`services.router.statistics.payment_clock`).
- **process interrupted** (avbrott): the discharge process stops at the interruption
  (``interrupted_at``, the Encounter's extension ``process-interrupted``). The message
  carries a reason (condition worsened, services declined, other) and a free-text note, but
  no "restarts" flag, and the reason decides nothing here: whatever the reason, the law's
  process only starts again with a new ready-for-discharge notice (utskrivningsklar), which
  moves the episode back to ``ready`` with a new SIP clock and a new payment clock. Neither
  the reason nor the note is stored (data minimisation: nothing here needs them). Gap
  watchdogs stop as for a death; the interruption day is not payable.
- **transfer** (förflyttning) to another ward or hospital: the stay goes on (the same
  encounter, so the same case id); the responsible ward (``sender_unit_hsa``: whom a gap
  incident tells you to phone) becomes the new unit, and no clock restarts. The message names
  both units by HSA-id and name only: it cannot tell a region, so every transfer is read as
  within the region. A patient moved to another region leaves this region's stay, which its
  journal ends with a discharge notice; that ends the episode here.

Gaps raise an ``episode_gap`` incident (by pseudonym and unit, never by name):

- ready for discharge, and no SIP invitation within 3 days (calendar days by law; working
  days where a regional agreement says so): warned at 50 % (info) and 80 % (warning) of
  that time, escalated to critical at the breach, as the legal deadlines of deliveries are
  (:mod:`services.router.routing.deadlines`);
- discharged, and no medication list by the end of the discharge day;
- a later notice about a stay whose admission notice the receiver never confirmed (it went
  to dead letter, or its confirmation is overdue).

An episode gap incident resolves itself when no episode has that gap open any more.

An episode also keeps its latest ready notice (``ready_message_id``) and when that readiness
ended other than by discharge: withdrawn (``ready_withdrawn_at``), interrupted
(``interrupted_at``) or by death (``deceased_at``). Every readiness, not only the latest,
is kept as its own ``readiness_period`` row (:mod:`.readiness_periods`), written with the
episode's change; the payment clock reads those
(:mod:`services.router.statistics.payment`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
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
from services.router.routing.domain import (
    CURRENT_EPISODE,
    SETTLED,
    AlertKind,
    AlertState,
    DeliveryState,
    EpisodeState,
    IllegalTransition,
    check_episode_transition,
)
from services.router.routing.readiness_periods import PeriodLedger
from services.router.routing.tables import alert, delivery, message

__all__ = ["EpisodeState", "episode", "episode_transition", "load_current", "track"]

log = logging.getLogger(__name__)


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
    # the process ended other than by discharge: interrupted (avbrott; a new ready notice
    # clears it) or the patient died; both stop the payment clock
    Column("interrupted_at", UtcDateTime, nullable=True),
    Column("deceased_at", UtcDateTime, nullable=True),
    # the SIP invitation's stage (deadlines.Stage) and when to look at it again
    Column("sip_stage", Integer, nullable=False, server_default="0"),
    Column("sip_check_at", UtcDateTime, nullable=True),
    # an incident holds this episode: closed again when the missing message arrives
    Column("sip_gap_open", Boolean, nullable=False, server_default="0"),
    Column("medication_gap_open", Boolean, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_episode_patient", "pseudonym", "state"),
)

episode_transition = Table(
    "episode_transition",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("episode_id", BigId, nullable=False),
    Column("from_state", String(20), nullable=True),  # None: the episode began
    Column("to_state", String(20), nullable=False),
    Column("event_code", String(64), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("at", UtcDateTime, nullable=False),  # the router's time
    Column("reason", String(200), nullable=False),  # ids and codes only, never patient data
    Index("ix_episode_transition_episode", "episode_id", "id"),
)

_SIP_CLOCK_STOPPED: dict[str, object] = {
    "sip_due_at": None,
    "sip_stage": int(Stage.ON_TRACK),
    "sip_check_at": None,
    "sip_gap_open": False,
}

_GAP_FLAGS = (
    (Gap.SIP_INVITATION, episode.c.sip_gap_open),
    (Gap.MEDICATION_LIST, episode.c.medication_gap_open),
)

_LATER_NOTICES = frozenset(
    {
        EventCode.ADMISSION_NOTICE_UPDATED,
        EventCode.READY_FOR_DISCHARGE,
        EventCode.DISCHARGE_NOTICE,
    }
)


_CURRENT = tuple(sorted(state.value for state in CURRENT_EPISODE))

# why a transition happened, by the family that made it (the transition row's reason)
_WHY: dict[str, str] = {
    EventCode.ADMISSION_NOTICE: "admitted",
    EventCode.READY_FOR_DISCHARGE: "ready for discharge: the SIP and payment clocks start",
    EventCode.READY_FOR_DISCHARGE_WITHDRAWN: "readiness withdrawn: the clocks stop",
    EventCode.DISCHARGE_NOTICE: "discharged",
    EventCode.ADMISSION_NOTICE_CANCELLED: "admission cancelled",
    EventCode.PATIENT_DECEASED: "patient deceased: the process ends, the clocks stop",
    EventCode.PROCESS_INTERRUPTED: "process interrupted: the clocks stop until a new readiness",
    EventCode.TRANSFER: "transferred: the responsible ward changes, the stay goes on",
    EventCode.MESSAGE_CANCELLED: "cancelled (makulering): the admission or the readiness never was",
}
# the gap incidents' all-clear when an episode's process ends without the missing message
_ENDED: dict[str, str] = {
    EventCode.PATIENT_DECEASED: "the patient died during the stay",
    EventCode.PROCESS_INTERRUPTED: "the discharge process was interrupted",
    EventCode.ADMISSION_NOTICE_CANCELLED: "the admission was cancelled",
}


@dataclass(frozen=True, slots=True)
class Current:
    """A patient's current episode (admitted, ready or interrupted), as :func:`track`
    needs it."""

    id: int | None  # None: begun in this batch, stored when the book is flushed
    admission_message_id: str | None
    state: EpisodeState = EpisodeState.ADMITTED
    ready_message_id: str | None = None  # the readiness in force: its ready notice


class EpisodeBook:
    """The current episodes of a batch's patients, read with one statement
    (:func:`load_current`) and kept up to date as :func:`track` moves them on; a patient
    not in the book is read when asked for. Episodes the batch begins are stored together
    by :meth:`flush` (the caller's, before it commits), with what the batch did to them."""

    def __init__(self, current: dict[str, Current | None]) -> None:
        self._current = current
        self._begun: list[dict[str, object]] = []  # in the order begun
        self._begun_of: dict[str, dict[str, object]] = {}  # while still current
        # transitions of episodes begun in this batch: stored with their ids by flush
        self._pending: list[tuple[dict[str, object], dict[str, object]]] = []
        self._periods = PeriodLedger()  # each readiness's own payment evidence

    async def current(self, session: AsyncSession, pseudonym: str) -> Current | None:
        if pseudonym not in self._current:
            found = await load_current(session, [pseudonym])
            self._current[pseudonym] = found._current[pseudonym]
        return self._current[pseudonym]

    def begin(self, values: dict[str, object], env: Envelope, now: datetime) -> None:
        pseudonym = str(values["pseudonym"])
        self._begun.append(values)
        self._begun_of[pseudonym] = values
        self._current[pseudonym] = Current(None, str(values["admission_message_id"]))
        self._pending.append((values, _transition(None, EpisodeState.ADMITTED, env, now)))

    async def update(
        self,
        session: AsyncSession,
        pseudonym: str,
        current: Current,
        values: dict[str, object],
        now: datetime,
        env: Envelope,
    ) -> None:
        """Apply ``values`` to the current episode. When they name a state (the same one
        too: a transfer), the transition is checked and recorded; raises
        :class:`~services.router.routing.domain.IllegalTransition`, changing nothing."""
        target = EpisodeState(str(values.get("state", current.state)))
        transition = None
        if "state" in values:
            check_episode_transition(current.state, target)
            transition = _transition(current.state, target, env, now)
            self._periods.moved(
                pseudonym,
                episode_id=current.id,
                admission_message_id=current.admission_message_id,
                current=current.state,
                values=values,
                env=env,
                now=now,
            )
        if current.id is None:
            begun = self._begun_of[pseudonym]
            begun.update(values, updated_at=now)
            if transition is not None:
                self._pending.append((begun, transition))
        else:
            await session.execute(
                update(episode).where(episode.c.id == current.id).values(updated_at=now, **values)
            )
            if transition is not None:
                await session.execute(
                    episode_transition.insert().values(episode_id=current.id, **transition)
                )
        if target not in CURRENT_EPISODE:  # no longer current
            self._current[pseudonym] = None
            self._begun_of.pop(pseudonym, None)
        else:
            ready = values.get("ready_message_id", current.ready_message_id)
            self._current[pseudonym] = Current(
                current.id,
                current.admission_message_id,
                target,
                None if target is not EpisodeState.READY or ready is None else str(ready),
            )

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
        pending, self._pending = self._pending, []
        if pending:  # one statement: each row takes its episode's id by the admission's
            await session.execute(
                _TRANSITION_OF_BEGUN,
                [
                    {"admission": values["admission_message_id"], **transition}
                    for values, transition in pending
                ],
            )
        await self._periods.flush(session, episode)


_TRANSITION_COLUMNS = ("from_state", "to_state", "event_code", "message_id", "at", "reason")
_TRANSITION_OF_BEGUN = episode_transition.insert().from_select(
    ["episode_id", *_TRANSITION_COLUMNS],
    select(
        episode.c.id,
        *(bindparam(name, type_=episode_transition.c[name].type) for name in _TRANSITION_COLUMNS),
    ).where(episode.c.admission_message_id == bindparam("admission")),
)


def _transition(
    current: EpisodeState | None, target: EpisodeState, env: Envelope, now: datetime
) -> dict[str, object]:
    code = str(env.event_code)
    return dict(
        from_state=None if current is None else current.value,
        to_state=target.value,
        event_code=code,
        message_id=env.message_id,
        at=now,
        reason=_WHY.get(code, code),
    )


async def load_current(session: AsyncSession, pseudonyms: Iterable[str]) -> EpisodeBook:
    """The book of ``pseudonyms``' current episodes (the latest admitted or ready one)."""
    wanted = sorted(set(pseudonyms))
    current: dict[str, Current | None] = dict.fromkeys(wanted)
    if not wanted:
        return EpisodeBook(current)
    rows = await session.execute(
        select(
            episode.c.id,
            episode.c.pseudonym,
            episode.c.admission_message_id,
            episode.c.state,
            episode.c.ready_message_id,
        )
        .where(episode.c.pseudonym.in_(wanted), episode.c.state.in_(_CURRENT))
        .order_by(episode.c.id)
    )
    for row in rows:  # the latest wins
        state = EpisodeState(row.state)
        current[row.pseudonym] = Current(
            int(row.id),
            row.admission_message_id,
            state,
            row.ready_message_id if state is EpisodeState.READY else None,
        )
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
            ),
            env,
            now,
        )
        return
    if code == EventCode.MEDICATION_LIST and env.source_system != "takecare":
        return  # the municipality's list to the hospital is not the discharge list
    if current is None:
        if code == EventCode.MEDICATION_LIST:  # after the discharge notice
            await book.flush(session)  # it reads the stored episodes
            await record_discharge_medication(session, pseudonym, at, now)
        return  # otherwise a stay the broker never saw begin: nothing to compare with
    if code in _LATER_NOTICES:
        await _unconfirmed_admission(session, current, code, facts, now, sinks)
    values = _moved_on(env, facts, current, sip_in_working_days=sip_in_working_days)
    if not values:
        return
    try:
        await book.update(session, pseudonym, current, values, now, env)
    except IllegalTransition as refused:  # e.g. a withdrawal after an interruption
        log.info(
            "episode transition refused",
            extra={"message_id": env.message_id, "family": code, "reason": str(refused)},
        )
        return
    ended = _ENDED.get(code)
    if ended is not None:  # its flags are cleared: the all-clear, if it was the last
        for gap, flag in _GAP_FLAGS:
            await _resolve_closed(session, gap, flag, now, sinks, why=ended)


def _moved_on(
    env: Envelope, facts: CareFacts, current: Current, *, sip_in_working_days: bool
) -> dict[str, object]:
    """What an accepted message changes in the current episode (empty: nothing)."""
    code = env.event_code
    at = env.timestamp
    values: dict[str, object] = {}
    if code == EventCode.READY_FOR_DISCHARGE:
        # a new readiness (also after an interruption): new SIP and payment clocks
        due = add_days(at, SIP_INVITATION_WITHIN_DAYS, working=sip_in_working_days)
        values = {
            "state": EpisodeState.READY.value,
            "ready_at": at,
            "ready_message_id": env.message_id,
            "ready_withdrawn_at": None,
            "interrupted_at": None,
            "sip_due_at": due,
            "sip_stage": int(Stage.ON_TRACK),
            "sip_check_at": next_stage_at(at, due, Stage.ON_TRACK),
        }
    elif code == EventCode.READY_FOR_DISCHARGE_WITHDRAWN:
        # no longer ready: the SIP clock stops, and a warning it raised no longer holds
        # the payment clock stops too: the withdrawal day is not payable
        values = {"state": EpisodeState.ADMITTED.value, "ready_at": None, "ready_withdrawn_at": at}
        values |= _SIP_CLOCK_STOPPED
    elif code == EventCode.PROCESS_INTERRUPTED:
        values = {"state": EpisodeState.INTERRUPTED.value, "ready_at": None}
        if current.state is not EpisodeState.INTERRUPTED:  # told again: the first time holds
            values["interrupted_at"] = facts.interrupted_at or at
        values |= _SIP_CLOCK_STOPPED
    elif code == EventCode.PATIENT_DECEASED:
        values = {
            "state": EpisodeState.DECEASED.value,
            "deceased_at": facts.stay_ended_at or at,
            "medication_gap_open": False,
        }
        values |= _SIP_CLOCK_STOPPED
    elif code == EventCode.TRANSFER:
        # the new ward is the message's sender: it is whom a gap incident says to phone
        values = {"state": current.state.value}
        if facts.sender_unit_hsa is not None:
            values["sender_unit_hsa"] = facts.sender_unit_hsa
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
    elif (
        # a makulering of the ready notice in force: the readiness never was, so it is back
        # to admitted, its SIP clock stops and its period pays nothing (readiness_periods)
        code == EventCode.MESSAGE_CANCELLED
        and current.state is EpisodeState.READY
        and facts.cancels is not None
        and facts.cancels == current.ready_message_id
    ):
        values = {"state": EpisodeState.ADMITTED.value, "ready_at": None}
        values |= _SIP_CLOCK_STOPPED
    elif code == EventCode.SIP_INVITATION:
        values = {"sip_invited_at": at, "sip_gap_open": False, "sip_check_at": None}
    elif code == EventCode.MEDICATION_LIST:
        values = {"medication_list_at": at, "medication_gap_open": False}
    return values


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
    *,
    why: str | None = None,
) -> None:
    """Resolve the gap's open incidents once no episode keeps the gap open. ``why``: the
    process of the last stay that kept it ended (a death, an interruption, a cancellation),
    said in the all-clear."""
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
            note=(
                f"cause cleared: every episode has its {gap.value}"
                if why is None
                else f"cause cleared: {why}, so no {gap.value} is due for that stay, "
                f"and every other episode has its {gap.value}"
            ),
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
