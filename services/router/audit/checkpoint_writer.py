"""The router's periodic export of signed checkpoints (:mod:`services.router.audit.checkpoints`)
to its sinks (:mod:`services.router.audit.checkpoint_sinks`).

The tick (:meth:`services.router.routing.handlers.Router.tick`) calls :meth:`CheckpointWriter.run`
on the replica that holds the watchdog's lease, outside the tick's transaction: a slow syslog
collector must not hold a database transaction open. A checkpoint is written at most every
``every`` (monotonic clock) and only when the head moved since the last one written; the
first after start-up is written at once. A sink that fails is logged and the head is
written again at the next interval, to every sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.audit.checkpoint_sinks import CheckpointSink
from services.router.audit.checkpoints import CheckpointSigner, chain_head

log = logging.getLogger(__name__)


@dataclass
class CheckpointWriter:
    signer: CheckpointSigner
    sinks: Sequence[CheckpointSink]
    every: timedelta = timedelta(minutes=15)
    _last_head: tuple[int, str] | None = None
    _tried_at: float | None = None

    def due(self, monotonic: float) -> bool:
        return self._tried_at is None or monotonic - self._tried_at >= self.every.total_seconds()

    async def run(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: datetime,
        monotonic: float,
    ) -> int:
        """Write a checkpoint of the head if one is due and the head moved; 1 if written."""
        if not self.sinks or not self.due(monotonic):
            return 0
        self._tried_at = monotonic
        async with sessions() as session:
            head = await chain_head(session)
        if head is None or head == self._last_head:
            return 0
        line = self.signer.line(head[0], head[1], now)
        failed = 0
        for sink in self.sinks:
            try:
                await asyncio.to_thread(sink.write, line)
            except OSError as exc:
                failed += 1
                log.warning(
                    "access-log checkpoint not written",
                    extra={"sink": sink.name, "seq": head[0], "error": type(exc).__name__},
                )
        if failed:
            return 0
        self._last_head = head
        log.info("access-log checkpoint written", extra={"seq": head[0]})
        return 1
