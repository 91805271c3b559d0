"""What the consumers confirmed of what a service published, and so what it must publish
again when the broker loses its data (a Tansu restart; see
:mod:`services.messaging.broker_epoch`).

A consumer group commits its offset only after its database commit (conventions, 7), so a
committed offset is a confirmation: every record below it is in the consumer's own store and
never needs the broker again. Three facts make the choice:

- where each outbox row went: the relay stores the broker epoch, partition and offset the
  broker acknowledged (``outbox.published_epoch``, ``published_partition``,
  ``published_offset``), checking the epoch before and after the publish;
- the *watermark* of each (epoch, topic, partition): the lowest offset committed by every
  group that must read the topic (``topics.CONFIRMED_BY``), read every few seconds by the
  epoch watch between two readings that found the same epoch (epochs never come back, so
  the offsets belong to it), and only ever raised (``publish_watermark``);
- the replay window: nothing older is published again.

A row is published again when it is within the window and at or above its partition's
watermark (a group had not committed it), has no offset (published before offsets were kept),
or its partition has no watermark (no group had committed anything there, or the watermark
was pruned). Rows of ``topics.NOT_REPUBLISHED`` (dead letters, delivery events) are not: no
consumer of the broker's own reads them. Every uncertainty falls on the side of publishing
again: consumers are idempotent, so more is only slower; one too few would be a lost notice.

Offsets are compared only within the epoch a row was published in; a row confirmed in one
epoch stays confirmed after any later loss. Each recovery is recorded (``broker_recovery``)
and shown in ``/metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    Select,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import topics
from services.messaging.committed_offsets import Committed, CommittedOffsets, KafkaCommittedOffsets
from services.messaging.db import BigId, UtcDateTime, metadata, serialize, utcnow
from services.messaging.kafka_connection import KafkaConnection
from services.messaging.outbox import outbox

log = logging.getLogger(__name__)

publish_watermark = Table(
    "publish_watermark",
    metadata,
    Column("owner", String(40), primary_key=True),
    Column("epoch", String(64), primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    # every group that must read the topic has committed the offsets below this one
    Column("confirmed_offset", BigInteger, nullable=False),
    Column("confirmed_at", UtcDateTime, nullable=False),
)

broker_recovery = Table(
    "broker_recovery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner", String(40), nullable=False),
    Column("epoch", String(64), nullable=False),  # the broker's new epoch
    Column("recovered_at", UtcDateTime, nullable=False),
    Column("republished", Integer, nullable=False),
    Column("confirmed", Integer, nullable=False),  # within the window, kept: confirmed
    Column("unread", Integer, nullable=False),  # within the window, kept: NOT_REPUBLISHED
    Column("reasons", JSON, nullable=False),  # Reason -> rows published again
    Index("ix_broker_recovery_owner", "owner", "id"),
)

Watermarks = dict[tuple[str, int], int]
"""(topic, partition) -> the offset below which every group that must read it committed."""

PRUNE_MARGIN = timedelta(hours=1)
_CHUNK = 500  # ids per UPDATE


class Reason(StrEnum):
    """Why a row is published again."""

    UNCONFIRMED = "unconfirmed"  # at or above its partition's watermark
    NO_OFFSET = "no_offset"  # where it went is not known
    NO_WATERMARK = "no_watermark"  # nothing in its partition was confirmed


def watermarks(committed: Committed, groups: Mapping[str, Sequence[str]]) -> Watermarks:
    """Per partition of each topic in ``groups`` (topic -> the groups that must read it):
    the lowest offset all of them committed. A group that never committed in a partition
    confirms nothing there (0), and holds the others back."""
    partitions = {(topic, p) for _, topic, p in committed if groups.get(topic)}
    return {
        (topic, p): min(max(committed.get((g, topic, p)) or 0, 0) for g in groups[topic])
        for topic, p in partitions
    }


async def record_watermarks(
    session: AsyncSession, owner: str, epoch: str, marks: Watermarks, now: datetime
) -> int:
    """Raise the stored watermarks of ``epoch`` to ``marks``; never lower one (a
    confirmation stays one). Return how many moved."""
    marks = {k: v for k, v in marks.items() if v > 0}
    if not marks:
        return 0
    await serialize(session, f"publish-watermark:{owner}")  # replicas of one owner
    w = publish_watermark.c
    stored = {
        (r.topic, r.kafka_partition): r.confirmed_offset
        for r in await session.execute(
            select(w.topic, w.kafka_partition, w.confirmed_offset).where(
                w.owner == owner, w.epoch == epoch
            )
        )
    }
    moved = 0
    for (topic, p), offset in sorted(marks.items()):
        key = (w.owner == owner, w.epoch == epoch, w.topic == topic, w.kafka_partition == p)
        if (topic, p) not in stored:
            await session.execute(
                insert(publish_watermark).values(
                    owner=owner,
                    epoch=epoch,
                    topic=topic,
                    kafka_partition=p,
                    confirmed_offset=offset,
                    confirmed_at=now,
                )
            )
        elif offset > stored[(topic, p)]:
            await session.execute(
                update(publish_watermark)
                .where(*key)
                .values(confirmed_offset=offset, confirmed_at=now)
            )
        else:
            continue
        moved += 1
    return moved


class Confirmations:
    """The watermarks of what ``owner`` publishes: read from the broker by :meth:`read`,
    kept for an epoch by :meth:`store` (the epoch watch does both, see module doc)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        offsets: CommittedOffsets,
        groups: Mapping[str, Sequence[str]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._offsets = offsets
        self._groups = groups  # topic -> the groups that must read it
        self._clock = clock

    @classmethod
    def from_kafka(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        connection: KafkaConnection,
    ) -> Confirmations:
        """For a service (``owner`` is its principal): the groups that must read each topic
        it writes (``topics.CONFIRMED_BY``), their offsets read from the broker."""
        groups = topics.confirming_groups(topics.written_by(owner))
        return cls(sessions, owner, KafkaCommittedOffsets(connection, groups), groups)

    async def read(self) -> Watermarks:
        if not self._groups:
            return {}
        return watermarks(await self._offsets.committed(), self._groups)

    async def store(self, epoch: str, marks: Watermarks) -> int:
        async with self._sessions.begin() as session:
            return await record_watermarks(session, self._owner, epoch, marks, self._clock())

    async def aclose(self) -> None:
        await self._offsets.aclose()


def _in_window(owner: str, since: datetime) -> list[ColumnElement[bool]]:
    return [outbox.c.owner == owner, outbox.c.published_at >= since]


def _unconfirmed(owner: str, since: datetime) -> Select[Any]:
    """Published rows within the window that no watermark covers, with their watermark."""
    w = publish_watermark.c
    joined = outbox.outerjoin(
        publish_watermark,
        and_(
            w.owner == outbox.c.owner,
            w.epoch == outbox.c.published_epoch,
            w.topic == outbox.c.topic,
            w.kafka_partition == outbox.c.published_partition,
        ),
    )
    return (
        select(outbox.c.id, outbox.c.published_offset, w.confirmed_offset)
        .select_from(joined)
        .where(
            *_in_window(owner, since),
            outbox.c.topic.not_in(sorted(topics.NOT_REPUBLISHED)),
            or_(
                outbox.c.published_offset.is_(None),
                w.confirmed_offset.is_(None),
                outbox.c.published_offset >= w.confirmed_offset,
            ),
        )
    )


async def unconfirmed_count(session: AsyncSession, owner: str, since: datetime) -> int:
    """Rows a broker data loss now would make ``owner`` publish again."""
    found = await session.scalar(
        select(func.count()).select_from(_unconfirmed(owner, since).subquery())
    )
    return int(found or 0)


@dataclass
class Republished:
    """What one recovery marked for publishing again, and what it kept."""

    republished: int = 0
    confirmed: int = 0  # within the window, confirmed by every group that must read it
    unread: int = 0  # within the window, on a topic no consumer of ours reads
    reasons: dict[str, int] = field(default_factory=dict)


async def republish_unconfirmed(
    session: AsyncSession, owner: str, *, since: datetime, now: datetime
) -> Republished:
    """Mark unpublished the rows of ``owner`` published since ``since`` that the consumers
    had not confirmed (the relay sends them again, in id order); prune watermarks too old to
    confirm anything within the window."""
    result = Republished()
    ids: list[int] = []
    for row in (await session.execute(_unconfirmed(owner, since))).all():
        reason = (
            Reason.NO_OFFSET
            if row.published_offset is None
            else Reason.NO_WATERMARK
            if row.confirmed_offset is None
            else Reason.UNCONFIRMED
        )
        result.reasons[reason.value] = result.reasons.get(reason.value, 0) + 1
        ids.append(row.id)
    for start in range(0, len(ids), _CHUNK):
        await session.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids[start : start + _CHUNK]))
            .values(
                published_at=None,
                published_epoch=None,
                published_partition=None,
                published_offset=None,
            )
        )
    result.republished = len(ids)
    published = outbox.c.published_at.is_not(None)
    in_window = [*_in_window(owner, since), published]
    unread = outbox.c.topic.in_(sorted(topics.NOT_REPUBLISHED))
    result.unread = int(await session.scalar(select(func.count()).where(*in_window, unread)) or 0)
    result.confirmed = int(
        await session.scalar(select(func.count()).where(*in_window, ~unread)) or 0
    )
    # A watermark confirms only rows published before it was last raised: one older than
    # the window confirms nothing within it (pruning too much only publishes more).
    await session.execute(
        delete(publish_watermark).where(
            publish_watermark.c.owner == owner,
            publish_watermark.c.confirmed_at < since - PRUNE_MARGIN,
        )
    )
    return result


async def record_recovery(
    session: AsyncSession, owner: str, epoch: str, now: datetime, done: Republished
) -> None:
    """Keep what one recovery did (shown in ``/metrics``)."""
    await session.execute(
        insert(broker_recovery).values(
            owner=owner,
            epoch=epoch,
            recovered_at=now,
            republished=done.republished,
            confirmed=done.confirmed,
            unread=done.unread,
            reasons=done.reasons,
        )
    )
