"""A consumer whose group join hangs is abandoned after a timeout and made again, so a
service never sits silently unhealthy at start-up."""

import asyncio
from typing import ClassVar

import pytest

from services.messaging import kafka
from services.messaging.kafka_connection import plaintext


class HangingThenFine:
    made: ClassVar[list["HangingThenFine"]] = []

    def __init__(self, hangs: bool) -> None:
        self.hangs, self.stopped, self.started = hangs, False, False
        HangingThenFine.made.append(self)

    async def start(self) -> None:
        if self.hangs:
            await asyncio.Event().wait()
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def assignment(self) -> set[object]:
        return set()  # no partitions: nothing to check of their committed offsets


@pytest.fixture
def clients(monkeypatch):
    HangingThenFine.made = []
    plan: list[bool] = []

    def new(self):
        return HangingThenFine(plan.pop(0))

    monkeypatch.setattr(kafka.KafkaConsumer, "_new", new)
    return plan


async def test_a_hanging_join_is_abandoned_and_tried_again(clients):
    clients.extend([True, False])
    consumer = kafka.KafkaConsumer(plaintext("127.0.0.1:1"), ["t"], "g")
    await consumer.start(timeout_s=0.05)
    first, second = HangingThenFine.made
    assert first.stopped and not first.started
    assert second.started


async def test_it_gives_up_loudly_after_its_attempts(clients):
    clients.extend([True, True, True, True])
    consumer = kafka.KafkaConsumer(plaintext("127.0.0.1:1"), ["t"], "g")
    with pytest.raises(kafka.ConsumerStartFailed):
        await consumer.start(timeout_s=0.05, attempts=3)
    assert len(HangingThenFine.made) == 4  # the first, then one after each timeout
