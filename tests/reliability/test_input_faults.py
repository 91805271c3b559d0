"""Faults that come with the input: a source that posts the same event many times at once,
and a poison record on the inbound topic."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN
from services.messaging import topics
from services.messaging.db import make_engine
from services.messaging.kafka_connection import KafkaConnection
from services.router.routing.tables import rejected_record
from tests.support.reliability import delivered_once, post, record_result, stuck, wait_all_confirmed

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def test_duplicate_and_concurrent_posts_create_one_message_each(scenario, supervised):
    events = [sample_admission(scenario.rng, now=datetime.now().astimezone()) for _ in range(10)]
    url = f"{supervised.takecare_adapter_url}/takecare/v1/admissions"

    def post_once(event):
        with httpx.Client(timeout=10) as client:
            res = client.post(
                url, json=event, headers={"authorization": f"Bearer {SANDBOX_INTAKE_TOKEN}"}
            )
        assert res.status_code == 202, res.text
        return res.json()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post_once, [e for e in events for _ in range(6)]))
    ids = sorted({a["messageId"] for a in answers})
    assert len(ids) == len(events)
    assert sum(not a["duplicate"] for a in answers) == len(events)
    wait_all_confirmed(scenario, ids, timeout_s=60)
    counts = delivered_once(scenario, ids)
    record_result(
        "6 concurrent identical posts of each of 10 events",
        messages=len(answers),
        lost=counts["lost"],
        duplicated=counts["duplicated"],
        order_violations=0,
        recovery_s=round(time.monotonic() - started, 1),
    )
    assert counts == {"lost": 0, "duplicated": 0}
    assert scenario.treserva_stats()["stored"] == len(events)


async def _publish_poison(connection: KafkaConnection) -> None:
    producer = AIOKafkaProducer(**connection.producer_options())
    await producer.start()
    try:
        for value in (b"\xff\x00 not json", json.dumps({"resourceType": "Patient"}).encode()):
            await producer.send_and_wait(topics.INBOUND, value, key=b"p" * 32)
    finally:
        await producer.stop()


async def _rejected(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(rejected_record)) or 0)
    finally:
        await engine.dispose()


def test_a_poison_message_is_kept_aside_and_nothing_else_stops(scenario, supervised):
    before = post(scenario, 5)
    started = time.monotonic()
    # as a principal that may write the inbound topic (on Apache Kafka: an adapter's)
    asyncio.run(_publish_poison(supervised.kafka_connection("adapter_takecare")))
    after = post(scenario, 5)
    ids = [m for m, _ in before + after]
    wait_all_confirmed(scenario, ids, timeout_s=60)
    counts = delivered_once(scenario, ids)
    rejected = asyncio.run(_rejected(supervised.database_url("router")))
    record_result(
        "poison records on the inbound topic",
        messages=len(ids) + 2,
        lost=counts["lost"],
        duplicated=counts["duplicated"],
        order_violations=0,
        recovery_s=round(time.monotonic() - started, 1),
    )
    assert rejected == 2
    assert counts == {"lost": 0, "duplicated": 0}
    assert stuck(scenario) == {}
    assert supervised.exited() == []  # no consumer crashed on it
