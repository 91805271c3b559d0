"""The outbox relay's epoch guard tells a lost broker from a slow one
(services/messaging/broker_epoch.py: EpochGuard)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from services.messaging.broker_epoch import EPOCH_TOPIC, BrokerDataLost, EpochGuard
from services.messaging.kafka import PublishError
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
