"""A journal adapter's Prometheus metrics: HTTP requests by route (intake, ``$validate``,
receipts: a 422 is a rejected event), events accepted per family (from ``intake_record``, so
right after a restart), its outbox backlog and its consumers' lag. Labels are families, topics,
route templates and consumer groups only."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.intake_tables import intake_record
from services.messaging.metrics import (
    DEFAULT_REPLAY_WINDOW,
    NAMESPACE,
    LagSnapshot,
    OutboxSnapshot,
    Snapshot,
    install,
)


def install_adapter_metrics(
    app: FastAPI,
    owner: str,
    sessions: async_sessionmaker[AsyncSession] | None,
    clock: Callable[[], datetime],
    *,
    token: str | None = None,
    replay_window: timedelta = DEFAULT_REPLAY_WINDOW,
) -> CollectorRegistry:
    """Serve the adapter's ``/metrics`` from a registry of its own (returned for tests). An
    app built without a database (HTTP-layer tests) reports HTTP metrics and lag only."""
    registry = CollectorRegistry()
    snapshots: list[Snapshot] = [LagSnapshot(app)]
    if sessions is not None:
        snapshots += [
            IntakeSnapshot(sessions),
            OutboxSnapshot(sessions, owner, clock, replay_window=replay_window),
        ]
    install(app, registry, snapshots, token=token)
    return registry


class IntakeSnapshot:
    """``carebridge_intake_events_total{source, family}``: events accepted and stored. (Two
    adapters sharing one database both report both sources: aggregate with ``max``.)"""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._counts: dict[tuple[str, str], int] = {}

    async def refresh(self) -> None:
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    intake_record.c.source_system, intake_record.c.event_code, func.count()
                ).group_by(intake_record.c.source_system, intake_record.c.event_code)
            )
            self._counts = {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            f"{NAMESPACE}_intake_events",
            "Native events accepted and stored (duplicates not counted), by source and family",
            labels=("source", "family"),
        )
        for key, n in sorted(self._counts.items()):
            family.add_metric(list(key), n)
        yield family
