"""Kafka plumbing behind two small Protocols, with an in-memory fake beside the real thing.

Exceptions::

    KafkaError (base of this module's errors)
     ├── PublishError    a record could not be handed to the broker; the outbox keeps it
     └── TopicsMissing   a needed topic is missing and this principal may not create it

Every client takes its address and channel security from one
:class:`~services.messaging.kafka_connection.KafkaConnection`. Producers enable idempotence
only where the connection says the broker supports it (Apache Kafka, not Tansu); dedup stays
the broker's own job either way (stable message ids, business keys, processed-event
records). Consumers never auto-commit: the service commits the offset after its database
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError as _AioKafkaError
from aiokafka.errors import TopicAlreadyExistsError

from services.messaging.kafka_connection import KafkaConnection
from services.messaging.record_signing import (
    SIGNATURE_HEADER,
    RecordSignatureError,
    RecordSigner,
    RecordVerifier,
)

log = logging.getLogger(__name__)


# On every record an outbox relay publishes with an epoch guard: the broker epoch it found
# just before (signed with the other headers; see broker_epoch.admitted).
EPOCH_HEADER = "broker-epoch"


class BrokerDataLost(Exception):
    """The broker's epoch changed: it lost what this service published (see broker_epoch)."""


class KafkaError(Exception):
    """Base of this module's errors."""


class PublishError(KafkaError):
    """The broker did not acknowledge a record."""


class TopicsMissing(KafkaError):
    """A topic the service needs does not exist and could not be created."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: str | None
    value: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the broker put a record it acknowledged: its partition and offset (Kafka's
    ``RecordMetadata``). The outbox keeps it, so that after the broker lost its data a
    service can tell the records its consumers had committed from those they had not
    (:mod:`services.messaging.publish_watermarks`)."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]
    # Set by consume_forever's verifier: who signed the record, or why it cannot be trusted
    # (a handler quarantines an untrusted record and lets it change nothing).
    signer: str | None = None
    untrusted: str | None = None


class Publisher(Protocol):
    async def publish_many(self, records: Sequence[OutgoingRecord]) -> list[Placement]:
        """Return once every record is acknowledged, with where each went (in the order of
        ``records``); keep per-key order."""


class Consumer(Protocol):
    async def poll(self, timeout_s: float) -> list[IncomingRecord]: ...

    async def commit(self) -> None:
        """Commit the offsets of everything returned by :meth:`poll` so far."""

    async def rewind(self) -> None:
        """Go back to the last committed offsets (after a failed batch)."""


Handler = Callable[[list[IncomingRecord]], Awaitable[None]]
# What a consumer may handle of a batch polled at a loop time (broker_epoch.admitted); it
# raises PublishError while the broker cannot tell.
Admission = Callable[[list[IncomingRecord], float], Awaitable[list[IncomingRecord]]]


def verified(batch: list[IncomingRecord], verifier: RecordVerifier) -> list[IncomingRecord]:
    """The batch with each record's signer, or the reason it cannot be trusted."""
    out = []
    for record in batch:
        try:
            signer = verifier.verify(record.topic, record.key, record.headers, record.value)
        except RecordSignatureError as exc:
            out.append(replace(record, untrusted=f"{type(exc).__name__}: {exc}"[:300]))
            continue
        out.append(replace(record, signer=signer))
    return out


async def consume_forever(
    consumer: Consumer,
    handler: Handler,
    *,
    name: str,
    verifier: RecordVerifier | None = None,
    admit: Admission | None = None,
) -> None:
    """Poll, hand each batch to ``handler`` (which commits the database), then commit offsets.

    With a ``verifier`` every record's signature is checked first (see :func:`verified`);
    with ``admit``, what the handler gets is what it admits (records published into a broker
    that had lost its data are dropped). A handler that raises, or an admission that cannot
    tell, leaves the offsets where they were; the batch is read again after a back-off.
    Handlers must turn bad records into recorded rejections, never exceptions.
    """
    failures = 0
    loop = asyncio.get_running_loop()
    while True:
        batch = await consumer.poll(0.05)
        if not batch:
            continue
        fetched_at = loop.time()
        if verifier is not None:
            batch = verified(batch, verifier)
        try:
            if admit is not None:
                batch = await admit(batch, fetched_at)
            if batch:
                await handler(batch)
        except BrokerDataLost:
            raise  # the service restarts and recovers
        except Exception:
            failures += 1
            delay = min(0.1 * 2**failures, 5.0)
            log.exception(
                "batch failed, will re-read it", extra={"consumer": name, "retry_in_s": delay}
            )
            await asyncio.sleep(delay)
            await consumer.rewind()
            continue
        failures = 0
        await consumer.commit()


# --- the real broker -------------------------------------------------------------------------


class KafkaPublisher:
    def __init__(self, connection: KafkaConnection, signer: RecordSigner | None = None) -> None:
        self._signer = signer
        self._producer = AIOKafkaProducer(
            **connection.producer_options(),
            acks="all",
            linger_ms=2,
            request_timeout_ms=10_000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_many(self, records: Sequence[OutgoingRecord]) -> list[Placement]:
        try:
            return await publish_in_key_order(self._send, records)
        except _AioKafkaError as exc:
            raise PublishError(type(exc).__name__) from exc

    async def _send(self, r: OutgoingRecord) -> Awaitable[Any]:
        value, headers = r.value.encode(), dict(r.headers)
        if self._signer is not None:
            headers[SIGNATURE_HEADER] = self._signer.sign(r.topic, r.key, headers, value)
        sent: Awaitable[Any] = await self._producer.send(
            r.topic,
            value,
            key=r.key.encode() if r.key else None,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        return sent


# enqueue one record; the awaitable it returns resolves to its metadata once acknowledged
Send = Callable[[OutgoingRecord], Awaitable[Awaitable[Any]]]


async def publish_in_key_order(send: Send, records: Sequence[OutgoingRecord]) -> list[Placement]:
    """Publish ``records``, each key's records one after the other: the next record of a key
    is sent only once the one before it is acknowledged; different keys go side by side.

    A broker can fail one produce batch and accept the next one for the same partition (Tansu
    does, when two producers race to write a fresh partition; any broker does once a batch
    expires without a leader). Had a patient's later record been queued behind the failed one,
    it would be on the topic before the earlier one, which the relay then publishes again:
    the patient's order broken. Sending a key's next record only after the acknowledgement of
    the one before means a failure leaves nothing of that key behind it on the topic."""
    chains: dict[tuple[str, str], list[int]] = defaultdict(list)
    unkeyed: list[int] = []
    for i, r in enumerate(records):
        if r.key:
            chains[(r.topic, r.key)].append(i)
        else:
            unkeyed.append(i)  # no order is promised for them
    placements: list[Placement | None] = [None] * len(records)

    async def one_after_another(indexes: list[int]) -> None:
        for i in indexes:
            acknowledged = await (await send(records[i]))
            placements[i] = Placement(acknowledged.partition, acknowledged.offset)

    # every chain runs to its end or its first failure; then the first failure is raised
    outcomes = await asyncio.gather(
        *(one_after_another(ix) for ix in [*chains.values(), *([i] for i in unkeyed)]),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [p for p in placements if p is not None]


async def log_ends(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    listed: dict[Any, int],
    *,
    timeout_s: float = 3.0,
) -> dict[Any, int]:
    """The log end offset of each of ``partitions`` (assigned to ``consumer``), from
    ``listed`` (ListOffsets' answer). Apache Kafka's answer is the end; Tansu answers one
    past the *first* offset of the last record batch, so the last batch is read (from the
    listed end minus one) and its last offset counts: the same answer on both brokers. A
    partition not read within ``timeout_s`` keeps its listed end. Moves the consumer's
    position on those partitions."""
    ends = dict(listed)
    pending = {tp for tp in partitions if listed.get(tp, 0) > 0}
    for tp in pending:
        consumer.seek(tp, listed[tp] - 1)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while pending and asyncio.get_running_loop().time() < deadline:
        # the first fetch after an assignment can come back empty: read until the deadline
        found = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in found.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                pending.discard(tp)
    return ends


class ConsumerStartFailed(Exception):
    """The consumer did not join its group in any of its attempts."""


class KafkaConsumer:
    def __init__(self, connection: KafkaConnection, topics: Sequence[str], group_id: str) -> None:
        self._connection, self._topics, self._group = connection, tuple(topics), group_id
        self._consumer = self._new()

    def _new(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self._topics,
            **self._connection.client_options(),
            **self._connection.consumer_options(),
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
        )

    async def start(
        self, *, timeout_s: float = 20.0, attempts: int = 3, after_loss: bool = False
    ) -> None:
        """Join the group; an attempt that hangs (seen now and then on a loaded machine
        against Tansu) is abandoned after ``timeout_s`` and made again with a new client, so
        a service never sits silently unhealthy at start-up. Then check where the group
        starts reading (:meth:`_distrust_stale_commits`); ``after_loss``: the broker lost
        its data since this service last ran."""
        for attempt in range(1, attempts + 1):
            try:
                await asyncio.wait_for(self._consumer.start(), timeout_s)
                await self._distrust_stale_commits(after_loss)
                return
            except TimeoutError:
                log.warning(
                    "consumer did not join its group in time; trying again",
                    extra={"group": self._group, "attempt": attempt, "timeout_s": timeout_s},
                )
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._consumer.stop(), timeout_s)
                self._consumer = self._new()
        raise ConsumerStartFailed(f"group {self._group} not joined in {attempts} attempts")

    async def _distrust_stale_commits(self, after_loss: bool) -> None:
        """Read the group's partitions from their beginning where the offsets it has
        committed cannot be trusted, and commit that. A consumer of the broker's old epoch
        can commit into the new, empty one: its commit, sent as the broker died, is retried
        against the restarted broker, and Tansu takes a commit from a member it has never
        seen (tried: a restarted Tansu took offset 50 for a partition it held nothing of).
        The new broker then holds an offset of the old log, and the restarted service
        skipped what was published again below it (CI: a receipt lost until its re-send).
        After a loss every record in the broker is newer than the loss, so all of it is
        read (consumers are idempotent); at any start, an offset past the end of its
        partition is such a stale commit."""
        parts = sorted(self._consumer.assignment())
        if not parts:
            return
        first = await self._consumer.beginning_offsets(parts)
        committed = {tp: await self._consumer.committed(tp) for tp in parts}
        listed = await self._consumer.end_offsets(parts)
        doubtful = [tp for tp in parts if (committed[tp] or 0) > listed[tp]]
        ends = await log_ends(self._consumer, doubtful, listed) if doubtful else listed
        reset: dict[TopicPartition, int] = {
            tp: first[tp]
            for tp in parts
            if after_loss or (committed[tp] is not None and committed[tp] > ends[tp])
        }
        for tp in doubtful:  # read from where the group committed, unless reset below
            if tp not in reset and committed[tp] is not None:
                self._consumer.seek(tp, committed[tp])
        if not reset:
            return
        for tp, offset in reset.items():
            self._consumer.seek(tp, offset)
        await self._consumer.commit(reset)
        log.warning(
            "committed offsets not trusted: reading from the beginning",
            extra={"group": self._group, "partitions": len(reset), "after_loss": after_loss},
        )

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float) -> list[IncomingRecord]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000))
        return [
            IncomingRecord(
                topic=m.topic,
                partition=m.partition,
                offset=m.offset,
                key=m.key.decode() if m.key else None,
                value=m.value or b"",
                headers={k: v.decode() for k, v in (m.headers or ())},
            )
            for msgs in batches.values()
            for m in msgs
        ]

    async def commit(self) -> None:
        await self._consumer.commit()

    async def rewind(self) -> None:
        for tp in self._consumer.assignment():
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)


async def ensure_topics(
    connection: KafkaConnection, topics: Sequence[str], partitions: int
) -> None:
    """Create missing topics. Tansu keeps nothing on disk, so every start-up does this. On a
    secured broker an init step creates them, and a service without the Create right only
    finds them there."""
    admin = AIOKafkaAdminClient(**connection.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            # another service may have created it first
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(missing)
                refused = [
                    (name, code)
                    for name, code, *_ in response.topic_errors
                    if code not in (0, TopicAlreadyExistsError.errno)
                ]
                if refused:  # aiokafka reports per-topic errors in the answer, not raised
                    names = ", ".join(f"{n} (error {c})" for n, c in refused)
                    raise TopicsMissing(
                        f"topics missing and not created as {connection.principal}: {names}; "
                        "on a secured broker the admin's init step creates them"
                    )
    finally:
        await admin.close()


# --- the in-memory fake ----------------------------------------------------------------------


class InMemoryBus:
    """A fake Kafka for unit tests: one partition per topic, committed offsets per group."""

    def __init__(self) -> None:
        self.topics: dict[str, list[IncomingRecord]] = defaultdict(list)
        self._committed: dict[tuple[str, str], int] = defaultdict(int)
        self.fail_next_publish = False

    async def publish_many(self, records: Sequence[OutgoingRecord]) -> list[Placement]:
        if self.fail_next_publish:
            self.fail_next_publish = False
            raise PublishError("injected")
        placed = []
        for r in records:
            log_ = self.topics[r.topic]
            placed.append(Placement(0, len(log_)))
            log_.append(
                IncomingRecord(r.topic, 0, len(log_), r.key, r.value.encode(), dict(r.headers))
            )
        return placed

    def consumer(self, topics: Sequence[str], group_id: str) -> InMemoryConsumer:
        return InMemoryConsumer(self, list(topics), group_id)

    def committed(self, topic: str, group_id: str) -> int:
        return self._committed[(topic, group_id)]

    def set_committed(self, topic: str, group_id: str, offset: int) -> None:
        self._committed[(topic, group_id)] = offset


class InMemoryConsumer:
    def __init__(self, bus: InMemoryBus, topics: list[str], group_id: str) -> None:
        self._bus = bus
        self._topics = topics
        self._group = group_id
        self._position = {t: bus.committed(t, group_id) for t in topics}

    async def poll(self, timeout_s: float) -> list[IncomingRecord]:
        out: list[IncomingRecord] = []
        for t in self._topics:
            pending = self._bus.topics[t][self._position[t] :]
            out.extend(pending)
            self._position[t] += len(pending)
        if not out:
            await asyncio.sleep(min(timeout_s, 0.01))
        return out

    async def commit(self) -> None:
        for t, pos in self._position.items():
            self._bus.set_committed(t, self._group, pos)

    async def rewind(self) -> None:
        self._position = {t: self._bus.committed(t, self._group) for t in self._topics}
