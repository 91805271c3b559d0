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
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client import Histogram as _Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.messaging.kafka import InMemoryBus
from services.messaging.outbox import outbox

log = logging.getLogger(__name__)

NAMESPACE = "carebridge"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class Snapshot(Collector, Protocol):
    """A collector whose values are read (from SQL or Kafka) just before each scrape."""

    async def refresh(self) -> None: ...


def install(app: FastAPI, registry: CollectorRegistry, snapshots: Sequence[Snapshot]) -> None:
    """Serve ``GET /metrics`` from ``registry`` and count the app's HTTP requests.

    Not behind a token: it holds counts only, no patient data, and Prometheus scrapes it
    on the internal network (see deploy/prometheus.yml)."""
    app.add_middleware(HttpMetrics, registry=registry)
    for snapshot in snapshots:
        registry.register(snapshot)
    lock = asyncio.Lock()  # one refresh at a time: snapshots keep state between scrapes

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        async with lock:
            for snapshot in snapshots:
                await snapshot.refresh()
            body = generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


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
    """Consumer lag from the broker: each group's committed offsets against the end offsets
    (high-water marks). The clients start on the first scrape and are reused."""

    def __init__(
        self, bootstrap: str, groups: Mapping[str, Sequence[str]], *, timeout_s: float = 3.0
    ) -> None:
        self._bootstrap = bootstrap
        self._groups = groups
        self._timeout_s = timeout_s
        self._admin: Any = None
        self._consumer: Any = None

    async def lag(self) -> Lag:
        return await asyncio.wait_for(self._lag(), self._timeout_s)

    async def _lag(self) -> Lag:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
            await consumer.start()
            self._consumer = consumer
        await self._consumer.topics()  # refresh metadata: partitions of every topic
        out: Lag = {}
        for group, topics in self._groups.items():
            committed = await self._admin.list_consumer_group_offsets(group)
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(self._consumer.partitions_for_topic(topic) or ())
            ]
            ends = await self._consumer.end_offsets(partitions) if partitions else {}
            for tp in partitions:
                done = committed.get(tp)
                offset = done.offset if done is not None and done.offset >= 0 else 0
                out[(group, tp.topic)] = out.get((group, tp.topic), 0) + max(
                    ends.get(tp, 0) - offset, 0
                )
        return out

    async def aclose(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()


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
    """Unpublished outbox rows of one owner, by topic, and the age of the oldest."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._clock = clock
        self._pending: dict[str, int] = {}
        self._oldest_s = 0.0

    async def refresh(self) -> None:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(outbox.c.topic, func.count(), func.min(outbox.c.created_at))
                    .where(outbox.c.owner == self._owner, outbox.c.published_at.is_(None))
                    .group_by(outbox.c.topic)
                )
            ).all()
        self._pending = {str(r[0]): int(r[1]) for r in rows}
        firsts: list[datetime] = [r[2] for r in rows if r[2] is not None]
        self._oldest_s = (self._clock() - min(firsts)).total_seconds() if firsts else 0.0

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
