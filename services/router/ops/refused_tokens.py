"""Refused tokens on the ops JSON API go into the access log (``token-refused``): a request
whose ``Authorization`` header identifies no API client is recorded with the client's
address, the method and the path, never the token nor any part of it.

So that the log cannot be made a denial-of-service vector (every guess a row written under
the chain's lock), recording is limited **in memory, per replica**: at most one entry per
client address per minute, and at most ``max_per_minute`` entries a minute in all. What is
left out is counted and named in the next entry written ("N more not recorded"), and in the
JSON log. The address table holds at most ``max_addresses`` addresses (the oldest go
first), so spraying addresses costs memory only up to that bound. A request with no
``Authorization`` header at all is a plain 401, not recorded: it presented nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.audit.access_log import AccessKind, record_security_event
from services.router.ops.api_clients import ApiCaller, authenticate

log = logging.getLogger(__name__)

UNAUTHENTICATED = "unauthenticated"  # the role column of a refused token's entry


@dataclass
class RefusalLimiter:
    """Whether a refused token from ``address`` at monotonic second ``at`` is recorded."""

    window_s: float = 60.0
    max_per_minute: int = 100
    max_addresses: int = 10_000
    _last: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _window_start: float | None = None
    _in_window: int = 0
    suppressed: int = 0  # left out since the last entry written

    def admit(self, address: str, at: float) -> bool:
        while self._last and at - next(iter(self._last.values())) >= self.window_s:
            self._last.popitem(last=False)  # insertion order is time order
        if self._window_start is None or at - self._window_start >= self.window_s:
            self._window_start, self._in_window = at, 0
        seen = self._last.get(address)
        if (seen is not None and at - seen < self.window_s) or (
            self._in_window >= self.max_per_minute
        ):
            self.suppressed += 1
            return False
        self._last[address] = at
        self._last.move_to_end(address)
        while len(self._last) > self.max_addresses:
            self._last.popitem(last=False)
        self._in_window += 1
        return True


@dataclass
class RefusedTokens:
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    limiter: RefusalLimiter = field(default_factory=RefusalLimiter)

    async def record(self, request: Request) -> bool:
        """Record the refusal if the limiter admits it; True if an entry was written."""
        address = request.client.host if request.client else "unknown"
        if not self.limiter.admit(address, self.monotonic()):
            return False
        left_out, self.limiter.suppressed = self.limiter.suppressed, 0
        reason = f"API token refused from {address} on {request.method} {request.url.path}"
        if left_out:
            reason += f" ({left_out} more refusals not recorded, at most one per address a minute)"
        try:
            async with self.sessions.begin() as session:
                await record_security_event(
                    session,
                    actor=f"unknown client at {address}",
                    role=UNAUTHENTICATED,
                    kind=AccessKind.TOKEN_REFUSED,
                    reason=reason,
                    now=self.clock(),
                )
        except SQLAlchemyError as exc:  # the 401 goes out whatever the log's fate
            log.warning("refused token not recorded", extra={"error": type(exc).__name__})
            return False
        if left_out:
            log.warning("refused tokens not recorded", extra={"count": left_out})
        return True


async def authenticate_audited(request: Request) -> ApiCaller:
    """The API's gate (:func:`~services.router.ops.api_clients.authenticate`), with a
    refused token recorded in the access log (the app's ``state.refused_tokens``)."""
    try:
        return await authenticate(request)
    except HTTPException:
        refused: RefusedTokens | None = getattr(request.app.state, "refused_tokens", None)
        if refused is not None and request.headers.get("authorization"):
            await refused.record(request)
        raise
