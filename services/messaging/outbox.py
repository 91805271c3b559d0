"""Transactional outbox: state and the outgoing Kafka record are written in one transaction;
a relay publishes committed rows afterwards and marks them published.

A service answers its caller (or commits its Kafka offset) only after its transaction with the
outbox row has committed, so nothing acknowledged can be lost when Kafka or the process fails:
unpublished rows are simply published again by the next relay pass.

The record value is sealed at rest (AES-256-GCM, :mod:`services.messaging.payload_crypto`)
with the store's keyring (:func:`services.messaging.db.session_factory`), bound to the row's
owner, topic and key; the relay opens it just before publishing, so Kafka gets the original
bytes. Rows written before sealing (plain values) publish as they are.

Each published row keeps where the broker put it (epoch, partition, offset), so that after
the broker lost its data only what the consumers had not confirmed is published again
(:mod:`services.messaging.publish_watermarks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import (
    BigId,
    UtcDateTime,
    metadata,
    store_keyring,
    store_unavailable,
    utcnow,
)
from services.messaging.kafka import (
    EPOCH_HEADER,
    OutgoingRecord,
    Placement,
    Publisher,
    PublishError,
)
from services.messaging.payload_crypto import Keyring, PayloadCryptoError, key_id_of
from services.messaging.sealing import SealedColumn, unsealed_where

log = logging.getLogger(__name__)

OUTBOX_UNSEALED = unsealed_where("payload")

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner", String(40), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("key", String(100), nullable=True),
    Column("headers", JSON, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
    # where the broker put it, in which of its epochs (broker_epoch): unset when not known
    Column("published_epoch", String(64), nullable=True),
    Column("published_partition", Integer, nullable=True),
    Column("published_offset", BigInteger, nullable=True),
    # The relay's next rows (published_at NULL, by id), and which of the rows published
    # within the replay window the consumers have not confirmed, read from the index alone:
    # reading a row would read its payload too (publish_watermarks.unconfirmed_count).
    Index(
        "ix_outbox_publication",
        "owner",
        "published_at",
        "id",
        "topic",
        "published_epoch",
        "published_partition",
        "published_offset",
    ),
    # rows written in clear before sealing, found at start-up (services.messaging.sealing)
    Index(
        "ix_outbox_unsealed",
        "owner",
        "id",
        sqlite_where=text(OUTBOX_UNSEALED),
        postgresql_where=text(OUTBOX_UNSEALED),
    ),
)

EpochCheck = Callable[[], Awaitable[str]]
"""Returns the broker's epoch if it is the one the service works with; raises otherwise
(broker_epoch.EpochGuard.check)."""


def sealed_column(owner: str) -> SealedColumn:
    """The owner's outbox values, for the start-up check of rows in clear."""
    return SealedColumn(
        label="outbox.payload",
        table=outbox,
        column="payload",
        unsealed=OUTBOX_UNSEALED,
        bound_to=lambda row: sealed_with(owner, row.topic, row.key),
        scope=outbox.c.owner == owner,
    )


def sealed_with(owner: str, topic: str, key: str | None) -> str:
    """The associated data of an outbox value: a ciphertext moved to a row of another
    owner, topic or Kafka key does not open."""
    return f"outbox|{owner}|{topic}|{key or ''}"


def open_value(keyring: Keyring, row: Any, owner: str) -> str:
    """The plaintext record value of an outbox row (``owner``, ``topic``, ``key``, ``payload``)."""
    return keyring.open(row.payload, message_id=sealed_with(owner, row.topic, row.key))


async def add_to_outbox(session: AsyncSession, owner: str, record: OutgoingRecord) -> None:
    """Stage ``record`` inside the caller's transaction, its value sealed at rest."""
    await add_many_to_outbox(session, owner, [record])


async def add_many_to_outbox(
    session: AsyncSession, owner: str, records: Sequence[OutgoingRecord]
) -> None:
    """Stage ``records``, in their order (the relay publishes by id), with one statement."""
    if not records:
        return
    keyring = store_keyring(session)
    now = utcnow()
    await session.execute(
        outbox.insert(),
        [
            dict(
                owner=owner,
                topic=r.topic,
                key=r.key,
                headers=r.headers,
                payload=keyring.seal(r.value, message_id=sealed_with(owner, r.topic, r.key)),
                created_at=now,
            )
            for r in records
        ],
    )


class OutboxRelay:
    """Publishes one owner's unpublished outbox rows, in id order."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        owner: str,
        *,
        batch_size: int = 200,
        idle_poll_s: float = 0.5,
        guard: EpochCheck | None = None,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._owner = owner
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._guard = guard  # checked around each publish (see broker_epoch.EpochGuard)
        self._unopenable: set[int] = set()  # rows already reported as not opening
        self.wake = asyncio.Event()

    async def publish_pending(self) -> int:
        """One pass: publish up to a batch; return how many rows were published.

        On PostgreSQL the rows are claimed with ``FOR UPDATE SKIP LOCKED`` and marked in the
        same transaction, so replicas sharing an owner (two routers) never publish the same
        row twice. On SQLite, where one process owns an outbox, the read and the mark are
        two short transactions: the write lock is not held while Kafka answers."""
        async with self._sessions.begin() as session:
            if session.get_bind().dialect.name != "postgresql":
                ids, records = await self._claim(session)
            else:
                ids, records = await self._claim(session, locking=True)
                if ids:
                    epoch, placements = await self._publish(records)
                    await self._mark(session, ids, epoch, placements)
                return len(ids)
        if ids:
            epoch, placements = await self._publish(records)
            async with self._sessions.begin() as session:
                await self._mark(session, ids, epoch, placements)
        return len(ids)

    async def _claim(
        self, session: AsyncSession, *, locking: bool = False
    ) -> tuple[list[int], list[OutgoingRecord]]:
        """The next rows' ids and records, opened. A row that does not open (its key left
        the keyring) is left unpublished, reported once, and does not hold up the others:
        it publishes once its key is back."""
        query = (
            select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.headers, outbox.c.payload)
            .where(outbox.c.owner == self._owner, outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        if self._unopenable:
            query = query.where(outbox.c.id.not_in(sorted(self._unopenable)))
        if locking:
            query = query.with_for_update(skip_locked=True)
        keyring = store_keyring(session)
        ids: list[int] = []
        records: list[OutgoingRecord] = []
        for r in (await session.execute(query)).all():
            try:
                value = open_value(keyring, r, self._owner)
            except PayloadCryptoError as exc:
                self._unopenable.add(r.id)
                log.error(
                    "outbox row does not open: left unpublished until its key is restored",
                    extra={
                        "owner": self._owner,
                        "outbox_id": r.id,
                        "key_id": key_id_of(r.payload),
                        "error": type(exc).__name__,
                    },
                )
                continue
            ids.append(r.id)
            records.append(
                OutgoingRecord(topic=r.topic, key=r.key, value=value, headers=dict(r.headers))
            )
        return ids, records

    async def _publish(self, records: list[OutgoingRecord]) -> tuple[str | None, list[Placement]]:
        """Publish ``records``; return the broker epoch they went to (None without a
        guard) and where each went. The epoch is checked before (nothing may reach a broker
        that lost data before that data is re-published) and after: epochs never come
        back, so the same epoch on both sides means the records are in that epoch."""
        if self._guard is None:
            return None, await self._publisher.publish_many(records)
        epoch = await self._guard()
        placements = await self._publisher.publish_many(stamped(records, epoch))
        await self._guard()
        return epoch, placements

    @staticmethod
    async def _mark(
        session: AsyncSession, ids: list[int], epoch: str | None, placements: list[Placement]
    ) -> None:
        now = utcnow()
        if epoch is None or len(placements) != len(ids):
            # where they went is not known: a broker data loss publishes them again
            await session.execute(
                update(outbox).where(outbox.c.id.in_(ids)).values(published_at=now)
            )
            return
        await session.execute(
            update(outbox)
            .where(outbox.c.id == bindparam("row_id"))
            .values(
                published_at=now,
                published_epoch=epoch,
                published_partition=bindparam("partition"),
                published_offset=bindparam("offset"),
            ),
            [
                {
                    "row_id": row_id,
                    "partition": placed.partition,
                    "offset": placed.offset if placed.offset >= 0 else None,
                }
                for row_id, placed in zip(ids, placements, strict=True)
            ],
        )

    async def run(self) -> None:
        """Publish forever; wake early when :attr:`wake` is set after a commit."""
        failures = 0
        while True:
            try:
                published = await self.publish_pending()
                failures = 0
            except Exception as exc:
                if not (isinstance(exc, PublishError) or store_unavailable(exc)):
                    raise
                failures += 1
                delay = min(0.2 * 2**failures, 5.0)
                log.warning(
                    "outbox publish failed, retrying",
                    extra={"owner": self._owner, "error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                continue
            if published:
                continue
            self.wake.clear()
            await _wait(self.wake, self._idle_poll_s)


def stamped(records: list[OutgoingRecord], epoch: str) -> list[OutgoingRecord]:
    """``records`` carrying the broker epoch found just before publishing them: a consumer
    drops a copy that reached a broker of another epoch (broker_epoch.admitted)."""
    return [replace(r, headers={**r.headers, EPOCH_HEADER: epoch}) for r in records]


async def _wait(flag: asyncio.Event, wait_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(flag.wait(), wait_s)


async def pending_count(sessions: async_sessionmaker[AsyncSession], owner: str) -> int:
    async with sessions() as session:
        result: Any = await session.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.owner == owner, outbox.c.published_at.is_(None))
        )
        return int(result or 0)
