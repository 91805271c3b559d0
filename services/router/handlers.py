"""Entry points of the router's work: a Kafka batch, or a scheduler tick. Each runs in one
transaction; the Kafka offset is committed by the caller only after it returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import topics
from services.messaging.db import lost_a_conflict, store_unavailable
from services.messaging.envelope import MalformedMessage, read_envelope
from services.messaging.kafka import IncomingRecord
from services.router import subscription_store
from services.router.alerts import check_destinations, remind, resolve_cleared
from services.router.deliveries import (
    RoutingRules,
    accept_message,
    apply_result,
    dispatch_due,
    quarantine_untrusted,
    reject_record,
)
from services.router.episodes import check_gaps
from services.router.retention import prune_payloads
from services.router.silence import check_silent_sources, resolve_spoken_sources
from services.router.subscriptions import Subscription, catalogue_subscriptions
from services.router.watchdog import (
    check_legal_deadlines,
    expire_attempts,
    flag_overdue_confirmations,
    resend_unconfirmed,
    sweep_in_flight,
)

log = logging.getLogger(__name__)


@dataclass
class Router:
    sessions: async_sessionmaker[AsyncSession]
    rules: RoutingRules
    clock: Callable[[], datetime]
    relay_wake: asyncio.Event | None = None
    # silence is judged only over windows this router has watched in full
    _started_at: datetime | None = None
    _silence_checked_at: datetime | None = None
    _pruned_at: datetime | None = None
    _checked_at: datetime | None = None

    async def handle_batch(self, batch: list[IncomingRecord]) -> None:
        async with self.sessions.begin() as session:
            now = self.clock()
            created: list[int] = []
            released: set[str] = set()  # patients whose next delivery a result may free
            subscriptions: list[Subscription] | None = None  # read once per batch
            for record in batch:
                if record.untrusted is not None:
                    await quarantine_untrusted(session, record, self.rules, now)
                    continue
                try:
                    env = read_envelope(record.value)
                except MalformedMessage as exc:
                    await reject_record(session, record, str(exc), now)
                    continue
                if record.topic == topics.INBOUND and env.response_to is None:
                    if subscriptions is None:
                        subscriptions = await subscription_store.load_active(session)
                    created += await accept_message(
                        session, env, record, self.rules, now, subscriptions
                    )
                elif record.topic == topics.RESULTS and env.response_to is not None:
                    patient = await apply_result(session, env, record, self.rules, now)
                    if patient is not None:
                        released.add(patient)
                else:
                    await reject_record(session, record, "message kind does not fit topic", now)
            dispatched = 0
            if created:
                dispatched += await dispatch_due(session, self.rules, now, only=created)
            if released:  # a resolved delivery may release the patient's next one; whatever
                # else became due (a circuit closed, a back-off ended) the tick dispatches
                dispatched += await dispatch_due(session, self.rules, now, patients=released)
        if dispatched:
            self._wake()

    async def tick(self) -> dict[str, int]:
        async with self.sessions.begin() as session:
            now = self.clock()
            done: dict[str, Any] = {
                "expired": await expire_attempts(session, self.rules, now),
                "resent": await resend_unconfirmed(session, self.rules, now),
                "dispatched": 0,
            }
            if self._checks_due(now):
                # Retries that came due, circuits that closed, anything a batch left: a scan
                # of every pending delivery, which a backlog makes long, so once a second.
                done["dispatched"] = await dispatch_due(session, self.rules, now)
                done |= await self._checks(session, now)
        if done["dispatched"]:
            self._wake()
        return done

    def _checks_due(self, now: datetime) -> bool:
        last = self._checked_at
        if last is not None and now - last < self.rules.checks_every:
            return False
        self._checked_at = now
        return True

    async def _checks(self, session: AsyncSession, now: datetime) -> dict[str, int]:
        """The watchdog: overdue confirmations, legal deadlines, incidents, silence, gaps,
        destinations down, payload retention (at most every ``rules.checks_every``)."""
        return {
            "overdue": await flag_overdue_confirmations(
                session, now, self.rules.keyring, sinks=self.rules.alert_sinks
            ),
            "deadlines": await check_legal_deadlines(
                session, now, self.rules.keyring, sinks=self.rules.alert_sinks
            ),
            "resolved": await resolve_cleared(session, now, self.rules.alert_sinks),
            "reminded": await remind(session, now, self.rules.reminders, self.rules.alert_sinks),
            "silent": await self._check_silence(session, now),
            "gaps": await check_gaps(session, now, sinks=self.rules.alert_sinks),
            "down": await check_destinations(
                session, now, self.rules.destination_down_after, self.rules.alert_sinks
            ),
            "pruned": await self._prune(session, now),
        }

    async def _prune(self, session: AsyncSession, now: datetime) -> int:
        """Payload retention, at a low rate (services.router.retention)."""
        retention = self.rules.payload_retention
        if retention is None:
            return 0
        if self._pruned_at is not None and now - self._pruned_at < self.rules.prune_every:
            return 0
        self._pruned_at = now
        return await prune_payloads(session, now, retention=retention)

    async def _check_silence(self, session: AsyncSession, now: datetime) -> int:
        if self._started_at is None:
            self._started_at = now
        last = self._silence_checked_at
        if last is not None and now - last < self.rules.silence_every:
            return 0
        self._silence_checked_at = now
        sinks = self.rules.alert_sinks
        await resolve_spoken_sources(session, now, sinks=sinks)
        watched = [
            r for r in self.rules.silence if now - self._started_at >= timedelta(hours=r.window_h)
        ]
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

    async def run_ticks(self, interval_s: float) -> None:
        """Tick forever; while the database is unreachable, wait and try again."""
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
            await asyncio.sleep(interval_s)

    def _wake(self) -> None:
        if self.relay_wake is not None:
            self.relay_wake.set()
