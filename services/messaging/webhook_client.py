"""POSTing one signed webhook, classified like a delivery to a journal.

The body goes out byte for byte as given (``application/fhir+json``), with::

    Idempotency-Key            the message id: the receiver dedupes on it
    X-Carebridge-Event         the event code, e.g. admission-notice
    X-Carebridge-Subscription  the subscription id
    X-Carebridge-Signature     t=<unix seconds>,v1=<HMAC-SHA256(secret, "<t>." + body)>

None of them carries patient data. 2xx is success; a timeout, a connection error, 408, 425,
429 or 5xx raise :class:`TransientDeliveryError`; any other answer (other 4xx, a redirect,
which is not followed) raises :class:`FatalDeliveryError`, the same classes a journal client
raises (see :mod:`services.messaging.journal_client`). TLS certificates are verified.

**Pinning.** A :class:`Webhook` with ``connect_to`` (an IP address the caller checked, see
:mod:`services.router.subscriptions.endpoints`) is sent to that address and no other: the
URL's host is replaced by it, the ``Host`` header keeps the name, and httpx's
``sni_hostname`` request extension makes TLS send the name as SNI and verify the
certificate against it. No second DNS lookup happens between the check and the connection.
Connections are pooled per host name (:class:`PerHostPools`), so a connection whose
certificate was verified for one name is never reused for another name at the same
address. Proxies from the environment are not used: they would resolve the name again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from services.messaging.http import FHIR_JSON
from services.messaging.journal_client import (
    DeliveryReceipt,
    FatalDeliveryError,
    TransientDeliveryError,
    is_transient_status,
)
from services.messaging.signing import SIGNATURE_HEADER, sign

EVENT_HEADER = "X-Carebridge-Event"
SUBSCRIPTION_HEADER = "X-Carebridge-Subscription"


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    body: bytes
    secret: str = field(repr=False)
    idempotency_key: str
    event: str
    subscription_id: str
    connect_to: str | None = None  # a checked IP address; None: the URL's host as it resolves


class PerHostPools(httpx.AsyncBaseTransport):
    """One connection pool per TLS server name (the pinned request's ``sni_hostname``, else
    the URL's host): a pinned URL's host is an address several names may share."""

    def __init__(self) -> None:
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = str(request.extensions.get("sni_hostname") or request.url.host)
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = httpx.AsyncHTTPTransport(verify=True)
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


class WebhookSender(Protocol):
    async def send(self, hook: Webhook) -> DeliveryReceipt: ...


class HttpWebhookSender:
    def __init__(
        self,
        timeout_s: float,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._clock = clock
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport if transport is not None else PerHostPools(),
            verify=True,
            trust_env=False,  # an environment proxy would undo the pinning (see above)
            follow_redirects=False,
            headers={"user-agent": "carebridge-webhooks/1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, hook: Webhook) -> DeliveryReceipt:
        headers = {
            "content-type": FHIR_JSON,
            "idempotency-key": hook.idempotency_key,
            EVENT_HEADER: hook.event,
            SUBSCRIPTION_HEADER: hook.subscription_id,
            SIGNATURE_HEADER: sign(hook.secret, hook.body, int(self._clock())),
        }
        url = httpx.URL(hook.url)
        extensions: dict[str, Any] = {}
        if hook.connect_to is not None:
            headers["host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = url.host
            url = url.copy_with(host=hook.connect_to)
        started = time.perf_counter()
        try:
            res = await self._client.post(
                url, content=hook.body, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException:
            raise TransientDeliveryError("timeout") from None
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"transport: {type(exc).__name__}") from None
        latency_ms = (time.perf_counter() - started) * 1000
        if 200 <= res.status_code < 300:
            return DeliveryReceipt(res.status_code, None, latency_ms)
        reason = f"HTTP {res.status_code}"
        if res.status_code == 401:
            # the subscriber refused the signature: most likely a clock off by more than its
            # tolerance (ours or its), or a secret rotated on one side only; both get fixed,
            # so the notice is retried (under an incident), never dead-lettered
            raise TransientDeliveryError(
                f"{reason}: signature refused (clock skew or secret?)", http_status=401
            )
        if is_transient_status(res.status_code):
            raise TransientDeliveryError(reason, http_status=res.status_code)
        raise FatalDeliveryError(reason, http_status=res.status_code)
