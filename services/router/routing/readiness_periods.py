"""Readiness periods: each ready-for-discharge notice (utskrivningsklar) of a stay and how
its readiness ended, kept as its own evidence for the payment clock
(:mod:`services.router.statistics.payment`).

The episode keeps only its latest ready notice; a stay that is ready, then interrupted
(avbrott) or withdrawn (återtag), then ready again has had two readinesses, and the
municipality pays for the payable days of both. A period is opened by a ready notice and
ended by whatever ends that readiness::

    ready notice ──▶ open ──withdrawn / interrupted / deceased / discharged / cancelled──▶ ended
                       └──a later ready notice (a new readiness, a new clock)──▶ superseded

An episode has an open period exactly while it is ``ready``. The rows are written by
:class:`PeriodLedger`, in the transaction that moves the episode, set-based per batch: one
UPDATE (executemany) for the stored periods the batch ended, and at most two INSERTs for the
periods it opened (of stored episodes, and of episodes begun in the same batch, which take
their id by the admission notice's message id). A batch with no readiness costs nothing.

The ready notice's delivery to the municipality (its ``sent_at`` and addressed unit) and the
admission notice's delivery (its receipt) are read by their message ids when the report is
made: a delivery is sent, and confirmed, after the period is written.
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime

from sqlalchemy import Column, Index, Insert, String, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import BigId, UtcDateTime, metadata
from services.messaging.envelope import Envelope, EventCode
from services.router.routing.domain import EpisodeState

__all__ = ["PeriodEnd", "PeriodLedger", "readiness_period"]


class PeriodEnd(enum.StrEnum):
    """What ended a readiness."""

    WITHDRAWN = "withdrawn"  # återtag: no longer ready
    INTERRUPTED = "interrupted"  # avbrott: the discharge process stopped
    DECEASED = "deceased"
    DISCHARGED = "discharged"
    # the admission was cancelled, or the ready notice itself (makulering): nothing payable
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # a later ready notice of the same stay started a new clock


readiness_period = Table(
    "readiness_period",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("episode_id", BigId, nullable=False),
    Column("ready_message_id", String(36), nullable=False),  # the ready notice
    Column("admission_message_id", String(36), nullable=True),  # its stay's admission notice
    Column("ready_at", UtcDateTime, nullable=False),  # the notice's own time
    Column("ended_at", UtcDateTime, nullable=True),  # None: still ready
    Column("ended_by", String(20), nullable=True),  # PeriodEnd
    Column("ended_by_message_id", String(36), nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),  # the router's time
    Index("ix_readiness_period_episode", "episode_id", "id"),
)

# the family that ends a readiness, and the episode value that says when
_ENDS: dict[str, tuple[PeriodEnd, str | None]] = {
    EventCode.READY_FOR_DISCHARGE: (PeriodEnd.SUPERSEDED, None),
    EventCode.READY_FOR_DISCHARGE_WITHDRAWN: (PeriodEnd.WITHDRAWN, "ready_withdrawn_at"),
    EventCode.PROCESS_INTERRUPTED: (PeriodEnd.INTERRUPTED, "interrupted_at"),
    EventCode.PATIENT_DECEASED: (PeriodEnd.DECEASED, "deceased_at"),
    EventCode.DISCHARGE_NOTICE: (PeriodEnd.DISCHARGED, "discharged_at"),
    EventCode.ADMISSION_NOTICE_CANCELLED: (PeriodEnd.CANCELLED, None),
    # a makulering that moves a ready episode names its admission or its ready notice
    EventCode.MESSAGE_CANCELLED: (PeriodEnd.CANCELLED, None),
}

_CLOSE = (
    readiness_period.update()
    .where(
        readiness_period.c.episode_id == bindparam("episode"),
        readiness_period.c.ended_at.is_(None),
    )
    .values(
        ended_at=bindparam("end_at"),
        ended_by=bindparam("end_kind"),
        ended_by_message_id=bindparam("end_message_id"),
    )
)
_PERIOD_COLUMNS = (
    "ready_message_id",
    "admission_message_id",
    "ready_at",
    "ended_at",
    "ended_by",
    "ended_by_message_id",
    "recorded_at",
)


@functools.cache
def _open_of_begun(episode: Table) -> Insert:
    """Periods of episodes begun in the same batch: each takes its episode's id by the
    admission notice's message id (as their transitions do)."""
    return readiness_period.insert().from_select(
        ["episode_id", *_PERIOD_COLUMNS],
        select(
            episode.c.id,
            *(bindparam(name, type_=readiness_period.c[name].type) for name in _PERIOD_COLUMNS),
        ).where(episode.c.admission_message_id == bindparam("admission")),
    )


class PeriodLedger:
    """The readiness periods one batch opens and ends, stored by :meth:`flush`."""

    def __init__(self) -> None:
        self._opened: list[dict[str, object]] = []  # in order; "admission" keys a begun one
        self._open_of: dict[str, dict[str, object]] = {}  # pseudonym → opened, still open
        self._closes: list[dict[str, object]] = []  # stored open periods this batch ended

    def moved(
        self,
        pseudonym: str,
        *,
        episode_id: int | None,
        admission_message_id: str | None,
        current: EpisodeState,
        values: dict[str, object],
        env: Envelope,
        now: datetime,
    ) -> None:
        """The episode of ``pseudonym`` was moved on by ``env`` (``values``: what changed)."""
        code = str(env.event_code)
        end = _ENDS.get(code)
        if end is not None and current is EpisodeState.READY:
            kind, when = end
            ended = dict(
                ended_at=values.get(when, env.timestamp) if when else env.timestamp,
                ended_by=kind.value,
                ended_by_message_id=env.message_id,
            )
            opened = self._open_of.pop(pseudonym, None)
            if opened is not None:
                opened.update(ended)
            elif episode_id is not None:
                self._closes.append(
                    {
                        "episode": episode_id,
                        "end_at": ended["ended_at"],
                        "end_kind": ended["ended_by"],
                        "end_message_id": ended["ended_by_message_id"],
                    }
                )
        if code == EventCode.READY_FOR_DISCHARGE:
            row: dict[str, object] = dict(
                ready_message_id=env.message_id,
                admission_message_id=admission_message_id,
                ready_at=env.timestamp,
                ended_at=None,
                ended_by=None,
                ended_by_message_id=None,
                recorded_at=now,
            )
            row["episode_id" if episode_id is not None else "admission"] = (
                episode_id if episode_id is not None else admission_message_id
            )
            self._opened.append(row)
            self._open_of[pseudonym] = row

    async def flush(self, session: AsyncSession, episode: Table) -> None:
        """Store what the batch did, after the episodes it began (``episode``: their table):
        the ends of stored periods first, then the periods opened, each kind in one
        statement."""
        closes, self._closes = self._closes, []
        opened, self._opened = self._opened, []
        self._open_of = {}
        if closes:
            await session.execute(_CLOSE, closes)
        stored = [row for row in opened if "episode_id" in row]
        begun = [row for row in opened if "admission" in row]
        if stored:
            await session.execute(readiness_period.insert(), stored)
        if begun:
            await session.execute(_open_of_begun(episode), begun)
