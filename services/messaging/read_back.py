"""Confirmation by read-back: for a destination that pushes no receipt (kvittens), the adapter
reads each delivered record back from the journal's API, by its Idempotency-Key (the broker's
message id), at intervals until it is found or the delivery's confirmation deadline passes.

Found, it becomes a receipt exactly as a pushed one does (:func:`accept_receipt`: a signed
response message on ``carebridge.results.v1`` through the outbox, recorded once), so the
router confirms the delivery without knowing how. Not found by the deadline, the read-back
stops; the router's watchdog raises the silent-drop alert and sends the notice again, and
that delivery schedules a new read-back.

A 404 means "not there yet"; a 5xx, a timeout or a refused connection is tried again at the
next interval, as is any other error answer (logged: a 401 is a credential to fix). What is
pending lives in the adapter's database (:mod:`services.messaging.read_back_store`), so a
restart resumes it. The time a read-back has left is measured on the monotonic clock
(:func:`services.messaging.read_back_store.remaining`), so a step of the wall clock neither
ends the pending read-backs at their next look nor prolongs them. The loop sleeps until the
next check is due or a new read-back is scheduled; it never polls an empty table. Nothing
about the patient is logged: the GET's body is read for the record's id and time only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import read_back_store as store
from services.messaging.clock import boot_id
from services.messaging.db import store_unavailable
from services.messaging.envelope import System
from services.messaging.journal_client import DeliveryError, RecordReader, StoredRecord
from services.messaging.read_back_store import ReadBackTerms
from services.messaging.receipts import READ_BACK_PREFIX, Receipt, accept_receipt
from services.messaging.tracing import continue_or_start

log = logging.getLogger(__name__)


def receipt_id(destination: str, message_id: str) -> str:
    """The dedup key of a read-back's receipt: one per message and destination."""
    return f"{READ_BACK_PREFIX}{destination}:{message_id}"


class ReadBackPoller:
    """Checks the adapter's pending read-backs when they are due (:meth:`run`)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        readers: Mapping[System, RecordReader],
        terms: Mapping[System, ReadBackTerms],
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] | None = None,
        relay_wake: asyncio.Event | None = None,
        batch: int = 200,
        max_in_flight: int = 16,
    ) -> None:
        """``monotonic``: the monotonic clock the deliveries scheduled on (None: deadlines
        by the wall clock only)."""
        self._sessions = sessions
        self._owner = owner
        self._readers = dict(readers)
        self._terms = dict(terms)
        self._destinations = sorted(system.value for system in self._readers)
        self._clock = clock
        self._monotonic = monotonic
        self._relay_wake = relay_wake
        self._batch = batch
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # no check is planned further ahead than this (first look or next interval)
        self._horizon_s = max(
            (max(t.first_check_s, t.interval_s) for t in self._terms.values()), default=30.0
        )
        self.wake = asyncio.Event()  # set when a read-back is scheduled

    async def run(self) -> None:
        """Check what is due, then sleep until the next check is due or :attr:`wake` is
        set; forever. An unreachable database is waited out, not fatal."""
        failures = 0
        while True:
            self.wake.clear()  # before looking: a read-back scheduled meanwhile is seen
            try:
                checked = await self.check_due()
                wait = None if checked >= self._batch else await self.seconds_to_next()
                failures = 0
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                failures += 1
                wait = min(0.2 * 2**failures, 5.0)
                log.warning(
                    "read-back: database unavailable, trying again",
                    extra={"owner": self._owner, "error": type(exc).__name__, "retry_in_s": wait},
                )
                await asyncio.sleep(wait)
                continue
            if checked >= self._batch:
                continue  # more are due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)

    async def seconds_to_next(self) -> float | None:
        """Seconds until the next check is due (0 when one is due now); None when nothing
        is pending, and the loop sleeps until a read-back is scheduled."""
        async with self._sessions() as session:
            at = await store.next_due_at(session, self._destinations)
        if at is None:
            return None
        # never longer than one interval: a check planned before the wall clock went back
        # is then found by check_due's horizon
        return min(max(0.0, (at - self._clock()).total_seconds()), self._horizon_s)

    async def check_due(self) -> int:
        """Read back every record due now (at most ``batch``); how many were checked."""
        now = self._clock()
        async with self._sessions() as session:
            rows = await store.due(
                session,
                self._destinations,
                now,
                limit=self._batch,
                horizon=timedelta(seconds=self._horizon_s),
            )
        await asyncio.gather(*(self._check(row) for row in rows))
        return len(rows)

    async def _check(self, row: store.PendingReadBack) -> None:
        system = System(row.destination)
        ids = {"message_id": row.message_id, "destination": row.destination}
        try:
            async with self._in_flight:
                found = await self._readers[system].find(row.path, idempotency_key=row.message_id)
            result = "not found"
        except DeliveryError as exc:
            found, result = None, exc.reason
            log.warning("read-back failed, trying again", extra={**ids, "error": exc.reason})
        if found is not None:
            await self._confirm(system, row, found)
            log.info("read-back found the record", extra={**ids, "checks": row.checks + 1})
            return
        now = self._clock()
        monotonic = self._monotonic() if self._monotonic is not None else None
        left = store.remaining(row, now, monotonic, boot_id())
        async with self._sessions.begin() as session:
            if left <= timedelta(0):
                if await store.give_up(session, row):
                    log.warning(
                        "read-back: not in the journal by the confirmation deadline",
                        extra={**ids, "checks": row.checks + 1, "last_result": result},
                    )
                return
            interval = timedelta(seconds=self._terms[system].interval_s)
            at = now + min(interval, left)  # the last look is at the deadline
            await store.check_again(session, row, at=at, result=result)

    async def _confirm(
        self, system: System, row: store.PendingReadBack, found: StoredRecord
    ) -> None:
        receipt = Receipt(
            receipt_id=receipt_id(row.destination, row.message_id),
            message_id=row.message_id,
            rejected=False,
            reason=None,
            record_id=found.record_id,
            recorded_at=found.recorded_at,
        )
        await accept_receipt(
            receipt,
            responder=system,
            owner=self._owner,
            sessions=self._sessions,
            clock=self._clock,
            relay_wake=self._relay_wake,
            trace=continue_or_start(row.traceparent),
        )
