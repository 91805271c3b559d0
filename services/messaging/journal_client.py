"""The client of a destination journal's API (Treserva, TakeCare), behind a Protocol with a
Fake beside it. Every POST carries the message id as ``Idempotency-Key``; a record is read
back (confirmation by read-back) with ``GET <POST path>/<Idempotency-Key>``, by the same
client: the same credential, base URL and TLS rules.

Exceptions (the retry decision reads the class, never the text)::

    DeliveryError
     ├── TransientDeliveryError   connection refused, timeout, 5xx, 408, 429: retry later
     └── FatalDeliveryError       other 4xx, or a message the journal can never take: dead letter
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

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


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """What a journal's API says of a record it holds; never its content (patient data)."""

    record_id: str | None  # the journal's own id of the record, when it tells
    recorded_at: datetime | None  # when the journal stored it, when it tells


class JournalClient(Protocol):
    async def post(
        self, path: str, document: dict[str, Any], *, idempotency_key: str
    ) -> DeliveryReceipt: ...


class RecordReader(Protocol):
    async def find(self, path: str, *, idempotency_key: str) -> StoredRecord | None:
        """The record posted to ``path`` under ``idempotency_key``; None when the journal
        does not hold it (404). Raises :class:`DeliveryError` when it cannot tell."""
        ...


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
        raise _error_of(res.status_code)

    async def find(self, path: str, *, idempotency_key: str) -> StoredRecord | None:
        try:
            res = await self._client.get(f"{path}/{quote(idempotency_key, safe='')}")
        except httpx.TimeoutException:
            raise TransientDeliveryError("timeout") from None
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"transport: {type(exc).__name__}") from None
        if res.status_code == 404:
            return None
        if not 200 <= res.status_code < 300:
            raise _error_of(res.status_code)
        try:
            body = res.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return StoredRecord(None, None)
        record_id = body.get("recordId")
        return StoredRecord(
            str(record_id)[:64] if record_id is not None else None,
            parse_instant(body.get("receivedAt")),
        )


def _error_of(status: int) -> DeliveryError:
    reason = f"HTTP {status}"
    if is_transient_status(status):
        return TransientDeliveryError(reason, http_status=status)
    return FatalDeliveryError(reason, http_status=status)


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 time with its offset; None when absent or not one."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


@dataclass
class FakeJournalClient:
    """Records calls as (path, idempotency key, document); raises ``fail_with`` (once per
    element) before accepting. What it accepts it holds in ``stored`` (by path and key)
    unless ``drop`` is set (a silent drop: accepted, never stored); :meth:`find` raises
    ``find_fail_with`` (once per element) before looking, and counts in ``finds``."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_with: list[DeliveryError] = field(default_factory=list)
    stored: dict[tuple[str, str], StoredRecord] = field(default_factory=dict)
    drop: bool = False
    find_fail_with: list[DeliveryError] = field(default_factory=list)
    finds: int = 0

    async def post(
        self, path: str, document: dict[str, Any], *, idempotency_key: str
    ) -> DeliveryReceipt:
        self.calls.append((path, idempotency_key, document))
        if self.fail_with:
            raise self.fail_with.pop(0)
        record_id = f"REC-{len(self.calls)}"
        if not self.drop:
            self.stored.setdefault((path, idempotency_key), StoredRecord(record_id, None))
        return DeliveryReceipt(202, record_id, 1.0)

    async def find(self, path: str, *, idempotency_key: str) -> StoredRecord | None:
        self.finds += 1
        if self.find_fail_with:
            raise self.find_fail_with.pop(0)
        return self.stored.get((path, idempotency_key))
