"""An adapter's intake is never starved by its own deliveries.

One event loop serves both sides of an adapter: the journals' POSTs (events and receipts)
and the delivery commands it carries out, up to 16 at a time per destination. Each step of
a POST (reading the body, validating and translating it, the group commit, the answer) waits
in the loop's queue behind every delivery step ready at that moment, so during a drain
(thousands of commands queued on Kafka after an outage) a journal's POST waited many times
its own cost, and its journal saw time-outs on the one operation that must never fail.

So a POST in progress has the right of way: :class:`IntakeFirst` counts the POSTs being
served (:class:`ServingIntake`, an ASGI middleware), and a delivery about to start waits
until none is, but never longer than ``max_yield_s``: under a steady stream of POSTs the
deliveries slow down, and never stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_YIELD_S = 0.05


class IntakeFirst:
    def __init__(self, max_yield_s: float = MAX_YIELD_S) -> None:
        self.max_yield_s = max_yield_s
        self._serving = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.yielded = 0  # deliveries that waited for a POST (a metric for tests and ops)

    @property
    def serving(self) -> int:
        return self._serving

    @contextlib.contextmanager
    def post(self) -> Iterator[None]:
        """A POST being served."""
        self._serving += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._serving -= 1
            if not self._serving:
                self._idle.set()

    async def turn(self) -> None:
        """A delivery's turn: at once when no POST is served, else when none is or after
        ``max_yield_s``, whichever comes first."""
        if not self._serving:
            return
        self.yielded += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.max_yield_s)


class ServingIntake:
    """Counts the POSTs an app serves in ``gate`` (events and receipts; reads are not
    intake)."""

    def __init__(self, app: ASGIApp, *, gate: IntakeFirst) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        with self.gate.post():
            await self.app(scope, receive, send)
