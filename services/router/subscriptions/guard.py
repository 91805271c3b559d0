"""The webhook sender the router uses: every POST is vetted first (:func:`endpoints.vet`)
and pinned to the address that passed.

A refusal becomes a failed attempt in the failure classes the dispatcher already reads
(:mod:`services.messaging.journal_client`):

- :class:`~endpoints.EndpointRefused` (http outside the sandbox, a host off the allowlist, a
  non-public address) → :class:`FatalDeliveryError`: not retried; the delivery is
  dead-lettered with a ``delivery_failed`` alert naming the rule, as any fatal webhook error;
- :class:`~endpoints.Unresolvable` → :class:`TransientDeliveryError`: DNS may come back, so
  it is retried with back-off like a refused connection.

Nothing is sent for a refused callback: the inner sender is not called.
"""

from __future__ import annotations

import dataclasses
import logging

from services.messaging.journal_client import (
    DeliveryReceipt,
    FatalDeliveryError,
    TransientDeliveryError,
)
from services.messaging.webhook_client import Webhook, WebhookSender
from services.router.subscriptions.endpoints import (
    EndpointPolicy,
    EndpointRefused,
    Resolver,
    Unresolvable,
    vet,
)

log = logging.getLogger(__name__)

REFUSED = "endpoint refused"
"""How a refused callback's attempt detail starts (then the rule: never the URL)."""


@dataclasses.dataclass
class GuardedWebhookSender:
    inner: WebhookSender
    policy: EndpointPolicy
    resolver: Resolver

    async def send(self, hook: Webhook) -> DeliveryReceipt:
        try:
            vetted = await vet(hook.url, self.policy, self.resolver)
        except EndpointRefused as exc:
            log.error(
                "webhook endpoint refused",
                extra={"subscription": hook.subscription_id, "reason": exc.reason},
            )
            raise FatalDeliveryError(f"{REFUSED}: {exc.reason}") from None
        except Unresolvable as exc:
            raise TransientDeliveryError(f"{REFUSED}: {exc.reason}") from None
        return await self.inner.send(dataclasses.replace(hook, connect_to=vetted.address))
