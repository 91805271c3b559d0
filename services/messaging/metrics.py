"""Prometheus plumbing every service shares: a registry per app (never the global one, so
tests with many apps in one process do not collide), the ``/metrics`` route, HTTP request
metrics by route template, consumer lag behind a small Protocol (Kafka, and a fake over the
in-memory bus), and the outbox backlog.

What is read from SQL or Kafka is read at scrape time (:class:`Snapshot`), so the numbers are
right straight after a restart: SQL is the system of record. Label values come only from small
fixed sets (route templates, topics, consumer groups, destinations, families, states); never a
pseudonym, a message id or a personnummer.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client import Histogram as _Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.messaging.committed_offsets import KafkaCommittedOffsets
from services.messaging.kafka import InMemoryBus, log_ends
from services.messaging.kafka_connection import KafkaConnection
from services.messaging.outbox import outbox
from services.messaging.publish_watermarks import Reason, broker_recovery, unconfirmed_count

log = logging.getLogger(__name__)

NAMESPACE = "carebridge"
DEFAULT_REPLAY_WINDOW = timedelta(hours=24)  # ServiceSettings.replay_window_s
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class Snapshot(Collector, Protocol):
    """A collector whose values are read (from SQL or Kafka) just before each scrape."""

    async def refresh(self) -> None: ...


def install(
    app: FastAPI,
    registry: CollectorRegistry,
    snapshots: Sequence[Snapshot],
    *,
    token: str | None = None,
) -> None:
    """Serve ``GET /metrics`` from ``registry`` and count the app's HTTP requests.

    It holds counts only, no patient data. With ``token`` (``<PREFIX>METRICS_TOKEN``) a
    scrape must present ``Authorization: Bearer <token>`` or is answered 401; without one it
    is open, for the sandbox and an internal network (deploy/prometheus sends the token)."""
    app.add_middleware(HttpMetrics, registry=registry)
    for snapshot in snapshots:
        registry.register(snapshot)
    lock = asyncio.Lock()  # one refresh at a time: snapshots keep state between scrapes

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token is not None and not bearer_matches(request.headers.get("authorization"), token):
            raise HTTPException(  # answered in the app's shape (services.messaging.problems)
                401,
                "a bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        async with lock:
            for snapshot in snapshots:
                await snapshot.refresh()
            body = generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def bearer_matches(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, presented = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


class HttpMetrics:
    """ASGI middleware: requests and their duration by route template, method and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self._app = app
        labels = ("route", "method", "status")
        self._requests = Counter(
            f"{NAMESPACE}_http_requests",
            "HTTP requests answered, by route template, method and status",
            labels,
            registry=registry,
        )
        self._duration = _Histogram(
            f"{NAMESPACE}_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ("route", "method"),
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self._app(scope, receive, send_status)
        finally:
            # the route's template, never the concrete path (which may hold a message id)
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._requests.labels(route, method, str(status)).inc()
            self._duration.labels(route, method).observe(time.perf_counter() - started)


# --- consumer lag --------------------------------------------------------------------------

Lag = dict[tuple[str, str], int]  # (consumer group, topic) -> records not yet committed


class ConsumerLag(Protocol):
    async def lag(self) -> Lag:
        """Per group and topic: end offsets minus committed offsets, over all partitions."""


class InMemoryConsumerLag:
    """Consumer lag of the in-memory bus (tests)."""

    def __init__(self, bus: InMemoryBus, groups: Mapping[str, Sequence[str]]) -> None:
        self._bus = bus
        self._groups = groups

    async def lag(self) -> Lag:
        return {
            (group, topic): len(self._bus.topics[topic]) - self._bus.committed(topic, group)
            for group, topics in self._groups.items()
            for topic in topics
        }


class KafkaConsumerLag:
    """Consumer lag from the broker: each group's committed offsets
    (:class:`~services.messaging.committed_offsets.KafkaCommittedOffsets`, which leaves the
    groups undisturbed) against the end offsets (high-water marks). The clients start on
    the first call and are reused."""

    def __init__(
        self,
        connection: KafkaConnection,
        groups: Mapping[str, Sequence[str]],
        *,
        timeout_s: float = 3.0,
    ) -> None:
        by_topic: dict[str, list[str]] = {}
        for group, topics in groups.items():
            for topic in topics:
                by_topic.setdefault(topic, []).append(group)
        self._offsets = KafkaCommittedOffsets(connection, by_topic, timeout_s=timeout_s)
        self._timeout_s = timeout_s

    async def lag(self) -> Lag:
        return await asyncio.wait_for(self._lag(), self._timeout_s)

    async def _lag(self) -> Lag:
        from aiokafka import TopicPartition

        committed = await self._offsets.committed()
        meta = await self._offsets.client(None)
        ends = await self._ends(meta, sorted({TopicPartition(t, p) for _, t, p in committed}))
        out: Lag = {}
        for (group, topic, p), done in committed.items():
            behind = max(ends.get(TopicPartition(topic, p), 0) - (done or 0), 0)
            out[(group, topic)] = out.get((group, topic), 0) + behind
        return out

    async def _ends(self, meta: Any, partitions: list[Any]) -> dict[Any, int]:
        """The log end offset of each partition (services.messaging.kafka.log_ends: the same
        answer on both brokers)."""
        listed: dict[Any, int] = await meta.end_offsets(partitions)
        pending = sorted(tp for tp in partitions if listed.get(tp, 0) > 0)
        if not pending:
            return dict(listed)
        meta.assign(pending)
        return await log_ends(meta, pending, listed)

    async def aclose(self) -> None:
        await self._offsets.aclose()


class LagSnapshot:
    """``carebridge_consumer_lag`` from the probe the service put on ``app.state.consumer_lag``
    (none in an app built by a test without one: the family is then empty)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._lag: Lag = {}

    async def refresh(self) -> None:
        probe: ConsumerLag | None = getattr(self._app.state, "consumer_lag", None)
        if probe is None:
            return
        try:
            self._lag = await probe.lag()
        except Exception as exc:  # the broker is away: say so by leaving the series out
            log.warning("consumer lag unavailable", extra={"error": type(exc).__name__})
            self._lag = {}

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            f"{NAMESPACE}_consumer_lag",
            "Records on a topic not yet committed by a consumer group",
            labels=("group", "topic"),
        )
        for (group, topic), lag in sorted(self._lag.items()):
            family.add_metric([group, topic], lag)
        yield family


# --- the outbox ----------------------------------------------------------------------------


class OutboxSnapshot:
    """Unpublished outbox rows of one owner, by topic, and the age of the oldest; the rows
    the consumers have not yet confirmed (what a broker data loss now would publish again,
    :mod:`services.messaging.publish_watermarks`); and what the broker's data losses made
    it publish again."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        clock: Callable[[], datetime],
        *,
        replay_window: timedelta = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._clock = clock
        self._replay_window = replay_window
        self._pending: dict[str, int] = {}
        self._oldest_s = 0.0
        self._unconfirmed = 0
        self._recoveries = 0
        self._last: dict[str, int] = {}  # the last recovery: reason -> rows published again
        self._kept: dict[str, int] = {}  # the last recovery: why -> rows not published again

    async def refresh(self) -> None:
        now = self._clock()
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(outbox.c.topic, func.count(), func.min(outbox.c.created_at))
                    .where(outbox.c.owner == self._owner, outbox.c.published_at.is_(None))
                    .group_by(outbox.c.topic)
                )
            ).all()
            self._unconfirmed = await unconfirmed_count(
                session, self._owner, now - self._replay_window
            )
            recoveries = broker_recovery.c
            self._recoveries = int(
                await session.scalar(select(func.count()).where(recoveries.owner == self._owner))
                or 0
            )
            last = (
                await session.execute(
                    select(recoveries.reasons, recoveries.confirmed, recoveries.unread)
                    .where(recoveries.owner == self._owner)
                    .order_by(recoveries.id.desc())
                    .limit(1)
                )
            ).first()
        self._last = {str(k): int(v) for k, v in (last.reasons if last else {}).items()}
        self._kept = {"confirmed": last.confirmed, "unread": last.unread} if last else {}
        self._pending = {str(r[0]): int(r[1]) for r in rows}
        firsts: list[datetime] = [r[2] for r in rows if r[2] is not None]
        self._oldest_s = (now - min(firsts)).total_seconds() if firsts else 0.0

    def collect(self) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            f"{NAMESPACE}_outbox_pending",
            "Outbox rows not yet published to Kafka, by topic",
            labels=("owner", "topic"),
        )
        for topic, n in sorted(self._pending.items()):
            pending.add_metric([self._owner, topic], n)
        yield pending
        oldest = GaugeMetricFamily(
            f"{NAMESPACE}_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished outbox row (0 when none waits)",
            labels=("owner",),
        )
        oldest.add_metric([self._owner], max(self._oldest_s, 0.0))
        yield oldest
        unconfirmed = GaugeMetricFamily(
            f"{NAMESPACE}_outbox_unconfirmed",
            "Published outbox rows within the replay window that the consumers have not "
            "confirmed yet: what a broker data loss now would publish again",
            labels=("owner",),
        )
        unconfirmed.add_metric([self._owner], self._unconfirmed)
        yield unconfirmed
        recoveries = CounterMetricFamily(
            f"{NAMESPACE}_broker_recoveries",
            "Broker data losses (a new broker epoch) this owner recovered from",
            labels=("owner",),
        )
        recoveries.add_metric([self._owner], self._recoveries)
        yield recoveries
        republished = GaugeMetricFamily(
            f"{NAMESPACE}_broker_recovery_republished",
            "Outbox rows the last broker data loss made this owner publish again, by why: "
            "unconfirmed (a consumer group had not committed it), no_offset, no_watermark",
            labels=("owner", "reason"),
        )
        for reason in Reason:
            republished.add_metric([self._owner, reason.value], self._last.get(reason.value, 0))
        yield republished
        kept = GaugeMetricFamily(
            f"{NAMESPACE}_broker_recovery_kept",
            "Outbox rows within the replay window the last broker data loss did not make this "
            "owner publish again, by why: confirmed (every group that must read it had "
            "committed it), unread (a topic no consumer of ours reads)",
            labels=("owner", "why"),
        )
        for why in ("confirmed", "unread"):
            kept.add_metric([self._owner, why], self._kept.get(why, 0))
        yield kept
