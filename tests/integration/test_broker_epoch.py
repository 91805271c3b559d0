"""The broker's epoch on a real Tansu: an epoch topic that exists but is empty (its creator
died before writing, as a router exiting after a broker restart can) gets an epoch from the
next reader instead of leaving every service waiting for one (seen in CI: every service
timed out reading it until the test's deadline)."""

import re

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.messaging.broker_epoch import EPOCH_TOPIC, read_epoch
from services.messaging.kafka_connection import plaintext

pytestmark = pytest.mark.integration


async def test_an_empty_epoch_topic_gets_an_epoch(tansu: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=tansu)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(EPOCH_TOPIC, 1, 1)])  # created, nothing written
    finally:
        await admin.close()
    epoch = await read_epoch(plaintext(tansu), timeout_s=5.0)
    assert re.fullmatch(r"[0-9a-f]{32}", epoch)
    assert (
        await read_epoch(plaintext(tansu), timeout_s=5.0) == epoch
    )  # the first record stays the epoch
