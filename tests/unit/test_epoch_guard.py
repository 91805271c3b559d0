"""The epoch guard tells a lost broker from a slow one, and stands between each consumer's
poll and its handler (services/messaging/broker_epoch.py: EpochGuard, admitted)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.messaging.broker_epoch import (
    EPOCH_TOPIC,
    BrokerDataLost,
    EpochGuard,
    Fence,
    admitted,
)
from services.messaging.kafka import (
    EPOCH_HEADER,
    IncomingRecord,
    InMemoryBus,
    OutgoingRecord,
    PublishError,
    consume_forever,
)
from services.messaging.kafka_connection import plaintext


class Record:
    def __init__(self, value: bytes) -> None:
        self.value = value


class Consumer:
    """What EpochGuard asks of an aiokafka consumer: topics, assign, seek, getmany."""

    def __init__(self, topics: set[str], records: list[Record]) -> None:
        self._topics = topics
        self._records = records

    async def topics(self) -> set[str]:
        return self._topics

    def assign(self, _partitions: list[TopicPartition]) -> None:
        pass

    async def seek_to_beginning(self, _partition: TopicPartition) -> None:
        pass

    async def getmany(self, partition: TopicPartition, **_kw: Any) -> dict[Any, list[Record]]:
        return {partition: self._records} if self._records else {}

    async def stop(self) -> None:
        pass


def guard(consumer: Consumer) -> EpochGuard:
    g = EpochGuard(plaintext("127.0.0.1:1"), "epoch-1")
    g._consumer = consumer
    return g


async def test_the_same_epoch_passes() -> None:
    await guard(Consumer({EPOCH_TOPIC}, [Record(b"epoch-1")])).check()


async def test_a_missing_epoch_topic_is_a_lost_broker() -> None:
    with pytest.raises(BrokerDataLost):
        await guard(Consumer(set(), [])).check()


async def test_another_epoch_is_a_lost_broker() -> None:
    with pytest.raises(BrokerDataLost):
        await guard(Consumer({EPOCH_TOPIC}, [Record(b"epoch-2")])).check()


async def test_a_fetch_that_brings_nothing_in_time_is_a_slow_broker_retried_later() -> None:
    with pytest.raises(PublishError):  # the relay retries; the service does not exit
        await guard(Consumer({EPOCH_TOPIC}, [])).check()


# --- one reading serves every caller that asked before it began ----------------------------


class Counting(Consumer):
    def __init__(self, epoch: bytes) -> None:
        super().__init__({EPOCH_TOPIC}, [Record(epoch)])
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def getmany(self, partition: TopicPartition, **kw: Any) -> dict[Any, list[Record]]:
        self.reads += 1
        await self.gate.wait()
        return await super().getmany(partition, **kw)


async def test_callers_waiting_on_one_reading_share_it_and_later_ones_read_again() -> None:
    consumer = Counting(b"epoch-1")
    g = guard(consumer)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    consumer.gate.clear()
    first = asyncio.create_task(g.check())
    await asyncio.sleep(0)  # the first reading has begun
    waiting = [asyncio.create_task(g.check(since=asked)) for _ in range(3)]
    consumer.gate.set()
    assert await asyncio.gather(first, *waiting) == ["epoch-1"] * 4
    assert consumer.reads == 1  # began after `asked`: it answers the three waiting too
    await g.check()  # asked now: after that reading began, so read again
    assert consumer.reads == 2


async def test_a_caller_who_asked_after_a_reading_began_waits_for_a_new_one() -> None:
    consumer = Counting(b"epoch-1")
    g = guard(consumer)
    consumer.gate.clear()
    first = asyncio.create_task(g.check())
    await asyncio.sleep(0)
    later = asyncio.create_task(g.check())  # polled its batch while the reading ran
    await asyncio.sleep(0)
    consumer.gate.set()
    await asyncio.gather(first, later)
    assert consumer.reads == 2


# --- a consumer admits a batch before its handler sees it ----------------------------------


async def test_the_handler_gets_what_is_admitted_and_a_lost_broker_stops_the_consumer() -> None:
    bus = InMemoryBus()
    await bus.publish_many(
        [
            OutgoingRecord("t", "p", "old copy", {EPOCH_HEADER: "epoch-0"}),
            OutgoingRecord("t", "p", "kept", {EPOCH_HEADER: "epoch-1"}),
            OutgoingRecord("t", "p", "unstamped"),
        ]
    )
    consumer = guard(Counting(b"epoch-1"))
    handled: list[str] = []

    async def handler(batch: list[IncomingRecord]) -> None:
        handled.extend(r.value.decode() for r in batch)

    async def admit(batch: list[IncomingRecord], fetched_at: float) -> list[IncomingRecord]:
        return await admitted(batch, consumer, fetched_at=fetched_at)

    task = asyncio.create_task(
        consume_forever(bus.consumer(["t"], "g"), handler, name="t", admit=admit)
    )
    await wait_until(lambda: bus.committed("t", "g") == 3)
    assert handled == ["kept", "unstamped"]
    # the broker loses its data: the next batch is not handled, the loop ends
    consumer._consumer = Counting(b"epoch-2")
    await bus.publish_many([OutgoingRecord("t", "p", "after", {EPOCH_HEADER: "epoch-1"})])
    with pytest.raises(BrokerDataLost):
        await asyncio.wait_for(task, 5)
    assert handled == ["kept", "unstamped"]
    assert bus.committed("t", "g") == 3


async def test_a_batch_whose_epoch_cannot_be_read_is_read_again_later() -> None:
    bus = InMemoryBus()
    await bus.publish_many([OutgoingRecord("t", "p", "m", {EPOCH_HEADER: "epoch-1"})])
    answers = iter([PublishError("unreachable"), "epoch-1"])
    handled: list[str] = []

    async def admit(batch: list[IncomingRecord], _fetched_at: float) -> list[IncomingRecord]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return batch

    async def handler(batch: list[IncomingRecord]) -> None:
        handled.extend(r.value.decode() for r in batch)

    task = asyncio.create_task(
        consume_forever(bus.consumer(["t"], "g"), handler, name="t", admit=admit)
    )
    try:
        await wait_until(lambda: bus.committed("t", "g") == 1)
    finally:
        task.cancel()
    assert handled == ["m"]


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_arming_the_fence_reads_the_epoch_once_so_the_first_batch_does_not_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = Counting(b"epoch-1")

    async def read(self: EpochGuard) -> str | None:
        consumer.reads += 1
        return "epoch-1"

    monkeypatch.setattr(EpochGuard, "_read", read)
    fence = Fence()
    await fence.arm(plaintext("127.0.0.1:1"), "epoch-1")
    assert consumer.reads == 1  # connected and read before any consumer polls
    assert await fence.admit([], asyncio.get_running_loop().time() - 1) == []
    assert consumer.reads == 1  # a batch polled before that reading began needs no other


async def test_arming_against_a_broker_that_does_not_answer_yet_is_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unreachable(self: EpochGuard) -> str | None:
        raise TimeoutError

    monkeypatch.setattr(EpochGuard, "_read", unreachable)
    fence = Fence()
    await fence.arm(plaintext("127.0.0.1:1"), "epoch-1")  # read again when asked
    with pytest.raises(PublishError):
        await fence.check()
