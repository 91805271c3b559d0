"""Entry points of the router's work: a Kafka batch, or a scheduler tick. Each runs in one
transaction; the Kafka offset is committed by the caller only after it returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import topics
from services.messaging.clock import Reading, jumped
from services.messaging.db import lost_a_conflict, store_unavailable
from services.messaging.envelope import MalformedMessage, read_envelope
from services.messaging.kafka import IncomingRecord
from services.messaging.quarantine import is_notice
from services.router.alerting.incidents import check_destinations, remind, resolve_cleared
from services.router.alerting.rules import AlertingRules
from services.router.alerting.silence import check_silent_sources, resolve_spoken_sources
from services.router.audit.checkpoint_writer import CheckpointWriter
from services.router.audit.retention import RetentionRules, prune_payloads
from services.router.routing import clock_jumps, watchdog_lease
from services.router.routing.deliveries import (
    Inbound,
    RoutingRules,
    accept_messages,
    dispatch_due,
    quarantine_untrusted,
    reject_record,
    report_quarantined,
)
from services.router.routing.episodes import check_gaps
from services.router.routing.results import Result, apply_results
from services.router.routing.watchdog import (
    check_legal_deadlines,
    expire_attempts,
    flag_overdue_confirmations,
    next_due,
    resend_unconfirmed,
    sweep_in_flight,
)
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import catalogue_subscriptions

log = logging.getLogger(__name__)


@dataclass
class Router:
    sessions: async_sessionmaker[AsyncSession]
    rules: RoutingRules
    clock: Callable[[], datetime]
    relay_wake: asyncio.Event | None = None
    # how often each check runs is measured on the monotonic clock, which no step of the
    # wall clock moves (services.messaging.clock); unset, seconds of ``clock`` (a test's
    # clock, which then never jumps)
    monotonic: Callable[[], float] | None = None
    # how long the watchdog's lease lasts unless renewed (services.router.routing.watchdog_lease)
    lease_s: float = 5.0
    # the tick's other rules, per domain: incidents (alerting) and payloads (audit)
    alerting: AlertingRules = field(default_factory=AlertingRules)
    retention: RetentionRules = field(default_factory=RetentionRules)
    # the watchdog's checks (overdue confirmations, legal deadlines, incidents, gaps,
    # destinations down) run at most this often; expiry, resends and dispatch every tick
    checks_every: timedelta = timedelta(0)
    # signed checkpoints of the access log's head, written by the lease's holder outside the
    # tick's transaction (services.router.audit.checkpoint_writer); None: none written
    checkpoints: CheckpointWriter | None = None
    # silence is judged only over windows this router has watched in full
    _started_at: float | None = None
    _silence_checked_at: float | None = None
    _pruned_at: float | None = None
    _checked_at: float | None = None
    _jumps: list[clock_jumps.Jump] = field(default_factory=list)  # recent wall-clock jumps
    _last_reading: Reading | None = None  # this process's latest clock reading

    def __post_init__(self) -> None:
        if self.monotonic is None:
            clock = self.clock
            self.monotonic = lambda: clock().timestamp()

    def _monotonic(self) -> float:
        assert self.monotonic is not None  # set in __post_init__
        return self.monotonic()

    async def handle_batch(self, batch: list[IncomingRecord]) -> None:
        """One transaction per Kafka batch: first the results (they may free a patient's
        next delivery), then the inbound messages, stored set-based; then what became due
        is dispatched. Records of two topics come in no order of their own."""
        async with self.sessions.begin() as session:
            now = (await self._read_clock(session)).wall
            results: list[Result] = []
            accepted: list[Inbound] = []
            for record in batch:
                if record.untrusted is not None:
                    await quarantine_untrusted(session, record, self.rules, now)
                    continue
                if is_notice(record):  # an adapter refused a forged delivery command
                    await report_quarantined(session, record, self.rules, now)
                    continue
                try:
                    env = read_envelope(record.value)
                except MalformedMessage as exc:
                    await reject_record(session, record, str(exc), now)
                    continue
                if record.topic == topics.INBOUND and env.response_to is None:
                    accepted.append(Inbound(env, record))
                elif record.topic == topics.RESULTS and env.response_to is not None:
                    results.append(Result(env, record))
                else:
                    await reject_record(session, record, "message kind does not fit topic", now)
            # patients whose next delivery a result may free
            released = await apply_results(session, results, self.rules, now) if results else set()
            created: list[int] = []
            if accepted:
                subscriptions = await subscription_store.load_active(session)
                created = await accept_messages(
                    session, accepted, self.rules, now, subscriptions, self._jumps
                )
            dispatched = 0
            if created:  # their payloads are in the batch, in clear: not decrypted again
                opened = {i.env.message_id: i.record.value.decode() for i in accepted}
                dispatched += await dispatch_due(
                    session, self.rules, now, only=created, opened=opened
                )
            if released:  # a resolved delivery may release the patient's next one; whatever
                # else became due (a circuit closed, a back-off ended) the tick dispatches
                dispatched += await dispatch_due(session, self.rules, now, patients=released)
        if dispatched:
            self._wake()

    async def tick(self) -> dict[str, int]:
        """The watchdog's round, by the replica that holds its lease; every replica checks
        its own clock for jumps."""
        async with self.sessions.begin() as session:  # short: a lease held, not a long lock
            holder = await watchdog_lease.hold(session, self.rules.instance, self.lease_s)
        async with self.sessions.begin() as session:
            reading = Reading(self.clock(), self._monotonic())
            now = reading.wall
            self._note(reading)
            # first: a jump of the wall clock moves the timers before anything reads them
            jump = await self._check_jump(session, reading)
            if not holder:
                return {"jumped": 0 if jump is None else 1, "lease_elsewhere": 1}
            done: dict[str, Any] = {
                "jumped": 0 if jump is None else 1,
                "expired": await expire_attempts(session, self.rules, now),
                "resent": await resend_unconfirmed(session, self.rules, now),
                "dispatched": 0,
            }
            if self._checks_due(reading.monotonic):
                # Retries that came due, circuits that closed, anything a batch left: a scan
                # of every pending delivery, which a backlog makes long, so once a second.
                done["dispatched"] = await dispatch_due(session, self.rules, now)
                self._jumps = await clock_jumps.recent(session, now)  # other routers' too
                done |= await self._checks(session, now)
        if self.checkpoints is not None:  # this replica holds the lease (returned otherwise)
            done["checkpoint"] = await self.checkpoints.run(
                self.sessions, now=now, monotonic=reading.monotonic
            )
        if done["dispatched"]:
            self._wake()
        return done

    async def _read_clock(self, session: AsyncSession) -> Reading:
        """A batch's reading of the clock. Its timers are set on this reading's scale, so
        a jump since this process last read the clock is handled here, before they are
        written: the tick that found it later moved the batch's new timers, already on the
        new scale, a second time (a notice routed just after a 2 h jump waited 2 h more)."""
        reading = Reading(self.clock(), self._monotonic())
        if self._note(reading):
            await self._check_jump(session, reading)
        return reading

    def _note(self, reading: Reading) -> bool:
        """Keep ``reading`` as this process's latest; whether it is to be checked against
        the database's anchor: the process's first reading (the clock may have jumped while
        it was down), or the wall clock jumped since the one before (the anchor decides
        whether the timers still move: another router of the host may have moved them)."""
        last = self._last_reading
        if last is not None and reading.monotonic < last.monotonic:
            return False  # an older reading (a batch and a tick interleaved): no news
        self._last_reading = reading
        return last is None or bool(jumped(last, reading))

    async def _check_jump(self, session: AsyncSession, reading: Reading) -> clock_jumps.Jump | None:
        jump = await clock_jumps.check(session, reading, hold=self.alerting.alert_hold)
        if jump is not None:
            self._jumps.append(jump)  # stamps from before it are read on the new scale at once
        return jump

    def _checks_due(self, at: float) -> bool:
        last = self._checked_at
        if last is not None and at - last < self.checks_every.total_seconds():
            return False
        self._checked_at = at
        return True

    async def _checks(self, session: AsyncSession, now: datetime) -> dict[str, int]:
        """The watchdog: overdue confirmations, legal deadlines, incidents, silence, gaps,
        destinations down, payload retention (at most every ``checks_every``). After a
        jump of the wall clock, new alerts wait one confirmation interval
        (services.router.routing.clock_jumps); what they would have found is still there after."""
        done = {
            "resolved": await resolve_cleared(session, now, self.rules.alert_sinks),
            "reminded": await remind(session, now, self.alerting.reminders, self.rules.alert_sinks),
            "pruned": await self._prune(session, now),
        }
        if await clock_jumps.alerts_held(session, now):
            return done | {"held": 1}
        sinks = self.rules.alert_sinks
        return done | {
            "overdue": await flag_overdue_confirmations(
                session, now, self.rules.keyring, sinks=sinks
            ),
            "deadlines": await check_legal_deadlines(session, now, self.rules.keyring, sinks=sinks),
            "silent": await self._check_silence(session, now),
            "gaps": await check_gaps(session, now, sinks=sinks),
            "down": await check_destinations(
                session, now, self.alerting.destination_down_after, sinks, self.rules.circuit
            ),
        }

    async def _prune(self, session: AsyncSession, now: datetime) -> int:
        """Payload retention, at a low rate (services.router.audit.retention)."""
        retention = self.retention.payload_retention
        if retention is None:
            return 0
        at = self._monotonic()
        if (
            self._pruned_at is not None
            and at - self._pruned_at < self.retention.prune_every.total_seconds()
        ):
            return 0
        self._pruned_at = at
        return await prune_payloads(session, now, retention=retention)

    async def _check_silence(self, session: AsyncSession, now: datetime) -> int:
        at = self._monotonic()
        if self._started_at is None:
            self._started_at = at
        last = self._silence_checked_at
        if last is not None and at - last < self.alerting.silence_every.total_seconds():
            return 0
        self._silence_checked_at = at
        sinks = self.rules.alert_sinks
        await resolve_spoken_sources(session, now, sinks=sinks)
        watched_s = at - self._started_at
        watched = [r for r in self.alerting.silence if watched_s >= r.window_h * 3600]
        return await check_silent_sources(session, watched, now, sinks=sinks)

    async def sync_subscriptions(self) -> int:
        """Start-up: write the journal adapters' subscriptions from the family catalogue
        (routing reads the subscription table). Returns how many rows changed."""
        async with self.sessions.begin() as session:
            return await subscription_store.sync_catalogue(
                session, catalogue_subscriptions(), self.clock()
            )

    async def sweep(self) -> int:
        """Start-up: retry what was in flight when the router last stopped."""
        async with self.sessions.begin() as session:
            swept = await sweep_in_flight(session, self.rules, self.clock())
        if swept:
            log.warning("in-flight deliveries swept at start-up", extra={"deliveries": swept})
        return swept

    async def next_wait(self, interval_s: float) -> float:
        """Seconds to sleep after a tick: until the earliest timer falls due
        (:func:`~services.router.routing.watchdog.next_due`), the next round of checks, or
        the lease's renewal (a third of its length), whichever comes first; never less than
        ``interval_s``. An idle router so ticks about once per ``checks_every`` instead of
        every ``interval_s``, and a timer due between two ticks is not waited for beyond it.
        A timer a batch sets is at least an attempt's timeout or a back-off away, and the
        batch itself dispatches what it makes due."""
        every = self.checks_every.total_seconds()
        if every <= 0:
            return interval_s  # the checks run at every tick
        longest = self.lease_s / 3
        if self._checked_at is not None:
            longest = min(longest, every - (self._monotonic() - self._checked_at))
        async with self.sessions() as session:
            due = await next_due(session)
        if due is not None:
            longest = min(longest, (due - self.clock()).total_seconds())
        return max(interval_s, longest)

    async def run_ticks(self, interval_s: float) -> None:
        """Tick forever, waking when something falls due (:meth:`next_wait`); while the
        database is unreachable, wait and try again."""
        failures = 0
        while True:
            try:
                await self.tick()
                failures = 0
            except Exception as exc:
                # A tick that lost a deadlock to a Kafka batch (both lock delivery rows and an
                # incident's advisory lock) wrote nothing: it runs again, as the batch does.
                # Under a 1,500-message benchmark on PostgreSQL this ended the router.
                if not (store_unavailable(exc) or lost_a_conflict(exc)):
                    raise
                failures += 1
                log.warning(
                    "tick failed: database unavailable or in conflict",
                    extra={"error": type(exc).__name__, "failures": failures},
                )
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
                continue
            try:
                wait = await self.next_wait(interval_s)
            except Exception as exc:
                if not (store_unavailable(exc) or lost_a_conflict(exc)):
                    raise
                wait = interval_s  # the tick finds out and waits as above
            await asyncio.sleep(wait)

    def _wake(self) -> None:
        if self.relay_wake is not None:
            self.relay_wake.set()
