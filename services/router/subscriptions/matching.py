"""Subscriptions, in the spirit of FHIR Subscription: who receives which messages. Pure.

A subscription has criteria (event codes, and optionally the source systems it wants them
from), a channel and an endpoint:

- ``kafka``: delivery commands go to a topic (the endpoint) that a journal adapter consumes.
  The journal adapters are subscribers like any other: one subscription per destination,
  derived from the family catalogue (:mod:`services.messaging.families`) and written by the
  router at start-up (``managed_by = "catalogue"``). Their ids are the ``System`` values, so
  ``delivery.destination`` stays ``treserva``, ``takecare``, ``primary-care``.
- ``rest-hook``: the router itself POSTs the FHIR message to a URL, signed with the
  subscription's secret (:mod:`services.router.subscriptions.webhooks`). Created through the
  ops API.

Routing (:func:`route`) is a pure function over the active subscriptions; loading them is the
caller's job (:mod:`services.router.subscriptions.store`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.messaging import topics
from services.messaging.envelope import System
from services.messaging.families import FAMILIES, Family

CATALOGUE = "catalogue"
"""``managed_by`` of the journal adapters' subscriptions: the API may not change them."""

ROUTABLE_EVENTS = frozenset(event.value for family in FAMILIES for event in family.events)
"""Event codes a subscription may ask for: every family's events, never responses."""


class ChannelType(enum.StrEnum):
    KAFKA = "kafka"
    REST_HOOK = "rest-hook"


class SubscriptionStatus(enum.StrEnum):
    """``pending``: created by one admin, waiting for a different admin to activate it; it
    receives nothing. ``off``: switched off, kept for the delivery log's history."""

    PENDING = "pending"
    ACTIVE = "active"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Criteria:
    """Which messages: one of ``events``, from one of ``sources`` (None: from anyone)."""

    events: frozenset[str]
    sources: frozenset[str] | None = None

    def matches(self, event_code: str, source: str) -> bool:
        return event_code in self.events and (self.sources is None or source in self.sources)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"events": sorted(self.events)}
        if self.sources is not None:
            found["sources"] = sorted(self.sources)
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Criteria:
        sources = data.get("sources")
        return cls(
            events=frozenset(data["events"]),
            sources=None if sources is None else frozenset(sources),
        )


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscriber. The secret is not here: only the webhook sender reads it."""

    id: str
    name: str
    criteria: Criteria
    channel_type: ChannelType
    endpoint: str
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    managed_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created_by: str | None = None  # the admin (API client) that created it
    activated_by: str | None = None  # the other admin that activated it

    @property
    def active(self) -> bool:
        return self.status is SubscriptionStatus.ACTIVE


def delivery_order(subscription: Subscription) -> tuple[int, int, str, str]:
    """Sort key: the catalogue's subscriptions first, in ``System`` order (the order the
    catalogue lists destinations in), then the others oldest first."""
    systems = [s.value for s in System]
    if subscription.managed_by == CATALOGUE and subscription.id in systems:
        return (0, systems.index(subscription.id), "", subscription.id)
    created = subscription.created_at.isoformat() if subscription.created_at else ""
    return (1, 0, created, subscription.id)


def route(
    subscriptions: Iterable[Subscription], event_code: str, source: str
) -> tuple[Subscription, ...]:
    """The active subscriptions that receive ``event_code`` from ``source``, in the order
    given; a message never goes back to the system that sent it."""
    return tuple(
        s
        for s in subscriptions
        if s.active and s.id != source and s.criteria.matches(event_code, source)
    )


class CatalogueNotExpressible(ValueError):
    """A destination's routes in the catalogue are not one events × sources product."""


def catalogue_subscriptions(families: Iterable[Family] = FAMILIES) -> tuple[Subscription, ...]:
    """One ``kafka`` subscription per destination system in the family catalogue.

    Each destination's criteria are every event it receives and every source it receives
    them from. That is exact only if the destination takes every such event from every such
    source; :class:`CatalogueNotExpressible` is raised when it does not, so routing by
    subscription can never silently differ from the catalogue.
    """
    families = tuple(families)
    found = []
    for destination in System:  # declaration order: a stable order of deliveries
        pairs = {
            (event.value, source.value)
            for family in families
            for source, receivers in family.routes
            if destination in receivers
            for event in family.events
        }
        if not pairs:
            continue
        events = frozenset(e for e, _ in pairs)
        sources = frozenset(s for _, s in pairs)
        if len(pairs) != len(events) * len(sources):
            raise CatalogueNotExpressible(
                f"{destination.value} receives some events only from some sources"
            )
        found.append(
            Subscription(
                id=destination.value,
                name=f"{destination.display} (journal adapter)",
                criteria=Criteria(events=events, sources=sources),
                channel_type=ChannelType.KAFKA,
                endpoint=topics.outbound(destination.value),
                managed_by=CATALOGUE,
            )
        )
    return tuple(found)
