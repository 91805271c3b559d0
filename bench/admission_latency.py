"""Intake-to-confirmed latency of admission notices through the full embedded stack.

    .venv/bin/python bench/admission_latency.py [--count 100] [--rate 10]

Posts ``count`` admissions at ``rate`` per second to adapter_takecare over HTTP and takes,
for each, the time from just before the POST to the router's ``confirmed_at`` (same machine,
same clock). In the same run it measures a baseline on the same Tansu broker: one bare
aiokafka produce → consume hop with the same payload. The path to "confirmed" crosses six
Kafka hops, three HTTP calls and five database commits, so the ratio says how much the
broker's guarantees cost over the bare transport. Writes bench/latency-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.demo import demo_settings
from sandbox.scenario import Scenario
from sandbox.stack import Stack
from services.messaging.kafka import ensure_topics
from services.messaging.kafka_connection import KafkaConnection


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def kafka_hop_baseline(kafka: KafkaConnection, payload: bytes, count: int) -> list[float]:
    topic = f"bench.baseline.{uuid.uuid4().hex[:6]}.v1"
    await ensure_topics(kafka, [topic], 1)
    producer = AIOKafkaProducer(**kafka.producer_options(), acks="all", linger_ms=2)
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.client_options(),
        group_id=topic,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await producer.start()
    await consumer.start()
    latencies = []
    try:
        await producer.send_and_wait(topic, payload)  # join the group and warm up
        await consumer.getone()
        for _ in range(count):
            started = time.perf_counter()
            await producer.send_and_wait(topic, payload)
            await consumer.getone()
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="admissions per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="carebridge-bench-") as tmp:
        stack = Stack(
            demo_settings(Path(tmp), admission_confirmation_deadline_s=900), echo=lambda _: None
        )
        stack.start()
        scenario = Scenario(stack, random.Random(1))
        try:
            for _ in range(5):  # warm-up: consumer groups joined, connections open
                mid, _ = scenario.post_admission()
                scenario.wait_for_state(mid, "confirmed", timeout_s=30, destination="treserva")
            posted: list[tuple[str, float]] = []
            for i in range(args.count):
                started = time.time()
                mid, _ = scenario.post_admission()
                posted.append((mid, started))
                print(f"\rposted {i + 1}/{args.count}", end="", flush=True)
                time.sleep(max(0.0, started + 1 / args.rate - time.time()))
            print()
            latencies = []
            for i, (mid, started) in enumerate(posted):
                detail = scenario.wait_for_state(
                    mid, "confirmed", timeout_s=60, destination="treserva"
                )
                treserva = scenario.delivery(detail, "treserva")
                confirmed = datetime.fromisoformat(treserva["confirmed_at"])
                latencies.append((confirmed.timestamp() - started) * 1000)
                print(f"\rconfirmed {i + 1}/{args.count}", end="", flush=True)
            print()
            payload = json.dumps(scenario.message(posted[0][0])).encode()
            baseline = asyncio.run(
                kafka_hop_baseline(stack.kafka_connection(), payload, args.count)
            )
        finally:
            scenario.close()
            stack.stop()
    result = {
        "count": args.count,
        "rate_per_s": args.rate,
        "intake_to_confirmed_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p95": round(pct(latencies, 95), 1),
            "max": round(max(latencies), 1),
        },
        "baseline_kafka_hop_ms": {
            "p50": round(statistics.median(baseline), 2),
            "p95": round(pct(baseline, 95), 2),
        },
    }
    result["ratio_p50_vs_one_kafka_hop"] = round(
        result["intake_to_confirmed_ms"]["p50"] / result["baseline_kafka_hop_ms"]["p50"], 1
    )
    out = Path(__file__).with_name("latency-results.json")
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
