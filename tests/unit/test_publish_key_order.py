"""A broker that fails one produce batch and accepts the next must not put a patient's later
record on the topic ahead of an earlier one (seen with Tansu after a data loss: two producers
raced to write a fresh partition, one batch failed with "AlreadyExists", the next went in)."""

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaError

from services.messaging.kafka import OutgoingRecord, publish_in_key_order


@dataclass
class Metadata:
    partition: int
    offset: int


class FlakyBroker:
    """Appends what it accepts to one log; fails the records named in ``fail``. Answers
    asynchronously, so a producer that does not wait sends later records meanwhile."""

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.log: list[str] = []
        self.sent: list[str] = []

    async def send(self, record: OutgoingRecord) -> asyncio.Future[Metadata]:
        self.sent.append(record.value)
        answer: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()

        def reply() -> None:
            if record.value in self.fail:
                answer.set_exception(KafkaError("batch failed"))
            else:
                self.log.append(record.value)
                answer.set_result(Metadata(0, len(self.log) - 1))

        asyncio.get_running_loop().call_later(0.001, reply)
        return answer


def _records(*pairs: tuple[str, str]) -> list[OutgoingRecord]:
    return [OutgoingRecord("carebridge.inbound.v1", key, value, {}) for key, value in pairs]


async def test_a_failed_record_leaves_nothing_of_its_key_behind_it_on_the_topic():
    broker = FlakyBroker(fail={"a1"})
    records = _records(("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("a", "a3"))
    with pytest.raises(KafkaError):
        await publish_in_key_order(broker.send, records)
    assert "a2" not in broker.sent and "a3" not in broker.sent
    assert broker.log == ["b1", "b2"]  # another patient's records are not held up


async def test_each_key_in_order_with_placements_in_the_order_of_the_records():
    broker = FlakyBroker(fail=set())
    records = _records(("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"))
    placements = await publish_in_key_order(broker.send, records)
    assert [broker.log[p.offset] for p in placements] == ["a1", "b1", "a2", "b2"]
    assert broker.log.index("a1") < broker.log.index("a2")
    assert broker.log.index("b1") < broker.log.index("b2")
