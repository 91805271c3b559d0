"""One router replica at a time does the watchdog's work, and another takes it over when the
holder dies (services/router/routing/watchdog_lease.py). The lease lives in PostgreSQL,
where replicas share a database; on SQLite one router owns it and always holds it."""

from __future__ import annotations

import asyncio

import pytest

from services.router.routing.handlers import Router
from services.router.routing.watchdog_lease import hold
from tests.support.database import backend_name
from tests.support.router import Clock, routing_rules, started

postgres_only = pytest.mark.skipif(
    backend_name() != "postgresql", reason="replicas share a database on PostgreSQL only"
)


async def replica(sessions, instance: str, lease_s: float) -> Router:
    router: Router = await started(
        Router(
            sessions=sessions,
            rules=routing_rules(instance=instance),
            clock=Clock(),
            lease_s=lease_s,
        )
    )
    return router


@postgres_only
async def test_one_replica_holds_the_lease_and_renews_it(sessions):
    async with sessions.begin() as s:
        assert await hold(s, "router", 30)
    async with sessions.begin() as s:
        assert not await hold(s, "router_2", 30)  # held, not run out
    async with sessions.begin() as s:
        assert await hold(s, "router", 30)  # its holder renews it


@postgres_only
async def test_only_the_holder_ticks_and_another_takes_over_when_it_stops(sessions):
    first = await replica(sessions, "router", lease_s=1.0)
    second = await replica(sessions, "router_2", lease_s=1.0)
    assert "expired" in await first.tick()  # the watchdog's work, done
    assert await second.tick() == {"jumped": 0, "lease_elsewhere": 1}
    # the first dies: nobody renews its lease; the second takes over once it ran out
    deadline = asyncio.get_running_loop().time() + 10
    while "lease_elsewhere" in (done := await second.tick()):
        assert asyncio.get_running_loop().time() < deadline, "the lease was never taken over"
        await asyncio.sleep(0.1)
    assert "expired" in done
    assert await first.tick() == {"jumped": 0, "lease_elsewhere": 1}  # back: it waits now


async def test_a_router_alone_on_sqlite_always_holds_it(sessions):
    if backend_name() == "postgresql":
        pytest.skip("SQLite's case")
    async with sessions.begin() as s:
        assert await hold(s, "router", 1)
        assert await hold(s, "router_2", 1)
