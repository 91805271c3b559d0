"""The router's Prometheus metrics, all read from the delivery log at scrape time, so they are
right after a restart and the same on every replica (aggregate replicas with ``max``, not
``sum``). See :func:`install_metrics` for what ``GET /metrics`` serves.

- ``carebridge_delivery_latency_seconds{destination, family, stage}``: a histogram of the time
  from intake (``Bundle.timestamp``, set when the adapter accepted the event) to ``sent`` and
  to ``confirmed``. It is fed from ``delivery_transition`` (append-only) past a watermark, so
  the first scrape after a start counts the whole history and later scrapes only what is new.
  Transitions younger than ``settle`` wait one scrape: on PostgreSQL a lower id can commit
  after a higher one.
- ``carebridge_delivery_attempts_total{destination, family, outcome}``: completed attempts.
- ``carebridge_deliveries{destination, family, state}``, ``carebridge_dead_letter_deliveries``.
- ``carebridge_alerts_open{kind, severity, state}``: incidents not resolved.
- ``carebridge_notifications{channel, state}``: alert notifications pending or failed.
- ``carebridge_rejected_records_total{topic}``: poison records kept for operations.
- consumer lag and the outbox backlog (:mod:`services.messaging.metrics`).

Labels are subscription ids (destinations), event codes, and enum values only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.metrics import (
    DEFAULT_REPLAY_WINDOW,
    NAMESPACE,
    LagSnapshot,
    OutboxSnapshot,
    install,
)
from services.router.routing.deliveries import OUTBOX_OWNER
from services.router.routing.domain import AlertState, DeliveryState
from services.router.routing.tables import (
    alert,
    delivery,
    delivery_attempt,
    delivery_transition,
    message,
    notification,
    rejected_record,
)

# from seconds (a healthy destination) to days (SIP and medication lists may take 72 h)
LATENCY_BUCKETS = (
    *(0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0),
    *(3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0),
)
Counts = dict[tuple[str, ...], int]  # GROUP BY columns -> rows
_BATCH = 5000  # transitions read per scrape: a long history is caught up over a few


def install_metrics(
    app: FastAPI,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    *,
    settle: timedelta = timedelta(seconds=5),
    token: str | None = None,
    replay_window: timedelta = DEFAULT_REPLAY_WINDOW,
) -> CollectorRegistry:
    """Serve the router's ``/metrics`` from a registry of its own (returned for tests)."""
    registry = CollectorRegistry()
    install(
        app,
        registry,
        [
            DeliveryLogSnapshot(sessions, clock, registry, settle=settle),
            OutboxSnapshot(sessions, OUTBOX_OWNER, clock, replay_window=replay_window),
            LagSnapshot(app),
        ],
        token=token,
    )
    return registry


class DeliveryLogSnapshot:
    """Counts from the delivery log, and the latency histogram fed past a watermark."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        registry: CollectorRegistry,
        *,
        settle: timedelta,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._settle = settle
        self._watermark = 0  # last delivery_transition id observed
        self._latency = Histogram(
            f"{NAMESPACE}_delivery_latency_seconds",
            "Time from intake to a delivery's sent and confirmed, by destination and family",
            ("destination", "family", "stage"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._states: Counts = {}
        self._attempts: Counts = {}
        self._alerts: Counts = {}
        self._notifications: Counts = {}
        self._rejected: Counts = {}

    async def refresh(self) -> None:
        async with self._sessions() as session:
            await self._observe_transitions(session)
            self._states = await _grouped(
                session,
                select(delivery.c.destination, message.c.event_code, delivery.c.state, func.count())
                .join(message, message.c.id == delivery.c.message_id)
                .group_by(delivery.c.destination, message.c.event_code, delivery.c.state),
            )
            self._attempts = await _grouped(
                session,
                select(
                    delivery.c.destination,
                    message.c.event_code,
                    delivery_attempt.c.outcome,
                    func.count(),
                )
                .join(delivery, delivery.c.id == delivery_attempt.c.delivery_id)
                .join(message, message.c.id == delivery.c.message_id)
                .where(delivery_attempt.c.outcome.is_not(None))
                .group_by(delivery.c.destination, message.c.event_code, delivery_attempt.c.outcome),
            )
            self._alerts = await _grouped(
                session,
                select(alert.c.kind, alert.c.severity, alert.c.state, func.count())
                .where(alert.c.state != AlertState.RESOLVED.value)
                .group_by(alert.c.kind, alert.c.severity, alert.c.state),
            )
            self._notifications = await _grouped(
                session,
                select(notification.c.channel, notification.c.state, func.count())
                .where(notification.c.state.in_(["pending", "failed"]))
                .group_by(notification.c.channel, notification.c.state),
            )
            self._rejected = await _grouped(
                session,
                select(rejected_record.c.topic, func.count()).group_by(rejected_record.c.topic),
            )

    async def _observe_transitions(self, session: AsyncSession) -> None:
        """Feed the histogram from transitions past the watermark, in id order, stopping at
        the first one younger than ``settle``."""
        rows = (
            await session.execute(
                select(
                    delivery_transition.c.id,
                    delivery_transition.c.from_state,
                    delivery_transition.c.to_state,
                    delivery_transition.c.at,
                    delivery.c.destination,
                    message.c.event_code,
                    message.c.sent_at,
                )
                .join(delivery, delivery.c.id == delivery_transition.c.delivery_id)
                .join(message, message.c.id == delivery.c.message_id)
                .where(delivery_transition.c.id > self._watermark)
                .order_by(delivery_transition.c.id)
                .limit(_BATCH)
            )
        ).all()
        settled_before = self._clock() - self._settle
        for row in rows:
            if row.at > settled_before:
                break
            self._watermark = row.id
            seconds = max((row.at - row.sent_at).total_seconds(), 0.0)
            labels = (row.destination, row.event_code)
            sent = DeliveryState.SENT.value
            confirmed = DeliveryState.CONFIRMED.value
            # a webhook subscriber's 2xx confirms at once: that is its "sent" as well
            if row.to_state == sent or (row.to_state == confirmed and row.from_state != sent):
                self._latency.labels(*labels, "sent").observe(seconds)
            if row.to_state == confirmed:
                self._latency.labels(*labels, "confirmed").observe(seconds)

    def collect(self) -> Iterable[Metric]:
        states = GaugeMetricFamily(
            f"{NAMESPACE}_deliveries",
            "Deliveries by destination, family and state (from the delivery log)",
            labels=("destination", "family", "state"),
        )
        dead = GaugeMetricFamily(
            f"{NAMESPACE}_dead_letter_deliveries",
            "Deliveries in dead letter, waiting for an operator's replay",
            labels=("destination", "family"),
        )
        routes = sorted({(d, f) for d, f, _ in self._states})
        for d, f in routes:
            for state in DeliveryState:  # every state, 0 included, so a drop to 0 shows
                n = self._states.get((d, f, state.value), 0)
                states.add_metric([d, f, state.value], n)
                if state is DeliveryState.DEAD_LETTER:
                    dead.add_metric([d, f], n)
        yield states
        yield dead
        attempts = CounterMetricFamily(
            f"{NAMESPACE}_delivery_attempts",
            "Completed delivery attempts by outcome (ok, transient-error, fatal-error, timeout)",
            labels=("destination", "family", "outcome"),
        )
        for key, n in sorted(self._attempts.items()):
            attempts.add_metric(list(key), n)
        yield attempts
        alerts = GaugeMetricFamily(
            f"{NAMESPACE}_alerts_open",
            "Incidents not resolved, by kind, severity and state (open, acknowledged)",
            labels=("kind", "severity", "state"),
        )
        for key, n in sorted(self._alerts.items()):
            alerts.add_metric(list(key), n)
        yield alerts
        notices = GaugeMetricFamily(
            f"{NAMESPACE}_notifications",
            "Alert notifications pending or failed, by channel",
            labels=("channel", "state"),
        )
        for key, n in sorted(self._notifications.items()):
            notices.add_metric(list(key), n)
        yield notices
        rejected = CounterMetricFamily(
            f"{NAMESPACE}_rejected_records",
            "Kafka records the router could not read, kept for operations",
            labels=("topic",),
        )
        for key, n in sorted(self._rejected.items()):
            rejected.add_metric(list(key), n)
        yield rejected


async def _grouped(session: AsyncSession, query: Select[Any]) -> Counts:
    """``{group columns: count}`` of a GROUP BY whose last column is the count."""
    return {tuple(str(v) for v in r[:-1]): int(r[-1]) for r in (await session.execute(query))}
