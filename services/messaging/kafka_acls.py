"""Who may do what on Kafka: one principal per service, and only its own topics and groups.

This table is the broker's access policy. The sandbox's Apache Kafka (``make run
KAFKA=apache``), the tests and the production init step (deploy/kafka/acls.sh, generated
from here by ``python -m services.messaging.kafka_acls`` and compared by a test) all create
exactly these ACLs, and the table in docs/security.md is printed from it. The broker denies
everything the table does not allow (``allow.everyone.if.no.acl.found=false``); topics are
created by the admin's init step, so no service holds Create.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.messaging import topics
from services.messaging.broker_epoch import EPOCH_TOPIC

ResourceType = Literal["topic", "group", "cluster"]
Pattern = Literal["literal", "prefixed"]

ROUTER = "router"
ADAPTER_TAKECARE = "adapter_takecare"
ADAPTER_TRESERVA = "adapter_treserva"
PRINCIPALS = (ROUTER, ADAPTER_TAKECARE, ADAPTER_TRESERVA)


@dataclass(frozen=True)
class AclBinding:
    """One ALLOW ACL, in Kafka's terms: ``AclBinding("User:alice", "topic", "t", "literal",
    "Read")``. A cluster binding's name is ``kafka-cluster``."""

    principal: str
    resource_type: ResourceType
    name: str
    pattern: Pattern
    operation: str  # Read, Write, Describe, Create, DescribeConfigs, IdempotentWrite, All, ...


def _topic(user: str, name: str, *operations: str) -> list[AclBinding]:
    return [AclBinding(f"User:{user}", "topic", name, "literal", op) for op in operations]


def _group(user: str, name: str, pattern: Pattern, *operations: str) -> list[AclBinding]:
    return [AclBinding(f"User:{user}", "group", name, pattern, op) for op in operations]


def _common(user: str) -> list[AclBinding]:
    """Every service: the broker epoch (read, and written by whoever finds it empty) and the
    idempotent producer."""
    return [
        *_topic(user, EPOCH_TOPIC, "Read", "Write", "Describe"),
        AclBinding(f"User:{user}", "cluster", "kafka-cluster", "literal", "IdempotentWrite"),
    ]


def _adapter(user: str) -> list[AclBinding]:
    consumed = [d for d, adapter in topics.DELIVERED_BY.items() if adapter == user]
    return [
        *_topic(user, topics.INBOUND, "Write", "Describe"),
        *_topic(user, topics.RESULTS, "Write", "Describe"),
        *(b for d in consumed for b in _topic(user, topics.outbound(d), "Read", "Describe")),
        *_group(user, f"{user}.", "prefixed", "Read"),
        # the router's committed offsets: what it confirmed of this adapter's records, so
        # that a broker data loss publishes again only the rest (publish_watermarks)
        *_group(user, topics.ROUTER_GROUP, "literal", "Describe"),
        *_common(user),
    ]


def _router() -> list[AclBinding]:
    user = ROUTER
    return [
        *_topic(user, topics.INBOUND, "Read", "Describe"),
        *_topic(user, topics.RESULTS, "Read", "Describe"),
        # Read as well: the console's lag probe reads each destination's last batch
        *(
            b
            for d in topics.DESTINATIONS
            for b in _topic(user, topics.outbound(d), "Write", "Read", "Describe")
        ),
        *_topic(user, topics.WEBHOOKS, "Write", "Read", "Describe"),
        *_topic(user, topics.DEAD_LETTER, "Write", "Describe"),
        *_topic(user, topics.EVENTS, "Write", "Describe"),
        *_group(user, topics.ROUTER_GROUP, "literal", "Read"),
        *_group(user, topics.WEBHOOK_GROUP, "literal", "Read"),
        # the adapters' committed offsets, for the console's per-destination lag and for
        # what they confirmed of the delivery commands (publish_watermarks)
        *_group(user, "adapter_", "prefixed", "Describe"),
        *_common(user),
    ]


def reader_acls(reader: str) -> list[AclBinding]:
    """Another system that reads the public topic (topics.PUBLIC) with groups of its own
    (``<reader>.`` prefix), and nothing else: the internal topics carry patient data."""
    return [
        *(b for t in topics.PUBLIC for b in _topic(reader, t, "Read", "Describe")),
        *_group(reader, f"{reader}.", "prefixed", "Read"),
    ]


def service_acls() -> list[AclBinding]:
    return [*_router(), *_adapter(ADAPTER_TAKECARE), *_adapter(ADAPTER_TRESERVA)]


def topics_of(principal: str) -> list[str]:
    """The topics a service may describe: the ones it ensures at start-up."""
    names = {b.name for b in service_acls() if b.principal == f"User:{principal}"}
    return sorted(n for n in names if n in {*topics.all_topics(), EPOCH_TOPIC})


def acl_commands(bindings: Iterable[AclBinding], *, bootstrap: str, config: str) -> list[str]:
    """``kafka-acls.sh`` lines for the production init step (deploy/kafka/acls.sh)."""
    lines = []
    for b in bindings:
        resource = (
            "--cluster"
            if b.resource_type == "cluster"
            else f"--{b.resource_type} {shlex.quote(b.name)}"
        )
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {config} --add "
            f"--allow-principal {b.principal} --operation {b.operation} "
            f"--resource-pattern-type {b.pattern} {resource}"
        )
    return lines


def markdown_table(bindings: Iterable[AclBinding]) -> str:
    """The table in docs/security.md (Kafka security): principal, resource, operations."""
    rows: dict[tuple[str, str], list[str]] = {}
    for b in bindings:
        name = "cluster" if b.resource_type == "cluster" else f"{b.resource_type} `{b.name}`"
        if b.pattern == "prefixed":
            name += " (prefix)"
        rows.setdefault((b.principal, name), []).append(b.operation)
    out = ["| principal | topic or group | operations |", "|---|---|---|"]
    out += [f"| `{p}` | {r} | {', '.join(ops)} |" for (p, r), ops in rows.items()]
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["markdown"]:
        print(markdown_table(service_acls()))
    else:
        print(
            "\n".join(acl_commands(service_acls(), bootstrap="$BOOTSTRAP", config="$ADMIN_CONFIG"))
        )
