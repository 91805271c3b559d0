"""Every FHIR message the end-to-end stacks put on Kafka, judged by the reference validator.

A stack's adapters publish FHIR message Bundles on the inbound topic and FHIR response
Bundles on the results topic. Before a stack stops, :func:`drain` reads both topics from
their beginning to their end (a consumer of its own, no group: nothing of the stack's own
consumers moves) and keeps each record an adapter signed; at the end of the e2e module the
tap asks the validator server (tools/fhir-validator, one per session) about every one of
them. A record that no adapter signed (the forged records of test_forged_records) is the
router's to refuse, not a message of ours, and is only counted.

Values on these topics are the FHIR JSON as it is (payloads are sealed at rest in the
databases, not on Kafka); the signature header is checked as the router checks it, with the
sandbox's public keys.

The tap is active while :func:`tapping` holds it (tests/e2e/conftest.py); ``running`` and
``supervise`` in tests/support/stacks.py drain into it, and do nothing when none is active.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from sandbox.stack import Stack
from services.messaging import topics
from services.messaging.fhir_validator import FhirValidatorError, HttpFhirValidator
from services.messaging.quarantine import NOTICE_EVENT
from services.messaging.record_signing import (
    RecordSignatureError,
    RecordVerifier,
    load_public,
    sandbox_trusted_keys,
)

ADAPTERS = ("adapter_takecare", "adapter_treserva")
FHIR_TOPICS = (topics.INBOUND, topics.RESULTS)
DRAIN_DEADLINE_S = 60.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TappedMessage:
    topic: str
    partition: int
    offset: int
    value: bytes

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class FhirTap:
    """What the module's stacks put on Kafka; ``problems`` says what could not be read."""

    messages: list[TappedMessage] = field(default_factory=list)
    unsigned: int = 0
    problems: list[str] = field(default_factory=list)
    drained: set[int] = field(default_factory=set)  # id() of the stacks read already

    def judge(self, validator_url: str, *, concurrency: int = 2) -> list[str]:
        """One line per message the validator found an error in (or could not judge), and
        per problem: empty when every message passed."""
        return self.problems + _in_thread(_judge(self.messages, validator_url, concurrency))


_active: FhirTap | None = None


@contextlib.contextmanager
def tapping(tap: FhirTap) -> Iterator[FhirTap]:
    global _active
    previous, _active = _active, tap
    try:
        yield tap
    finally:
        _active = previous


def drain(stack: Stack) -> None:
    """Everything on the stack's FHIR topics into the active tap (none: nothing)."""
    tap = _active
    if tap is None or id(stack) in tap.drained:  # a test that stops its stack drains first
        return
    tap.drained.add(id(stack))
    try:
        found, unsigned = _in_thread(_read(stack))
    except (Exception, asyncio.CancelledError) as exc:  # the module fails; the stack stops
        tap.problems.append(f"could not read the FHIR topics: {type(exc).__name__}: {exc}")
        return
    tap.messages += found
    tap.unsigned += unsigned


def _verifier() -> RecordVerifier:
    trusted = {
        signer: {key_id: load_public(public) for key_id, public in ids.items()}
        for signer, ids in sandbox_trusted_keys(ADAPTERS).items()
    }
    return RecordVerifier(trusted, {topic: frozenset(ADAPTERS) for topic in FHIR_TOPICS})


async def _read(stack: Stack) -> tuple[list[TappedMessage], int]:
    verifier = _verifier()
    consumer = AIOKafkaConsumer(
        **stack.kafka_connection().client_options(), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        present = await consumer.topics()  # fetches the metadata partitions_for_topic reads
        parts = [
            TopicPartition(topic, p)
            for topic in FHIR_TOPICS
            if topic in present
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not parts:
            return [], 0
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[TappedMessage] = []
        unsigned = 0
        deadline = time.monotonic() + DRAIN_DEADLINE_S
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the FHIR topics were not read in {DRAIN_DEADLINE_S:.0f} s")
            for part, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    if r.offset >= ends[part]:
                        continue
                    headers = {k: v.decode() for k, v in r.headers}
                    key = r.key.decode() if r.key is not None else None
                    try:
                        verifier.verify(r.topic, key, headers, r.value or b"")
                    except RecordSignatureError:
                        unsigned += 1
                        continue
                    if headers.get("event") == NOTICE_EVENT:
                        continue  # an adapter's quarantine notice: small JSON, not FHIR
                    found.append(TappedMessage(r.topic, r.partition, r.offset, r.value or b""))
        return found, unsigned
    finally:
        await consumer.stop()


async def _judge(messages: list[TappedMessage], url: str, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    async with HttpFhirValidator(url, timeout_s=120.0) as validator:

        async def one(message: TappedMessage) -> list[str]:
            try:
                document = json.loads(message.value)
            except ValueError:
                return [f"{message.where}: the value is not JSON"]
            if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
                return [f"{message.where}: the value is not a FHIR Bundle"]
            name = f"message {document.get('id')} ({message.where})"
            async with gate:
                try:
                    verdict = await validator.validate(message.value)
                except FhirValidatorError as exc:
                    return [f"{name}: not judged: {exc}"]
            return [
                f"{name}: {i.severity} at {i.expression or i.location or '?'}: {i.message}"
                for i in verdict.errors
            ]

        lines = await asyncio.gather(*(one(m) for m in messages))
    return [line for found in lines for line in found]


def _in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on a loop of its own in a thread of its own: the caller may be a
    fixture inside a running loop."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(work))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, name="fhir-tap")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
