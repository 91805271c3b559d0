"""Limits on what a client may send before its request reaches a parser or the store: JSON
nesting depth (read from the raw bytes, before ``json.loads``) and a request rate per client.

The rate limit is a token bucket per client (a source system once its key is known, else the
peer address), held **in process memory**: each adapter process counts on its own, and a
restart starts every bucket full. That is enough to keep one misbehaving or hostile client
from crowding out the others; it is not a shared quota across replicas.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

# A JSON string (escapes included) is skipped whole, so brackets inside text never count.
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether any array or object in ``body`` nests deeper than ``max_depth``.

    Works on the raw bytes, so a hostile body never reaches a recursive parser; malformed
    JSON is left for the parser to refuse."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets: ``burst`` requests at once, refilled at ``per_s`` a second.

    At most ``max_clients`` buckets are kept (least recently used dropped first), so many
    distinct addresses cannot grow memory without bound."""

    per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    max_clients: int = 10_000
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict, repr=False)

    def retry_after(self, client: str) -> int | None:
        """Take one token for ``client``: None if allowed, else whole seconds to wait."""
        if self.per_s <= 0:
            return None  # switched off
        now = self.clock()
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.per_s)
        bucket.stamp = now
        self._buckets[client] = bucket
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.per_s))
