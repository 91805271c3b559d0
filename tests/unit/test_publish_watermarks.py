"""After the broker lost its data, only what the consumers had not confirmed is published
again (services/messaging/publish_watermarks.py): the relay keeps where each record went,
the epoch watch keeps the lowest offset the consumer groups committed, and a recovery
publishes again the rows at or above it, without an offset, or in a partition nothing
confirmed, and never fewer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.messaging import topics
from services.messaging.broker_epoch import BrokerDataLost, EpochGuard, admitted, watch
from services.messaging.committed_offsets import InMemoryCommittedOffsets
from services.messaging.db import utcnow
from services.messaging.kafka import EPOCH_HEADER, InMemoryBus, OutgoingRecord
from services.messaging.kafka_connection import plaintext
from services.messaging.metrics import OutboxSnapshot
from services.messaging.outbox import OutboxRelay, add_to_outbox, outbox
from services.messaging.publish_watermarks import (
    Confirmations,
    Republished,
    publish_watermark,
    record_recovery,
    record_watermarks,
    republish_unconfirmed,
    unconfirmed_count,
    watermarks,
)

OWNER = "adapter_takecare"
WINDOW = timedelta(hours=24)


# --- the watermark: the lowest offset every group that must read a topic committed ----------


def test_the_watermark_is_the_lowest_offset_of_the_groups_that_must_read_the_topic():
    committed: dict[tuple[str, str, int], int | None] = {
        ("fast", "t", 0): 9,
        ("slow", "t", 0): 4,  # lags behind: holds the watermark down
        ("fast", "t", 1): 3,
        ("slow", "t", 1): 7,
    }
    assert watermarks(committed, {"t": ("fast", "slow")}) == {("t", 0): 4, ("t", 1): 3}


def test_a_group_that_never_committed_confirms_nothing():
    committed = {("fast", "t", 0): 9, ("never", "t", 0): None}
    assert watermarks(committed, {"t": ("fast", "never")}) == {("t", 0): 0}
    # a group the broker did not even answer for counts the same
    assert watermarks({("fast", "t", 0): 9}, {"t": ("fast", "missing")}) == {("t", 0): 0}


def test_topics_no_group_must_read_get_no_watermark():
    assert watermarks({("g", "t", 0): 5}, {"t": ()}) == {}
    assert watermarks({("g", "t", 0): 5}, {}) == {}


async def test_a_watermark_is_raised_never_lowered(sessions):
    now = utcnow()
    async with sessions.begin() as s:
        assert await record_watermarks(s, OWNER, "e1", {("t", 0): 5, ("t", 1): 0}, now) == 1
    async with sessions.begin() as s:
        assert await record_watermarks(s, OWNER, "e1", {("t", 0): 3}, now) == 0
        assert await record_watermarks(s, OWNER, "e1", {("t", 0): 8}, now) == 1
        assert await record_watermarks(s, OWNER, "e2", {("t", 0): 1}, now) == 1
    async with sessions() as s:
        rows = (
            await s.execute(
                select(
                    publish_watermark.c.epoch,
                    publish_watermark.c.kafka_partition,
                    publish_watermark.c.confirmed_offset,
                )
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == [("e1", 0, 8), ("e2", 0, 1)]


# --- a service's outbox, published through the in-memory bus in one broker epoch ----------


class Broker:
    """The in-memory bus behind an epoch guard: ``lose()`` is a Tansu restart."""

    def __init__(self) -> None:
        self.bus = InMemoryBus()
        self.epoch = "e1"

    async def check(self) -> str:
        return self.epoch

    def lose(self, new_epoch: str) -> None:
        self.bus = InMemoryBus()
        self.epoch = new_epoch

    def consume(self, topic: str, group: str, count: int) -> None:
        """``group`` processes the first ``count`` records of ``topic`` and commits."""
        self.bus.set_committed(topic, group, count)


async def stage(sessions, topic: str, n: int, owner: str = OWNER) -> None:
    async with sessions.begin() as s:
        for i in range(n):
            await add_to_outbox(s, owner, OutgoingRecord(topic, f"k{i}", f"{topic}:{i}"))


async def publish_all(sessions, broker: Broker, owner: str = OWNER) -> None:
    relay = OutboxRelay(sessions, broker.bus, owner, guard=broker.check)
    while await relay.publish_pending():
        pass


async def confirm(sessions, broker: Broker, groups=None) -> None:
    """One pass of the epoch watch: read the groups' offsets and keep them for the epoch."""
    groups = groups or topics.confirming_groups(topics.written_by(OWNER))
    confirmations = Confirmations(
        sessions, OWNER, InMemoryCommittedOffsets(broker.bus, groups), groups
    )
    await confirmations.store(broker.epoch, await confirmations.read())


async def lose_data(sessions, broker: Broker, new_epoch: str) -> Republished:
    """The broker restarts empty; the service recovers (broker_epoch.recover's choice)."""
    broker.lose(new_epoch)
    now = utcnow()
    async with sessions.begin() as s:
        return await republish_unconfirmed(s, OWNER, since=now - WINDOW, now=now)


async def republished_values(sessions, broker: Broker) -> list[str]:
    await publish_all(sessions, broker)
    return [r.value.decode() for records in broker.bus.topics.values() for r in records]


async def test_rows_the_consumers_committed_are_not_published_again(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 6)
    await publish_all(sessions, broker)
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 4)
    await confirm(sessions, broker)

    done = await lose_data(sessions, broker, "e2")

    assert done.republished == 2
    assert done.reasons == {"unconfirmed": 2}
    assert done.confirmed == 4
    # at and above the watermark, in order
    assert await republished_values(sessions, broker) == [
        f"{topics.INBOUND}:4",
        f"{topics.INBOUND}:5",
    ]


async def test_a_group_that_never_committed_gets_its_topic_published_again(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 3)
    await stage(sessions, topics.RESULTS, 2)
    await publish_all(sessions, broker)
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 3)  # nothing of RESULTS
    await confirm(sessions, broker)

    done = await lose_data(sessions, broker, "e2")

    assert done.reasons == {"no_watermark": 2}
    assert await republished_values(sessions, broker) == [
        f"{topics.RESULTS}:0",
        f"{topics.RESULTS}:1",
    ]


async def test_a_group_lagging_behind_holds_the_watermark_down(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 6)
    await publish_all(sessions, broker)
    broker.consume(topics.INBOUND, "fast", 6)
    broker.consume(topics.INBOUND, "slow", 2)
    await confirm(sessions, broker, groups={topics.INBOUND: ("fast", "slow")})

    done = await lose_data(sessions, broker, "e2")

    assert done.republished == 4
    assert (await republished_values(sessions, broker))[0] == f"{topics.INBOUND}:2"


async def test_rows_without_an_offset_are_published_again(sessions):
    """Published before offsets were kept (or by a relay without an epoch guard)."""
    broker = Broker()
    await stage(sessions, topics.INBOUND, 3)
    await OutboxRelay(sessions, broker.bus, OWNER).publish_pending()  # no guard: no epoch
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 3)
    await confirm(sessions, broker)

    done = await lose_data(sessions, broker, "e2")

    assert done.reasons == {"no_offset": 3}


async def test_watermarks_of_another_epoch_confirm_nothing(sessions):
    """Offsets are comparable only within the epoch the row went to."""
    broker = Broker()
    async with sessions.begin() as s:  # the old broker had much more: a high watermark
        await record_watermarks(s, OWNER, "e0", {(topics.INBOUND, 0): 100}, utcnow())
    await stage(sessions, topics.INBOUND, 2)
    await publish_all(sessions, broker)  # offsets 0 and 1, in e1

    done = await lose_data(sessions, broker, "e2")

    assert done.reasons == {"no_watermark": 2}


async def test_a_row_confirmed_in_one_epoch_stays_confirmed_after_later_losses(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 4)
    await publish_all(sessions, broker)
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 2)
    await confirm(sessions, broker)
    assert (await lose_data(sessions, broker, "e2")).republished == 2
    await publish_all(sessions, broker)  # rows 2 and 3 again, at offsets 0 and 1 of e2
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 1)  # row 2 confirmed in e2
    await confirm(sessions, broker)

    done = await lose_data(sessions, broker, "e3")

    assert done.republished == 1
    assert done.confirmed == 3
    assert await republished_values(sessions, broker) == [f"{topics.INBOUND}:3"]


async def test_topics_no_consumer_of_ours_reads_are_not_published_again(sessions):
    broker = Broker()
    await stage(sessions, topics.EVENTS, 3, owner=OWNER)
    await stage(sessions, topics.DEAD_LETTER, 1, owner=OWNER)
    await publish_all(sessions, broker)

    done = await lose_data(sessions, broker, "e2")

    assert done.republished == 0
    assert done.unread == 4


async def test_rows_older_than_the_window_are_not_published_again(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 2)
    await publish_all(sessions, broker)
    async with sessions.begin() as s:
        await s.execute(update(outbox).values(published_at=utcnow() - WINDOW * 2))

    done = await lose_data(sessions, broker, "e2")

    assert done.republished == 0


async def test_the_unconfirmed_count_is_what_a_loss_now_would_publish_again(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 5)
    await publish_all(sessions, broker)
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 3)
    await confirm(sessions, broker)
    async with sessions() as s:
        assert await unconfirmed_count(s, OWNER, utcnow() - WINDOW) == 2
    assert (await lose_data(sessions, broker, "e2")).republished == 2


async def test_metrics_show_the_unconfirmed_rows_and_the_last_recovery(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 5)
    await publish_all(sessions, broker)
    broker.consume(topics.INBOUND, topics.ROUTER_GROUP, 3)
    await confirm(sessions, broker)
    snapshot = OutboxSnapshot(sessions, OWNER, utcnow)
    await snapshot.refresh()
    assert _samples(snapshot)["carebridge_outbox_unconfirmed"] == {(OWNER,): 2}
    done = await lose_data(sessions, broker, "e2")
    async with sessions.begin() as s:
        await record_recovery(s, OWNER, "e2", utcnow(), done)

    await snapshot.refresh()

    found = _samples(snapshot)
    assert found["carebridge_broker_recoveries_total"] == {(OWNER,): 1}
    assert found["carebridge_broker_recovery_republished"] == {
        (OWNER, "unconfirmed"): 2,
        (OWNER, "no_offset"): 0,
        (OWNER, "no_watermark"): 0,
    }
    assert found["carebridge_broker_recovery_kept"] == {
        (OWNER, "confirmed"): 3,
        (OWNER, "unread"): 0,
    }


def _samples(snapshot) -> dict[str, dict[tuple[str, ...], float]]:
    out: dict[str, dict[tuple[str, ...], float]] = {}
    for family in snapshot.collect():
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sample.labels.values())] = sample.value
    return out


# --- the relay: the epoch a row is stored with is the one it went to ------------------------


async def test_a_publish_the_broker_lost_during_is_not_marked_published(sessions):
    """The epoch changed between the check before the publish and the one after: the
    records may be in either broker, so they stay unpublished (published again)."""
    broker = Broker()
    checks = iter(["e1", "e2"])

    async def guard() -> str:
        seen = next(checks)
        if seen != "e1":
            raise BrokerDataLost(seen)
        return seen

    await stage(sessions, topics.INBOUND, 2)
    with pytest.raises(BrokerDataLost):
        await OutboxRelay(sessions, broker.bus, OWNER, guard=guard).publish_pending()
    async with sessions() as s:
        marked = await s.scalar(select(outbox.c.published_at).limit(1))
    assert marked is None


async def test_the_relay_keeps_where_each_row_went(sessions):
    broker = Broker()
    await stage(sessions, topics.INBOUND, 3)
    await publish_all(sessions, broker)
    async with sessions() as s:
        rows = (
            await s.execute(
                select(
                    outbox.c.published_epoch,
                    outbox.c.published_partition,
                    outbox.c.published_offset,
                ).order_by(outbox.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("e1", 0, 0), ("e1", 0, 1), ("e1", 0, 2)]


# --- the epoch watch: offsets are kept for an epoch only once it is seen again ------------


class Sightings:
    """The broker's epoch as the watch reads it, one answer per reading."""

    def __init__(self, *epochs: str) -> None:
        self._epochs = list(epochs)

    async def __call__(self) -> str | None:
        return self._epochs.pop(0)


class Watermarks:
    """Confirmations whose reads return the given watermarks in turn; records the stores."""

    def __init__(self, *reads: dict[tuple[str, int], int]) -> None:
        self._reads = list(reads)
        self.stored: list[tuple[str, dict[tuple[str, int], int]]] = []

    async def read(self) -> dict[tuple[str, int], int]:
        return self._reads.pop(0)

    async def store(self, epoch: str, marks: dict[tuple[str, int], int]) -> int:
        self.stored.append((epoch, marks))
        return len(marks)


async def test_offsets_read_just_before_the_broker_changed_are_never_kept():
    """Read after the second sighting of e1, the next sighting is e2: those offsets may be
    e2's (a fresh broker's low offsets would "confirm" e1's rows), so they are dropped."""
    reads = Watermarks({("t", 0): 3}, {("t", 0): 5}, {("t", 0): 1})
    with pytest.raises(BrokerDataLost):
        await asyncio.wait_for(
            watch(
                None,  # type: ignore[arg-type]  # never used: the sightings are injected
                "e1",
                interval_s=0,
                confirmations=reads,  # type: ignore[arg-type]
                current_epoch=Sightings("e1", "e1", "e1", "e2"),
            ),
            5,
        )
    assert reads.stored == [("e1", {("t", 0): 3}), ("e1", {("t", 0): 5})]


# --- a publish racing the loss: the copy in the new broker never overtakes -------------------


class Relayed:
    """A publisher to whatever broker is there now (the relay's producer reconnects)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def publish_many(self, records):
        return await self.broker.bus.publish_many(records)


def epoch_guard(broker: Broker) -> EpochGuard:
    """A real EpochGuard reading the broker's epoch from the fake (the guard's own read is
    tested in test_epoch_guard.py)."""
    guard = EpochGuard(plaintext("127.0.0.1:1"), broker.epoch)

    async def read() -> str:
        return broker.epoch

    guard._read = read  # type: ignore[method-assign]
    return guard


async def test_a_publish_that_lands_in_the_new_broker_never_overtakes_what_recovery_publishes(
    sessions,
):
    """The relay checks e1, the broker loses its data, the publish lands in the empty new
    broker ahead of what recovery publishes again: the consumer in e2 drops those copies,
    so one patient's records arrive in the order they were written."""
    broker = Broker()
    async with sessions.begin() as s:
        for i in range(4):
            await add_to_outbox(s, OWNER, OutgoingRecord(topics.INBOUND, "patient", f"m{i}"))
    relay = OutboxRelay(sessions, Relayed(broker), OWNER, batch_size=2)
    checks = 0

    async def racing_guard() -> str:
        nonlocal checks
        checks += 1
        if checks == 3:  # before the second batch: still e1, then the broker is gone
            seen = broker.epoch
            broker.lose("e2")
            return seen
        if broker.epoch != "e1":
            raise BrokerDataLost(broker.epoch)
        return broker.epoch

    relay._guard = racing_guard
    assert await relay.publish_pending() == 2  # m0, m1 in e1 (not yet consumed)
    with pytest.raises(BrokerDataLost):
        await relay.publish_pending()  # m2, m3 reach e2 first, and stay unpublished
    landed = [r.value.decode() for r in broker.bus.topics[topics.INBOUND]]
    assert landed == ["m2", "m3"]

    now = utcnow()
    async with sessions.begin() as s:
        await republish_unconfirmed(s, OWNER, since=now - WINDOW, now=now)
    guard = epoch_guard(broker)
    relay = OutboxRelay(sessions, Relayed(broker), OWNER, guard=guard.check)
    while await relay.publish_pending():
        pass

    batch = await broker.bus.consumer([topics.INBOUND], topics.ROUTER_GROUP).poll(0)
    raw = [r.value.decode() for r in batch]
    assert raw == ["m2", "m3", "m0", "m1", "m2", "m3"]  # m2 ahead of m0 without the fence
    kept = await admitted(batch, guard, fetched_at=asyncio.get_running_loop().time())
    assert [r.value.decode() for r in kept] == ["m0", "m1", "m2", "m3"]
    assert {r.headers[EPOCH_HEADER] for r in kept} == {"e2"}


async def test_a_consumer_whose_broker_lost_its_data_restarts_before_handling_the_batch():
    """Records polled after the loss, before the epoch watch noticed: even those stamped
    with the consumer's own epoch may be copies that overtook, so none is handled."""
    broker = Broker()
    guard = epoch_guard(broker)
    await broker.bus.publish_many([OutgoingRecord(topics.INBOUND, "p", "m", {EPOCH_HEADER: "e1"})])
    batch = await broker.bus.consumer([topics.INBOUND], topics.ROUTER_GROUP).poll(0)
    broker.lose("e2")
    with pytest.raises(BrokerDataLost):
        await admitted(batch, guard, fetched_at=asyncio.get_running_loop().time())
