"""Outbox relay: publishes committed rows in order, and keeps them when the broker fails."""

import pytest
from sqlalchemy import select

from services.messaging.kafka import InMemoryBus, OutgoingRecord, PublishError
from services.messaging.outbox import OutboxRelay, add_to_outbox, outbox, pending_count


async def stage(sessions, n):
    async with sessions.begin() as s:
        for i in range(n):
            await add_to_outbox(
                s, "svc", OutgoingRecord("t.v1", f"k{i % 2}", f"v{i}", {"i": str(i)})
            )


async def test_relay_publishes_in_order_and_marks_rows(sessions):
    bus = InMemoryBus()
    await stage(sessions, 5)
    relay = OutboxRelay(sessions, bus, "svc", batch_size=3)
    assert await relay.publish_pending() == 3
    assert await relay.publish_pending() == 2
    assert await relay.publish_pending() == 0
    assert [r.value for r in bus.topics["t.v1"]] == [f"v{i}".encode() for i in range(5)]
    assert await pending_count(sessions, "svc") == 0


async def test_a_failed_publish_loses_nothing(sessions):
    bus = InMemoryBus()
    await stage(sessions, 2)
    relay = OutboxRelay(sessions, bus, "svc")
    bus.fail_next_publish = True
    with pytest.raises(PublishError):
        await relay.publish_pending()
    assert await pending_count(sessions, "svc") == 2
    assert await relay.publish_pending() == 2
    assert len(bus.topics["t.v1"]) == 2


async def test_relays_only_publish_their_own_rows(sessions):
    bus = InMemoryBus()
    await stage(sessions, 1)
    assert await OutboxRelay(sessions, bus, "someone-else").publish_pending() == 0
    async with sessions() as s:
        (row,) = (await s.execute(select(outbox))).all()
    assert row.published_at is None
