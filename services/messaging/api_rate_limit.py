"""A per-client rate limit for a JSON API (the router's ``/api/``), as an ASGI middleware
ahead of routing and parsing: the adapters' token bucket
(:class:`services.messaging.input_limits.RateLimiter`), one bucket per peer address.

Over the rate the answer is **429** with ``Retry-After`` and an RFC 9457 problem details
body (``application/problem+json``); nothing behind the middleware runs. Paths outside
``prefix`` (the console, ``/health``, ``/metrics``) are not counted. The buckets live in
process memory, like the adapters': a guard against one runaway client, not a quota.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from services.messaging.input_limits import RateLimiter
from services.messaging.problems import PROBLEM_JSON

log = logging.getLogger(__name__)


class ApiRateLimit:
    def __init__(self, app: ASGIApp, *, prefix: str, limiter: RateLimiter) -> None:
        self.app = app
        self.prefix = prefix
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        client = f"address:{peer[0] if peer else 'unknown'}"
        wait = self.limiter.retry_after(client)
        if wait is None:
            await self.app(scope, receive, send)
            return
        log.warning("api request throttled", extra={"client": client, "retry_after_s": wait})
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Too Many Requests",
                "status": 429,
                "detail": f"too many requests from this client; try again in {wait} s",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(wait).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
