"""Group commit of the adapters' intake: the events POSTed at the same time are stored in
one transaction, set-based.

Stored one by one, each POST cost its own duplicate check and its own transaction (SQLite,
BEGIN counted: BEGIN, SELECT, BEGIN, INSERT, INSERT), and a burst queued for the database
(on SQLite for its one writer) a POST at a time. Here a POST joins a queue, and one writer
task takes everything queued (up to ``max_group``) into one transaction: one SELECT finds
which business keys are stored already, one ``executemany`` inserts the new intake records
and one their outbox rows. The writer never waits for a group to fill: a lone POST is
written at once, and the POSTs that arrive while a group is written form the next one.

Every caller gets the answer it would have had alone, and only after COMMIT, so a 2xx still
means its intake record and outbox row are stored:

- a new business key: stored, ``duplicate=False``;
- a key stored before, or by an earlier POST of the same group: answered as its repeat
  (:func:`~services.messaging.intake.answer_as_repeat`: the first's message id, or
  ``ConflictingResend`` to that caller alone when the content differs);
- ``IntegrityError`` (on PostgreSQL another process stored one of the keys between the
  SELECT and the INSERT): nothing of the group was committed, and each POST is stored again
  on its own (:class:`~services.messaging.intake.SqlIntakeStore`), which answers such a
  race per POST;
- any other failure (the store unreachable, say): raised to every caller of the group.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.cancellation_intake import (
    Original,
    cancelled_originals,
    refused_as_unknown,
)
from services.messaging.envelope import BusinessKey
from services.messaging.intake import (
    Accepted,
    IntakeEntry,
    IntakeError,
    SqlIntakeStore,
    StayWithdrawn,
    UnknownCancelled,
    answer_as_repeat,
    intake_row,
)
from services.messaging.intake_tables import intake_record
from services.messaging.kafka import OutgoingRecord
from services.messaging.outbox import add_many_to_outbox
from services.messaging.withdrawals import (
    record_withdrawals,
    refused_for_withdrawal,
    stored_withdrawals,
)

MAX_GROUP = 200
"""Events per transaction at most: 600 bound values in the duplicate check, well inside
SQLite's limit, and a group short enough that its callers' answers are not held up."""

Answer = Accepted | Exception
First = tuple[str, str]  # message id and payload digest of the event stored under a key


@dataclass(frozen=True, slots=True)
class _Waiting:
    """A POST's event, its outbox record, and where its caller waits for the answer."""

    entry: IntakeEntry
    outgoing: OutgoingRecord
    answer: asyncio.Future[Accepted]


class GroupedIntakeStore:
    """An :class:`~services.messaging.intake.IntakeStore` that commits concurrent events
    together (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        *,
        max_group: int = MAX_GROUP,
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._max_group = max_group
        self._alone = SqlIntakeStore(sessions, owner)
        self._queue: deque[_Waiting] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def record(self, entry: IntakeEntry, outgoing: OutgoingRecord) -> Accepted:
        answer: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(entry, outgoing, answer))
        if self._writer is None:
            # A task, not the first caller: a caller that gives up (cancelled) must not take
            # the others' transaction down with it.
            self._writer = asyncio.create_task(self._write_queued())
        return await answer

    async def _write_queued(self) -> None:
        try:
            while self._queue:
                await self._write(self._take())
        finally:
            self._writer = None
            while self._queue:  # only when the writer itself was cancelled (shutdown)
                self._queue.popleft().answer.cancel()

    def _take(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        while self._queue and len(group) < self._max_group:
            waiting = self._queue.popleft()
            if not waiting.answer.done():  # else its caller gave up before it was written
                group.append(waiting)
        return group

    async def _write(self, group: list[_Waiting]) -> None:
        """Answer every caller of ``group``; no future is left pending, whatever happens."""
        try:
            try:
                answers = await self._store(group)
            except IntegrityError:
                for waiting in group:
                    _settle(waiting.answer, await self._store_alone(waiting))
                return
            except Exception as exc:
                answers = [exc] * len(group)
            for waiting, answer in zip(group, answers, strict=True):
                _settle(waiting.answer, answer)
        finally:
            for waiting in group:
                waiting.answer.cancel()  # does nothing to an answered one

    async def _store(self, group: Sequence[_Waiting]) -> list[Answer]:
        if not group:
            return []
        async with self._sessions.begin() as session:
            stored = await _stored(session, {w.entry.key for w in group})
            answers, new = answer_group([w.entry for w in group], stored)
            # one more SELECT, for the stays the new entries name (none when none does)
            withdrawn = await stored_withdrawals(session, [group[i].entry for i in new])
            new = _refuse_withdrawn(group, answers, new, withdrawn)
            # and one for the messages the new cancellations name (none when none does)
            originals = await cancelled_originals(session, [group[i].entry for i in new])
            new = _refuse_unknown_cancelled(group, answers, new, originals)
            if new:
                await session.execute(
                    intake_record.insert(), [intake_row(group[i].entry) for i in new]
                )
                await record_withdrawals(session, [group[i].entry for i in new], withdrawn)
                await add_many_to_outbox(session, self._owner, [group[i].outgoing for i in new])
        return answers

    async def _store_alone(self, waiting: _Waiting) -> Answer:
        try:
            return await self._alone.record(waiting.entry, waiting.outgoing)
        except Exception as exc:
            return exc


def _refuse_withdrawn(
    group: Sequence[_Waiting], answers: list[Answer], new: list[int], withdrawn: set[str]
) -> list[int]:
    """``new`` without the entries of a stay withdrawn before or earlier in the group
    (answered StayWithdrawn); a withdrawal in the group counts for the entries after it."""
    kept: list[int] = []
    seen = set(withdrawn)
    for i in new:
        entry = group[i].entry
        if refused_for_withdrawal(entry, seen):
            answers[i] = StayWithdrawn()
            continue
        if entry.withdraws and entry.stay is not None:
            seen.add(entry.stay)
        kept.append(i)
    return kept


def _refuse_unknown_cancelled(
    group: Sequence[_Waiting],
    answers: list[Answer],
    new: list[int],
    stored: dict[BusinessKey, Original],
) -> list[int]:
    """``new`` without the cancellations of a message neither stored nor earlier in the
    group (answered UnknownCancelled)."""
    kept: list[int] = []
    known = dict(stored)
    for i in new:
        entry = group[i].entry
        if refused_as_unknown(entry, known):
            answers[i] = UnknownCancelled()
            continue
        known[entry.key] = Original(entry.pseudonym, entry.event_code)
        kept.append(i)
    return kept


def answer_group(
    entries: Sequence[IntakeEntry], stored: dict[BusinessKey, First]
) -> tuple[list[Answer], list[int]]:
    """Each entry's answer, in order, and the positions of those to insert: the first entry
    of a key not ``stored``. A later entry of the same key is the first one's repeat."""
    first = dict(stored)
    answers: list[Answer] = []
    new: list[int] = []
    for position, entry in enumerate(entries):
        seen = first.get(entry.key)
        if seen is None:
            first[entry.key] = (entry.message_id, entry.payload_sha256)
            answers.append(Accepted(entry.message_id, duplicate=False))
            new.append(position)
            continue
        try:
            answers.append(answer_as_repeat(entry, *seen))
        except IntakeError as exc:
            answers.append(exc)
    return answers, new


async def _stored(session: AsyncSession, keys: Collection[BusinessKey]) -> dict[BusinessKey, First]:
    """The stored events among ``keys``, with one SELECT (a row-value IN: SQLite 3.15+ and
    PostgreSQL)."""
    c = intake_record.c
    rows = await session.execute(
        select(c.source_system, c.source_event_id, c.version, c.message_id, c.payload_sha256).where(
            tuple_(c.source_system, c.source_event_id, c.version).in_(
                [(k.source, k.source_event_id, k.version) for k in keys]
            )
        )
    )
    return {
        BusinessKey(r.source_system, r.source_event_id, r.version): (r.message_id, r.payload_sha256)
        for r in rows
    }


def _settle(future: asyncio.Future[Accepted], answer: Answer) -> None:
    if future.done():  # its caller was cancelled meanwhile; the event is stored all the same
        return
    if isinstance(answer, Accepted):
        future.set_result(answer)
    else:
        future.set_exception(answer)
