"""Kafka topic names. Versioned; documented in contracts/asyncapi.yaml (a test compares)."""

from __future__ import annotations

INBOUND = "carebridge.inbound.v1"
"""FHIR message Bundles from the journal adapters to the router. Key: patient pseudonym."""

RESULTS = "carebridge.results.v1"
"""FHIR response Bundles (delivery outcomes and receipts) from adapters to the router."""

DEAD_LETTER = "carebridge.deadletter.v1"
"""Messages a destination could not take (fatal error, attempts or age spent): the FHIR
message unchanged, with destination and reason in headers. The delivery log holds the same,
and replay works from there."""

WEBHOOKS = "carebridge.outbound.webhooks.v1"
"""Delivery commands for webhook (rest-hook) subscribers, consumed by the router's own
webhook dispatcher: the FHIR message Bundle unchanged, with the subscription id, delivery id
and attempt number in headers. Key: patient pseudonym."""

_OUTBOUND = "carebridge.outbound.{destination}.v1"


def outbound(destination: str) -> str:
    """Delivery commands for one destination: the FHIR message Bundle unchanged, with the
    delivery id and attempt number in headers."""
    return _OUTBOUND.format(destination=destination)


DESTINATIONS = ("treserva", "takecare", "primary-care")


# Which adapter consumes each destination's topic, and its consumer group (the router reads
# their lag for the console and /metrics).
DELIVERED_BY = {
    "treserva": "adapter_treserva",
    "takecare": "adapter_takecare",
    "primary-care": "adapter_takecare",
}


DELIVERED_BY_TOPIC = {outbound(d): adapter for d, adapter in DELIVERED_BY.items()}
"""The same by delivery-command topic: the adapter that reads it (and alone may report a
record on it quarantined, services.messaging.quarantine)."""


def delivery_group(adapter: str, destination: str) -> str:
    return f"{adapter}.{destination}"


ROUTER_GROUP = "router"
"""The router's consumer group on the inbound and results topics."""

WEBHOOK_GROUP = "router.webhooks"
"""The router's webhook dispatcher's consumer group on the webhooks topic."""


EVENTS = "carebridge.events.v1"
"""What happened to each delivery (sent, confirmed, dead-lettered), as small JSON records
with no patient data: no FHIR payload, no pseudonym; keyed by message id. The one topic
another system may read (see contracts/asyncapi.yaml)."""

PUBLIC = (EVENTS,)
"""Topics another system may read with a consumer group of its own (read-only, no delivery
guarantee). The rest is internal: the broker's own protocol, carrying patient data between
the adapters and the router, readable only by the services that need it (kafka_acls)."""


def all_topics() -> list[str]:
    return [
        INBOUND,
        RESULTS,
        DEAD_LETTER,
        WEBHOOKS,
        EVENTS,
        *(outbound(d) for d in DESTINATIONS),
    ]


# Who may write each internal topic: the consumer refuses a record signed by anyone else
# (services/messaging/record_signing.py).
WRITERS: dict[str, frozenset[str]] = {
    INBOUND: frozenset({"adapter_takecare", "adapter_treserva"}),
    RESULTS: frozenset({"adapter_takecare", "adapter_treserva"}),
    WEBHOOKS: frozenset({"router"}),
    DEAD_LETTER: frozenset({"router"}),
    EVENTS: frozenset({"router"}),
    **{outbound(d): frozenset({"router"}) for d in DESTINATIONS},
}


# The consumer groups that must have read a record on each internal topic: a group commits
# its offset only after its database commit, so a committed offset is a confirmation. After
# the broker lost its data a service publishes again only what one of them had not yet
# committed (services/messaging/publish_watermarks.py).
CONFIRMED_BY: dict[str, tuple[str, ...]] = {
    INBOUND: (ROUTER_GROUP,),
    RESULTS: (ROUTER_GROUP,),
    WEBHOOKS: (WEBHOOK_GROUP,),
    **{outbound(d): (delivery_group(a, d),) for d, a in DELIVERED_BY.items()},
}

NOT_REPUBLISHED = frozenset({DEAD_LETTER, EVENTS})
"""Topics no consumer of the broker's own reads: not published again after the broker lost
its data. The dead letters and every delivery event are in the router's delivery log (replay
works from there, and GET /api/v1/messages shows each delivery's state); a reader of the
public events topic gets no delivery guarantee. Any other topic without an entry in
CONFIRMED_BY is published again in full: nothing confirms it."""


def confirming_groups(published: list[str]) -> dict[str, tuple[str, ...]]:
    """The topics of ``published`` that consumers confirm, and their groups."""
    return {t: CONFIRMED_BY[t] for t in published if t in CONFIRMED_BY}


def written_by(principal: str) -> list[str]:
    """The internal topics ``principal`` publishes (WRITERS)."""
    return [t for t, writers in WRITERS.items() if principal in writers]
