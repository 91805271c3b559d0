"""The same Kafka contract on three backends: the in-memory fake, the real Tansu broker and
Apache Kafka."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.messaging.committed_offsets import InMemoryCommittedOffsets, KafkaCommittedOffsets
from services.messaging.kafka import (
    InMemoryBus,
    KafkaConsumer,
    KafkaPublisher,
    OutgoingRecord,
    ensure_topics,
)
from services.messaging.kafka_connection import plaintext
from services.messaging.metrics import InMemoryConsumerLag, KafkaConsumerLag

pytestmark = pytest.mark.integration


@dataclass
class Backend:
    publisher: Any
    make_consumer: Any
    topic: str
    make_lag: Any  # {group: [topics]} -> a ConsumerLag probe
    create_topic: Any  # async (name) -> None
    make_offsets: Any  # {topic: [groups]} -> a CommittedOffsets reader


@pytest.fixture(params=["memory", "tansu", pytest.param("apache", marks=pytest.mark.apache_kafka)])
async def backend(request) -> AsyncIterator[Backend]:
    topic = f"test.{uuid.uuid4().hex[:8]}.v1"
    if request.param == "memory":
        bus = InMemoryBus()
        yield Backend(
            bus,
            lambda group: _Started(bus.consumer([topic], group)),
            topic,
            lambda groups: InMemoryConsumerLag(bus, groups),
            _no_topic_needed,
            lambda groups: InMemoryCommittedOffsets(bus, groups),
        )
        return
    broker = "apache_plaintext" if request.param == "apache" else "tansu"
    bootstrap = plaintext(request.getfixturevalue(broker))
    await ensure_topics(bootstrap, [topic], partitions=1)
    publisher = KafkaPublisher(bootstrap)
    await publisher.start()
    consumers: list[KafkaConsumer] = []

    def make(group: str) -> KafkaConsumer:
        consumer = KafkaConsumer(bootstrap, [topic], group)
        consumers.append(consumer)
        return consumer

    probes: list[KafkaConsumerLag | KafkaCommittedOffsets] = []

    def make_lag(groups):
        probe = KafkaConsumerLag(bootstrap, groups, timeout_s=10)
        probes.append(probe)
        return probe

    async def create_topic(name: str) -> None:
        await ensure_topics(bootstrap, [name], partitions=2)

    def make_offsets(groups):
        reader = KafkaCommittedOffsets(bootstrap, groups, timeout_s=10)
        probes.append(reader)
        return reader

    yield Backend(publisher, make, topic, make_lag, create_topic, make_offsets)
    for c in consumers:
        await c.stop()
    for p in probes:
        await p.aclose()
    await publisher.stop()


async def _no_topic_needed(name: str) -> None:
    """The in-memory bus makes a topic on its first record."""


class _Started:
    """Gives the fake consumer the same start/stop surface as the real one."""

    def __init__(self, inner):
        self._inner = inner

    async def start(self):
        pass

    async def stop(self):
        pass

    def __getattr__(self, name):
        return getattr(self._inner, name)


async def poll_until(consumer, count, *, timeout_s=10.0):
    import time

    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.poll(0.2)
    return got


async def test_records_keep_order_key_and_headers(backend):
    records = [
        OutgoingRecord(backend.topic, "patient-a", f'{{"n": {i}}}', {"attempt": str(i)})
        for i in range(20)
    ]
    await backend.publisher.publish_many(records)
    consumer = backend.make_consumer(f"g-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    got = await poll_until(consumer, 20)
    assert [r.value for r in got] == [r.value.encode() for r in records]
    assert {r.key for r in got} == {"patient-a"}
    assert got[3].headers == {"attempt": "3"}


async def test_committed_offsets_are_not_delivered_again_to_the_group(backend):
    group = f"g-{uuid.uuid4().hex[:6]}"
    await backend.publisher.publish_many([OutgoingRecord(backend.topic, "k", "one")])
    first = backend.make_consumer(group)
    await first.start()
    assert len(await poll_until(first, 1)) == 1
    await first.commit()
    await first.stop()
    await backend.publisher.publish_many([OutgoingRecord(backend.topic, "k", "two")])
    second = backend.make_consumer(group)
    await second.start()
    got = await poll_until(second, 1)
    assert [r.value for r in got] == [b"two"]


async def test_consumer_lag_is_what_a_group_has_not_committed(backend):
    group = f"g-{uuid.uuid4().hex[:6]}"
    await backend.publisher.publish_many(
        [OutgoingRecord(backend.topic, "k", str(n)) for n in range(5)]
    )
    probe = backend.make_lag({group: [backend.topic]})
    assert await probe.lag() == {(group, backend.topic): 5}  # nothing committed yet
    consumer = backend.make_consumer(group)
    await consumer.start()
    assert len(await poll_until(consumer, 5)) == 5
    await consumer.commit()
    assert await probe.lag() == {(group, backend.topic): 0}
    await backend.publisher.publish_many([OutgoingRecord(backend.topic, "k", "late")])
    assert await probe.lag() == {(group, backend.topic): 1}


async def test_rewind_rereads_an_uncommitted_batch(backend):
    group = f"g-{uuid.uuid4().hex[:6]}"
    await backend.publisher.publish_many(
        [OutgoingRecord(backend.topic, "k", v) for v in ("a", "b")]
    )
    consumer = backend.make_consumer(group)
    await consumer.start()
    assert len(await poll_until(consumer, 2)) == 2
    await consumer.rewind()  # the handler failed: nothing was committed
    again = await poll_until(consumer, 2)
    assert [r.value for r in again] == [b"a", b"b"]


async def test_consumer_lag_covers_every_group_and_topic_it_is_given(backend):
    """Reading one group's partitions must not lose the others' (a metadata refresh after an
    assignment covers only the assigned topics)."""
    other = f"test.{uuid.uuid4().hex[:8]}.v1"
    await backend.create_topic(other)
    await backend.publisher.publish_many(
        [OutgoingRecord(backend.topic, "k", "a"), OutgoingRecord(backend.topic, "k", "b")]
    )
    await backend.publisher.publish_many([OutgoingRecord(other, "k", "c")])
    probe = backend.make_lag({"first": [backend.topic], "second": [other]})
    assert await probe.lag() == {("first", backend.topic): 2, ("second", other): 1}


async def test_each_record_is_where_the_broker_said_it_put_it(backend):
    """The placements the publisher returns (kept in the outbox, so that after a broker data
    loss only what the consumers had not committed is published again) are the partitions
    and offsets a consumer reads the records at."""
    first = [OutgoingRecord(backend.topic, f"k{i % 3}", f"a{i}") for i in range(7)]
    second = [OutgoingRecord(backend.topic, f"k{i % 3}", f"b{i}") for i in range(5)]
    placed = await backend.publisher.publish_many(first)
    placed += await backend.publisher.publish_many(second)
    consumer = backend.make_consumer(f"g-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    got = await poll_until(consumer, 12)
    at = {(r.partition, r.offset): r.value for r in got}
    assert [at.get((p.partition, p.offset)) for p in placed] == [
        r.value.encode() for r in first + second
    ]


async def test_committed_offsets_are_unknown_until_the_group_commits(backend):
    group = f"g-{uuid.uuid4().hex[:6]}"
    await backend.publisher.publish_many(
        [OutgoingRecord(backend.topic, "k", str(n)) for n in range(3)]
    )
    reader = backend.make_offsets({backend.topic: [group]})
    assert await reader.committed() == {(group, backend.topic, 0): None}
    consumer = backend.make_consumer(group)
    await consumer.start()
    assert len(await poll_until(consumer, 3)) == 3
    await consumer.commit()
    assert await reader.committed() == {(group, backend.topic, 0): 3}
