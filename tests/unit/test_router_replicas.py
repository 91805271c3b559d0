"""Several router replicas on one database: each sweeps only what it dispatched, one probe
per open circuit, an outbox row published once; and the per-family retry terms."""

import asyncio
import random
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.messaging.db import lost_a_conflict, store_unavailable
from services.messaging.kafka import InMemoryBus, OutgoingRecord
from services.messaging.outbox import OutboxRelay, add_to_outbox, pending_count
from services.router.routing import circuit
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery, delivery_transition
from services.router.settings import RouterSettings
from tests.support.database import backend_name
from tests.support.router import T0, Clock, inbound


async def _router(sessions, clock, instance):
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
        instance=instance,
    )
    router = Router(sessions=sessions, rules=rules, clock=clock)
    await router.sync_subscriptions()  # routing reads the journal subscriptions
    return router


async def test_a_restarting_router_sweeps_only_its_own_deliveries(sessions):
    clock = Clock()
    first = await _router(sessions, clock, "router")
    second = await _router(sessions, clock, "router_2")
    await first.handle_batch([inbound(1, patient="a" * 32)])
    await second.handle_batch([inbound(2, patient="b" * 32)])
    async with sessions() as s:
        by = sorted((r.dispatched_by, r.state) for r in (await s.execute(select(delivery))).all())
        reasons = [r.reason for r in (await s.execute(select(delivery_transition))).all()]
    assert by == [("router", "dispatched")] * 2 + [("router_2", "dispatched")] * 2
    assert "attempt 1 by router_2" in reasons  # the timeline says which replica sent it
    assert await second.sweep() == 2  # router_2 restarted: its two, not router's
    assert await second.sweep() == 0
    async with sessions() as s:
        left = (
            await s.execute(
                select(delivery.c.dispatched_by).where(delivery.c.state == "dispatched")
            )
        ).scalars()
        assert sorted(left) == ["router", "router"]


async def test_only_one_replica_claims_the_probe_of_an_open_circuit(sessions):
    policy = circuit.CircuitPolicy(failure_threshold=1, open_s=5)
    async with sessions.begin() as s:
        await circuit.record_failure(s, "treserva", policy, T0)
    async with sessions.begin() as s:
        assert await circuit.probe_sent(s, "treserva", 1, T0 + timedelta(seconds=6))
    async with sessions.begin() as s:
        assert not await circuit.probe_sent(s, "treserva", 2, T0 + timedelta(seconds=6))


async def test_two_relays_of_one_owner_publish_each_row_once(sessions):
    if backend_name() != "postgresql":
        pytest.skip("replicas share an outbox only on PostgreSQL (row locks)")
    async with sessions.begin() as s:
        for i in range(300):
            await add_to_outbox(s, "router", OutgoingRecord("t.v1", f"k{i}", f"v{i}", {}))
    buses = [InMemoryBus(), InMemoryBus()]
    relays = [OutboxRelay(sessions, bus, "router", batch_size=50) for bus in buses]

    async def drain(relay):
        for _ in range(40):  # 300 rows in batches of 50: well within 40 passes
            # a relay that found every row locked by the other (SKIP LOCKED) tries again
            # while rows remain, instead of leaving the whole outbox to the other one
            if not await relay.publish_pending() and not await pending_count(sessions, "router"):
                return
            await asyncio.sleep(0)  # let the other relay take its turn

    await asyncio.gather(*(drain(r) for r in relays))
    published = [r.value for bus in buses for r in bus.topics["t.v1"]]
    assert sorted(published) == sorted(f"v{i}".encode() for i in range(300))
    assert all(bus.topics["t.v1"] for bus in buses)  # both took a share
    assert await pending_count(sessions, "router") == 0


def test_each_family_has_its_own_attempt_budget_and_maximum_age():
    policies = RouterSettings().policies()
    assert policies["admission-notice"].retry.max_attempts == 15
    assert policies["admission-notice-cancelled"].retry.max_attempts == 15
    assert policies["discharge-notice"].retry.max_attempts == 10
    assert policies["medication-list"].retry.max_age_s == 72 * 3600
    assert policies["sip-invitation"].retry.max_age_s == 72 * 3600
    assert policies["discharge-notice"].retry.max_age_s == 24 * 3600


def test_family_terms_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(
        "ROUTER_FAMILY_TERMS",
        '{"discharge-notice": {"max_attempts": 4, "confirmation_deadline_s": 60}}',
    )
    policies = RouterSettings().policies()
    assert policies["discharge-notice"].retry.max_attempts == 4
    assert policies["discharge-notice"].confirmation_deadline == timedelta(seconds=60)
    assert policies["admission-notice"].retry.max_attempts == 10  # the env replaces defaults


def test_an_unknown_family_or_a_bad_value_is_refused():
    with pytest.raises(ValidationError, match="unknown message families: admision"):
        RouterSettings(family_terms={"admision": {"max_attempts": 3}})
    with pytest.raises(ValidationError):
        RouterSettings(family_terms={"sip-update": {"max_attempts": 0}})


class _Orig(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (DBAPIError("connect", {}, _Orig("57P03")), True),  # not yet accepting connections
        (DBAPIError("select", {}, _Orig("08006")), True),  # connection failure
        (DBAPIError("select", {}, _Orig("42P01")), False),  # a bug: no such table
        (IntegrityError("insert", {}, _Orig("23505")), False),
        (ValueError("bug"), False),
    ],
)
def test_a_store_outage_is_told_from_a_bug(exc, unavailable):
    assert store_unavailable(exc) is unavailable


@pytest.mark.parametrize(
    ("exc", "conflict"),
    [
        (DBAPIError("update", {}, _Orig("40P01")), True),  # deadlock detected
        (DBAPIError("update", {}, _Orig("40001")), True),  # serialization failure
        (DBAPIError("select", {}, _Orig("42P01")), False),
        (IntegrityError("insert", {}, _Orig("23505")), False),
        (ValueError("bug"), False),
    ],
)
def test_a_lost_deadlock_is_told_from_a_bug(exc, conflict):
    assert lost_a_conflict(exc) is conflict


async def test_the_tick_loop_runs_again_after_losing_a_deadlock(sessions, monkeypatch):
    """PostgreSQL aborts one of two deadlocked transactions; the tick that lost runs again
    instead of ending the router (seen under the benchmark: tick vs a Kafka batch)."""
    router = await _router(sessions, Clock(), "router")
    calls: list[int] = []

    async def tick():
        calls.append(len(calls))
        if len(calls) == 1:
            raise DBAPIError("update", {}, _Orig("40P01"))
        if len(calls) == 3:
            raise asyncio.CancelledError  # the test's way out of the loop
        return {"dispatched": 0}

    monkeypatch.setattr(router, "tick", tick)
    with pytest.raises(asyncio.CancelledError):
        await router.run_ticks(0)
    assert calls == [0, 1, 2]


async def test_destination_health_shows_the_circuit_and_the_backlog(sessions):
    import httpx

    from services.router.ops.app import create_app
    from services.router.settings import SANDBOX_OPS_TOKEN

    clock = Clock()
    router = await _router(sessions, clock, "router")
    await router.handle_batch([inbound(1, patient="a" * 32), inbound(2, patient="a" * 32)])
    async with sessions.begin() as s:
        for _ in range(5):
            await circuit.record_failure(s, "treserva", circuit.CircuitPolicy(), T0)
    app = create_app(RouterSettings(), sessions=sessions, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://r",
        headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
    ) as client:
        res = await client.get("/api/v1/destinations")
        unauthorised = await client.get("/api/v1/destinations", headers={"authorization": ""})
    assert unauthorised.status_code == 401
    items = {d["destination"]: d for d in res.json()["items"]}
    assert items["treserva"]["circuit"] == "open"
    assert items["treserva"]["failuresInARow"] == 5
    assert items["treserva"]["states"] == {"dispatched": 1, "pending": 1}  # one held back
    assert items["treserva"]["oldestUnconfirmedSince"] == T0.isoformat()
    assert items["primary-care"]["circuit"] == "closed"
