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
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client import Histogram as _Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.messaging.kafka import InMemoryBus
from services.messaging.kafka_connection import KafkaConnection
from services.messaging.outbox import outbox

log = logging.getLogger(__name__)

NAMESPACE = "carebridge"
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
            return Response(
                "a bearer token is required\n",
                status_code=401,
                media_type="text/plain",
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
    """Consumer lag from the broker: each group's committed offsets against the end offsets
    (high-water marks). The committed offsets are read by a consumer in each group that
    never subscribes (an OffsetFetch, no JoinGroup, so the group is not disturbed); the
    admin client's OffsetFetch is not one every broker answers (Tansu closes the
    connection). The clients start on the first call and are reused."""

    def __init__(
        self,
        connection: KafkaConnection,
        groups: Mapping[str, Sequence[str]],
        *,
        timeout_s: float = 3.0,
    ) -> None:
        self._connection = connection
        self._groups = groups
        self._timeout_s = timeout_s
        self._consumers: dict[str | None, Any] = {}

    async def lag(self) -> Lag:
        return await asyncio.wait_for(self._lag(), self._timeout_s)

    async def _consumer(self, group: str | None) -> Any:
        from aiokafka import AIOKafkaConsumer

        if group not in self._consumers:
            consumer = AIOKafkaConsumer(
                **self._connection.client_options(), group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            self._consumers[group] = consumer
        return self._consumers[group]

    async def _lag(self) -> Lag:
        from aiokafka import TopicPartition

        meta = await self._consumer(None)
        # Every topic's partitions from one full metadata answer. (consumer.topics() fills a
        # cluster object of its own; the consumer's partitions_for_topic() stayed empty on
        # Apache Kafka, and the probe reported no lag at all.)
        cluster = await meta._client.fetch_all_metadata()
        partitions = {
            topic: [
                TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())
            ]
            for topics in self._groups.values()
            for topic in topics
        }
        ends = await self._ends(meta, [tp for tps in partitions.values() for tp in tps])
        out: Lag = {}
        for group, topics in self._groups.items():
            member = await self._consumer(group)
            for topic in topics:
                for tp in partitions[topic]:
                    done = await member.committed(tp)
                    offset = done if done is not None and done >= 0 else 0
                    out[(group, topic)] = out.get((group, topic), 0) + max(
                        ends.get(tp, 0) - offset, 0
                    )
        return out

    async def _ends(self, meta: Any, partitions: list[Any]) -> dict[Any, int]:
        """The log end offset of each partition. ListOffsets gives it on Apache Kafka; Tansu
        answers with one past the *first* offset of the last record batch, so the last
        batch is read (from the listed end minus one) and its last offset counts: the same
        answer on both brokers."""
        listed: dict[Any, int] = await meta.end_offsets(partitions)
        ends = dict(listed)
        pending = {tp for tp in partitions if listed.get(tp, 0) > 0}
        if not pending:
            return ends
        meta.assign(sorted(pending))
        for tp in pending:
            meta.seek(tp, listed[tp] - 1)
        while pending:
            found = await meta.getmany(*pending, timeout_ms=500)
            if not found:
                break  # nothing more to read: keep what ListOffsets said
            for tp, records in found.items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
                    pending.discard(tp)
        return ends

    async def aclose(self) -> None:
        for consumer in self._consumers.values():
            await consumer.stop()
        self._consumers.clear()


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
