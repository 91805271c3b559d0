"""The client of a destination journal's API (Treserva, TakeCare), behind a Protocol with a
Fake beside it. Every POST carries the message id as ``Idempotency-Key``.

Exceptions (the retry decision reads the class, never the text)::

    DeliveryError
     ├── TransientDeliveryError   connection refused, timeout, 5xx, 408, 429: retry later
     └── FatalDeliveryError       other 4xx, or a message the journal can never take: dead letter
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx


class DeliveryError(Exception):
    def __init__(self, reason: str, *, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


class TransientDeliveryError(DeliveryError):
    """Worth retrying."""


class FatalDeliveryError(DeliveryError):
    """Never worth retrying."""


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    http_status: int
    record_id: str | None  # the destination's own id of the record, when it tells
    latency_ms: float


class JournalClient(Protocol):
    async def post(
        self, path: str, document: dict[str, Any], *, idempotency_key: str
    ) -> DeliveryReceipt: ...


_TRANSIENT_4XX = {408, 425, 429}


def is_transient_status(status: int) -> bool:
    """An HTTP error worth retrying: 5xx, 408, 425, 429. Any other non-2xx is fatal."""
    return status >= 500 or status in _TRANSIENT_4XX


class HttpJournalClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            headers={"authorization": f"Bearer {token}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(
        self, path: str, document: dict[str, Any], *, idempotency_key: str
    ) -> DeliveryReceipt:
        started = time.perf_counter()
        try:
            res = await self._client.post(
                path,
                json=document,
                headers={"idempotency-key": idempotency_key},
            )
        except httpx.TimeoutException:
            raise TransientDeliveryError("timeout") from None
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"transport: {type(exc).__name__}") from None
        latency_ms = (time.perf_counter() - started) * 1000
        if res.status_code in (200, 201, 202):
            record_id = None
            if res.headers.get("content-type", "").startswith("application/json"):
                body = res.json()
                record_id = body.get("recordId") if isinstance(body, dict) else None
            return DeliveryReceipt(res.status_code, record_id, latency_ms)
        reason = f"HTTP {res.status_code}"
        if is_transient_status(res.status_code):
            raise TransientDeliveryError(reason, http_status=res.status_code)
        raise FatalDeliveryError(reason, http_status=res.status_code)


@dataclass
class FakeJournalClient:
    """Records calls as (path, idempotency key, document); raises ``fail_with`` (once per
    element) before accepting."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_with: list[DeliveryError] = field(default_factory=list)

    async def post(
        self, path: str, document: dict[str, Any], *, idempotency_key: str
    ) -> DeliveryReceipt:
        self.calls.append((path, idempotency_key, document))
        if self.fail_with:
            raise self.fail_with.pop(0)
        return DeliveryReceipt(202, f"REC-{len(self.calls)}", 1.0)
