"""Surviving a broker that loses its data (Tansu keeps everything in memory).

The broker's *epoch* is the first record of a one-partition topic, written by whichever
service first finds the topic missing or empty. A restarted Tansu has no such topic, so a new
epoch is written. Each service stores the epoch it last worked with (``broker_epoch``).

When the broker's epoch differs at start-up, :func:`recover` publishes again only what the
broker cannot have delivered: the outbox rows, within the replay window, that the consumer
groups which must read them had not committed (:mod:`services.messaging.publish_watermarks`
decides which). It knows that from two records kept while the broker still had the data:

- where each record went: the outbox relay stores the epoch, partition and offset of each
  row it publishes, checking the epoch (:class:`EpochGuard`) before and after the publish;
- what the consumers confirmed: :func:`watch` reads, every few seconds, the committed offsets
  of those groups and keeps per (epoch, topic, partition) the lowest (the watermark). The
  offsets are read between two readings that found the same epoch, so they are that epoch's.

A consumer commits only after its database commit, so everything below a watermark is in the
consumer's own store. Whatever is not known (no offset, no watermark) is published again:
consumers are idempotent, so more is only slower, and one too few would be a lost notice.
How many rows were published again, and why, is logged and kept (``broker_recovery``,
``/metrics``). Recovery so grows with what was unconfirmed at the loss, not with the day's
volume (it was the whole 24 h window).

While running, :func:`watch` also checks that the epoch topic still exists and is unchanged;
if not it raises :class:`BrokerDataLost`, the service exits, and its supervisor starts it
again, which recovers as above (crash-only recovery: one code path for every way the broker
can lose data, and no half-reset Kafka clients).

Exceptions::

    BrokerDataLost   the broker's epoch changed under a running service
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from sqlalchemy import Column, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import UtcDateTime, metadata, serialize, store_unavailable
from services.messaging.kafka import EPOCH_HEADER, IncomingRecord, PublishError
from services.messaging.kafka import BrokerDataLost as BrokerDataLost  # raised from here too
from services.messaging.kafka_connection import KafkaConnection
from services.messaging.publish_watermarks import (
    Confirmations,
    Watermarks,
    record_recovery,
    republish_unconfirmed,
)

log = logging.getLogger(__name__)

EPOCH_TOPIC = "carebridge.broker-epoch.v1"

broker_epoch = Table(
    "broker_epoch",
    metadata,
    Column("owner", String(40), primary_key=True),
    Column("epoch", String(64), nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
)


async def admitted(
    batch: list[IncomingRecord], guard: EpochGuard, *, fetched_at: float
) -> list[IncomingRecord]:
    """What a consumer may handle of a batch it polled at ``fetched_at`` (loop time).

    A relay checks the epoch before it publishes, but the broker can lose its data between
    that check and the publish: the records then land first in the new, empty broker, ahead
    of the earlier unconfirmed ones that recovery publishes again, and a patient's later
    message would overtake an earlier one. Such a record carries the old epoch, and its
    relay, finding the epoch changed after the publish, never marks it published, so it is
    published again, in order, with the new one. A consumer therefore:

    - checks that the broker is still its epoch after the poll (epochs never come back, so
      the records came from that epoch): if not, :class:`BrokerDataLost`, and the service
      restarts and recovers;
    - drops a record stamped with another epoch (logged; its offset is committed with the
      batch). Unstamped records (no guard at the publisher) are kept."""
    epoch = await guard.check(since=fetched_at)
    kept = [r for r in batch if r.headers.get(EPOCH_HEADER, epoch) == epoch]
    if len(kept) != len(batch):
        log.warning(
            "records published into a broker that had lost its data were dropped; their "
            "relay publishes them again in order",
            extra={"dropped": len(batch) - len(kept), "topics": sorted({r.topic for r in batch})},
        )
    return kept


async def read_epoch(connection: KafkaConnection, *, timeout_s: float = 15.0) -> str:
    """The broker's epoch; written first if the broker has none.

    The topic may exist and still be empty: the service that created it can die before it
    writes (a router exits on purpose when the broker lost its data, and may do so between
    the two), or the broker may create it on a metadata request. Whoever finds it empty
    writes one; the first record (offset 0) is the epoch, whoever wrote it."""
    admin = AIOKafkaAdminClient(**connection.client_options())
    await admin.start()
    try:
        if EPOCH_TOPIC not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(EPOCH_TOPIC, 1, 1)])
    finally:
        await admin.close()
    # "earliest": with aiokafka's default ("latest") the reset of a fresh assignment can land
    # after seek_to_beginning on Apache Kafka, and the read waits at the end for ever
    consumer = AIOKafkaConsumer(
        **connection.client_options(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partition = TopicPartition(EPOCH_TOPIC, 0)
        consumer.assign([partition])
        if (await consumer.end_offsets([partition]))[partition] == 0:
            await _write_epoch(connection)
        await consumer.seek_to_beginning(partition)
        record = await asyncio.wait_for(consumer.getone(), timeout_s)
        return (record.value or b"").decode()
    finally:
        await consumer.stop()


async def _write_epoch(connection: KafkaConnection) -> None:
    producer = AIOKafkaProducer(**connection.producer_options())
    await producer.start()
    try:
        await producer.send_and_wait(EPOCH_TOPIC, uuid.uuid4().hex.encode(), partition=0)
    finally:
        await producer.stop()


async def known_epoch(sessions: async_sessionmaker[AsyncSession], owner: str) -> str | None:
    """The epoch ``owner`` last worked with (None before its first start): read before
    :func:`recover`, it tells whether the broker lost its data since (its consumers then
    distrust the group's committed offsets: ``KafkaConsumer.start(after_loss=...)``)."""
    async with sessions() as session:
        found = await session.scalar(
            select(broker_epoch.c.epoch).where(broker_epoch.c.owner == owner)
        )
    return None if found is None else str(found)


def lost_since(known: str | None, epoch: str) -> bool:
    """Whether the broker lost its data since a service that knew ``known`` last ran."""
    return known is not None and known != epoch


async def recover(
    sessions: async_sessionmaker[AsyncSession],
    owner: str,
    connection: KafkaConnection,
    *,
    replay_window: timedelta,
    now: datetime,
) -> str:
    """At start-up: if the broker's epoch is not the one this service knows, publish again
    what it published within ``replay_window`` that the consumers had not confirmed (see
    the module doc). Return the epoch."""
    epoch = await read_epoch(connection)
    async with sessions.begin() as session:
        # replicas of one owner (two routers) start together: one records, the other waits
        await serialize(session, f"broker-epoch:{owner}")
        known = await session.scalar(
            select(broker_epoch.c.epoch).where(broker_epoch.c.owner == owner)
        )
        if known == epoch:
            return epoch
        done = await republish_unconfirmed(session, owner, since=now - replay_window, now=now)
        if known is None:
            await session.execute(
                broker_epoch.insert().values(owner=owner, epoch=epoch, seen_at=now)
            )
        else:
            await session.execute(
                update(broker_epoch)
                .where(broker_epoch.c.owner == owner)
                .values(epoch=epoch, seen_at=now)
            )
            await record_recovery(session, owner, epoch, now, done)
    if known is not None:
        log.warning(
            "broker epoch changed: re-publishing what the consumers had not confirmed",
            extra={
                "owner": owner,
                "records": done.republished,
                "reasons": done.reasons,
                "confirmed_kept": done.confirmed,
                "unread_kept": done.unread,
                "window_s": replay_window.total_seconds(),
            },
        )
    return epoch


async def watch(
    connection: KafkaConnection,
    epoch: str,
    *,
    interval_s: float = 2.0,
    confirmations: Confirmations | None = None,
    current_epoch: Callable[[], Awaitable[str | None]] | None = None,
) -> None:
    """Raise :class:`BrokerDataLost` once the broker's epoch is gone or different. A broker
    that cannot be reached is waited for: it may come back with its data (real Kafka).

    With ``confirmations``, keep the watermarks of what the service publishes: offsets read
    after one reading of ``epoch`` are stored after the next one (epochs never come back,
    so the broker was that epoch in between, and the offsets are its own).
    ``current_epoch`` reads the broker's epoch (None: its topic is gone); by default from
    ``connection``."""
    read_epoch_now = current_epoch or functools.partial(_current, connection)
    read: Watermarks | None = None  # read since the last sighting of ``epoch``
    while True:
        await asyncio.sleep(interval_s)
        try:
            current = await read_epoch_now()
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("broker unreachable", extra={"error": type(exc).__name__})
            read = None
            continue
        if current != epoch:
            log.error("the broker lost its data; restarting to recover from the outbox")
            raise BrokerDataLost(f"broker epoch {epoch[:8]} is now {str(current)[:8]}")
        if confirmations is not None:
            read = await _confirm(confirmations, epoch, read)


async def _confirm(
    confirmations: Confirmations, epoch: str, read: Watermarks | None
) -> Watermarks | None:
    """Store what was read before this sighting of ``epoch``; read the next."""
    try:
        if read:
            await confirmations.store(epoch, read)
        return await confirmations.read()
    except Exception as exc:
        if not (isinstance(exc, KafkaError | OSError | TimeoutError) or store_unavailable(exc)):
            raise
        # nothing confirmed this time: a loss now publishes more, never less
        log.warning("consumer confirmations not read", extra={"error": type(exc).__name__})
        return None


async def _current(connection: KafkaConnection) -> str | None:
    admin = AIOKafkaAdminClient(**connection.client_options(), request_timeout_ms=5000)
    await admin.start()
    try:
        if EPOCH_TOPIC not in set(await admin.list_topics()):
            return None
    finally:
        await admin.close()
    return await read_epoch(connection, timeout_s=5.0)


class EpochGuard:
    """Checked by the outbox relay before every publish: nothing new may reach a broker that
    lost its data before what it lost has been re-published, or a patient's later message
    would overtake an earlier one; and after it, so that the epoch stored with a row's
    offset is the one the row went to. Checked by each consumer after every poll too (see
    :func:`admitted`). Raises :class:`BrokerDataLost` (the service restarts and recovers)
    or, when the broker cannot be reached, ``PublishError`` (retry later).

    One reading serves every caller that asked before it began (the relay and the
    consumers share a guard), so a busy service reads the epoch once per round, not once
    per caller."""

    def __init__(self, connection: KafkaConnection, epoch: str) -> None:
        self._connection = connection
        self._epoch = epoch
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._last_began: float | None = None  # loop time at which the last good reading began

    @property
    def epoch(self) -> str:
        return self._epoch

    async def check(self, *, since: float | None = None) -> str:
        """The epoch, if the broker still has it, from a reading that began at or after
        ``since`` (loop time; default now)."""
        loop = asyncio.get_running_loop()
        since = loop.time() if since is None else since
        async with self._lock:
            if self._last_began is not None and self._last_began >= since:
                return self._epoch
            began = loop.time()
            try:
                current = await self._read()
            except (KafkaError, OSError, TimeoutError) as exc:
                await self.close()
                raise PublishError(f"epoch check: {type(exc).__name__}") from exc
            if current != self._epoch:
                raise BrokerDataLost(f"broker epoch {self._epoch[:8]} is now {str(current)[:8]}")
            self._last_began = began
            return current

    async def _read(self) -> str | None:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **self._connection.client_options(),
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # see read_epoch
            )
            await consumer.start()
            self._consumer = consumer
        partition = TopicPartition(EPOCH_TOPIC, 0)
        if EPOCH_TOPIC not in await self._consumer.topics():
            return None
        self._consumer.assign([partition])
        await self._consumer.seek_to_beginning(partition)
        found = await self._consumer.getmany(partition, timeout_ms=2000, max_records=1)
        records = found.get(partition) or []
        if not records:
            # The topic is there, so its first record is: a fetch that brought nothing in
            # time is a slow broker, not a lost one. (Under a benchmark's load this read
            # came back empty and the router exited, believing the broker had lost its data.)
            raise TimeoutError("the broker's epoch record was not read in time")
        return (records[0].value or b"").decode()

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            with contextlib.suppress(Exception):
                await consumer.stop()


class Fence:
    """A service's :class:`EpochGuard`, once Kafka is prepared (its epoch is known only
    after :func:`recover`): the outbox relay's check and every consumer's admission."""

    def __init__(self) -> None:
        self.guard: EpochGuard | None = None

    async def arm(self, connection: KafkaConnection, epoch: str) -> None:
        """Guard ``epoch`` from now on, with a first reading taken here: connecting the
        guard's reader (TLS and SCRAM on a secured broker) took seconds, which the first
        delivery then waited for and its attempt timed out. Best effort: a broker that
        does not answer yet is read again when asked; one that lost the epoch already is
        :class:`BrokerDataLost`."""
        self.guard = EpochGuard(connection, epoch)
        with contextlib.suppress(PublishError):
            await self.guard.check()

    def _armed(self) -> EpochGuard:
        if self.guard is None:
            raise PublishError("the broker's epoch is not known yet")
        return self.guard

    async def check(self) -> str:
        return await self._armed().check()

    async def admit(self, batch: list[IncomingRecord], fetched_at: float) -> list[IncomingRecord]:
        return await admitted(batch, self._armed(), fetched_at=fetched_at)

    async def close(self) -> None:
        if self.guard is not None:
            await self.guard.close()
