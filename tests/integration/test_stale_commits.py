"""A commit into a broker that lost its data (CI: a receipt published again after Tansu
restarted empty was skipped by the router, and the delivery stayed unconfirmed until its
re-send). A consumer of the old epoch, committing as the broker died, has its commit retried
against the restarted broker, and Tansu takes it from a member it has never seen: the new
broker holds an offset of the old log. ``KafkaConsumer.start`` does not trust it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from sandbox.stack import free_port, tansu_binary
from services.messaging.committed_offsets import KafkaCommittedOffsets
from services.messaging.kafka import KafkaConsumer, ensure_topics
from services.messaging.kafka_connection import plaintext

pytestmark = pytest.mark.integration

TOPIC, GROUP = "stale.commits.v1", "stale-commits"
OLD_LOG = 50


class Tansu:
    """A Tansu of our own, to restart empty on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.proc.poll() is None, "tansu exited"
            time.sleep(0.05)
        pytest.fail("tansu did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def broker() -> Iterator[Tansu]:
    tansu = Tansu()
    tansu.start()
    yield tansu
    tansu.kill()


async def _produce(bootstrap: str, count: int, tag: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(TOPIC, f"{tag}-{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _stale_commit(broker: Tansu) -> None:
    """The old epoch's consumer reads and commits its log, the broker restarts empty, and
    the same consumer's commit reaches the new broker."""
    await ensure_topics(plaintext(broker.bootstrap), [TOPIC], 1)
    await _produce(broker.bootstrap, OLD_LOG, "old")
    old = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=broker.bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await old.start()
    read = 0
    while read < OLD_LOG:
        read += sum(len(v) for v in (await old.getmany(timeout_ms=1000)).values())
    tp = TopicPartition(TOPIC, 0)
    broker.kill()
    broker.start()
    await ensure_topics(plaintext(broker.bootstrap), [TOPIC], 1)
    # the old member rejoins the new broker's group on its own, and its commit is taken
    deadline = time.monotonic() + 30
    while True:
        try:
            await asyncio.wait_for(old.commit({tp: OLD_LOG}), 10)
            break
        except KafkaError:
            assert time.monotonic() < deadline, "the old member never rejoined"
            await old.getmany(timeout_ms=200)  # drives its rejoin
    with contextlib.suppress(Exception):  # its member is unknown to the new broker
        await asyncio.wait_for(old.stop(), 10)


async def _read_all(consumer: KafkaConsumer, expected: int) -> list[str]:
    values: list[str] = []
    deadline = time.monotonic() + 20
    while len(values) < expected and time.monotonic() < deadline:
        values += [r.value.decode() for r in await consumer.poll(0.5)]
    return values


async def _committed_now(bootstrap: str) -> int | None:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP)
    await probe.start()
    try:
        found = await probe.committed(TopicPartition(TOPIC, 0))
        return None if found is None else int(found)
    finally:
        await probe.stop()


async def test_a_stale_commit_past_the_end_of_the_new_log_is_not_trusted(broker: Tansu) -> None:
    await _stale_commit(broker)
    assert await _committed_now(broker.bootstrap) == OLD_LOG  # what Tansu took
    # it confirms nothing to the publishers' watermarks (publish_watermarks)
    probe = KafkaCommittedOffsets(plaintext(broker.bootstrap), {TOPIC: [GROUP]})
    try:
        assert await probe.committed() == {(GROUP, TOPIC, 0): None}
    finally:
        await probe.aclose()
    await _produce(broker.bootstrap, 5, "new")  # published again after the loss
    consumer = KafkaConsumer(plaintext(broker.bootstrap), [TOPIC], GROUP)
    await consumer.start()  # a start that does not know of the loss (it crashed, say)
    try:
        assert await _read_all(consumer, 5) == [f"new-{i}" for i in range(5)]
    finally:
        await consumer.stop()


async def test_after_a_loss_the_new_log_is_read_from_its_beginning(broker: Tansu) -> None:
    await _stale_commit(broker)
    await _produce(broker.bootstrap, OLD_LOG + 10, "new")  # the stale offset lies inside it
    consumer = KafkaConsumer(plaintext(broker.bootstrap), [TOPIC], GROUP)
    await consumer.start(after_loss=True)
    try:
        assert len(await _read_all(consumer, OLD_LOG + 10)) == OLD_LOG + 10
    finally:
        await consumer.stop()
    assert await _committed_now(broker.bootstrap) is not None
