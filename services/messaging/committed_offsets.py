"""The offsets consumer groups have committed, read from the broker without disturbing them,
behind a small Protocol with a fake over the in-memory bus beside it.

Read for two purposes: consumer lag (:class:`services.messaging.metrics.KafkaConsumerLag`)
and what the consumers confirmed of what a service published
(:mod:`services.messaging.publish_watermarks`). A consumer commits only after its database
commit, so a committed offset means every record below it is in the consumer's own store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from services.messaging.kafka import InMemoryBus, log_ends
from services.messaging.kafka_connection import KafkaConnection

Committed = dict[tuple[str, str, int], int | None]
"""(group, topic, partition) -> the group's committed offset; None where it never committed."""


class CommittedOffsets(Protocol):
    async def committed(self) -> Committed:
        """Every partition of every topic it was made for, for each of the topic's groups."""

    async def aclose(self) -> None: ...


class InMemoryCommittedOffsets:
    """Committed offsets of the in-memory bus (one partition per topic; tests)."""

    def __init__(self, bus: InMemoryBus, groups: Mapping[str, Sequence[str]]) -> None:
        self._bus = bus
        self._groups = groups  # topic -> groups

    async def committed(self) -> Committed:
        return {
            (group, topic, 0): self._bus.committed(topic, group) or None
            for topic, groups in self._groups.items()
            for group in groups
        }

    async def aclose(self) -> None:
        pass


class KafkaCommittedOffsets:
    """Committed offsets from the broker. Each group's are read by a consumer in that group
    that never subscribes (an OffsetFetch, no JoinGroup, so the group is not disturbed); the
    admin client's OffsetFetch is not one every broker answers (Tansu closes the
    connection). The clients start on the first call and are reused; after a failure they
    are started afresh on the next call."""

    def __init__(
        self,
        connection: KafkaConnection,
        groups: Mapping[str, Sequence[str]],
        *,
        timeout_s: float = 5.0,
    ) -> None:
        self._connection = connection
        self._groups = groups  # topic -> groups
        self._timeout_s = timeout_s
        self._consumers: dict[str | None, Any] = {}

    async def committed(self) -> Committed:
        try:
            return await asyncio.wait_for(self._committed(), self._timeout_s)
        except Exception:
            await self.aclose()
            raise

    async def client(self, group: str | None = None) -> Any:
        """The reused consumer of ``group`` (None: one in no group, for metadata and end
        offsets); an aiokafka ``AIOKafkaConsumer``."""
        from aiokafka import AIOKafkaConsumer

        if group not in self._consumers:
            consumer = AIOKafkaConsumer(
                **self._connection.client_options(), group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            self._consumers[group] = consumer
        return self._consumers[group]

    async def _committed(self) -> Committed:
        from aiokafka import TopicPartition

        meta = await self.client(None)
        # Every topic's partitions from one full metadata answer. (consumer.topics() fills a
        # cluster object of its own; the consumer's partitions_for_topic() stayed empty on
        # Apache Kafka, and the lag probe reported no lag at all.)
        cluster = await meta._client.fetch_all_metadata()
        every = [
            TopicPartition(topic, p)
            for topic in self._groups
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        # read after the commits below: a commit past it is past the end for certain
        ends: dict[TopicPartition, int] = {}
        out: Committed = {}
        for topic, groups in self._groups.items():
            partitions = [tp for tp in every if tp.topic == topic]
            for group in groups:
                member = await self.client(group)
                for tp in partitions:
                    offset = await member.committed(tp)
                    out[(group, topic, tp.partition)] = (
                        offset if offset is not None and offset >= 0 else None
                    )
        if every:
            ends = await meta.end_offsets(every)
            doubtful = sorted(
                {
                    TopicPartition(topic, p)
                    for (_, topic, p), offset in out.items()
                    if offset is not None and offset > ends.get(TopicPartition(topic, p), 0)
                }
            )
            if doubtful:  # Tansu's ListOffsets can fall short of the end: read it
                meta.assign(doubtful)
                ends = await log_ends(meta, doubtful, ends)
        # A commit past the end of its partition is a stale one from before a broker data
        # loss (see services.messaging.kafka.KafkaConsumer._distrust_stale_commits): it
        # confirms nothing, or a watermark would keep records the new log never had.
        for (group, topic, p), offset in out.items():
            end = ends.get(TopicPartition(topic, p))
            if offset is not None and end is not None and offset > end:
                out[(group, topic, p)] = None
        return out

    async def aclose(self) -> None:
        consumers, self._consumers = list(self._consumers.values()), {}
        for consumer in consumers:
            with contextlib.suppress(Exception):
                await consumer.stop()
