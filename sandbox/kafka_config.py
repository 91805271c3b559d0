"""The configuration of the private Apache Kafka broker (sandbox/apache_kafka.py).

Pure functions, text in and text out: ``server_properties`` for the one broker+controller JVM
(KRaft, single node, replication factor 1 everywhere), ``admin_properties`` for Kafka's Java
tools acting as the admin (both hold the admin's password: write them 0600), and a set of
:class:`AclBinding` as the entries of one CreateAcls request (Kafka's admin protocol).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sandbox.kafka_certs import BrokerCerts
from services.messaging.kafka_acls import AclBinding

SCRAM = "SCRAM-SHA-512"
HOST = "127.0.0.1"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


# Kafka's protocol codes (org.apache.kafka.common.acl.AclOperation, resource.ResourceType,
# resource.PatternType, acl.AclPermissionType)
_RESOURCE = {"topic": 2, "group": 3, "cluster": 4}
_PATTERN = {"literal": 3, "prefixed": 4}
_OPERATION = {
    "All": 2,
    "Read": 3,
    "Write": 4,
    "Create": 5,
    "Delete": 6,
    "Alter": 7,
    "Describe": 8,
    "ClusterAction": 9,
    "DescribeConfigs": 10,
    "AlterConfigs": 11,
    "IdempotentWrite": 12,
}
ALLOW = 3
ANY_HOST = "*"


def acl_creations(bindings: Iterable[AclBinding]) -> list[tuple[int, str, int, str, str, int, int]]:
    """The entries of one CreateAcls request (v1: resource type, name, pattern type,
    principal, host, operation, permission) for ``bindings``, each an ALLOW from any host as
    AclCommand adds them; a cluster binding names ``kafka-cluster``."""
    out = []
    for b in bindings:
        name = "kafka-cluster" if b.resource_type == "cluster" else b.name
        out.append(
            (
                _RESOURCE[b.resource_type],
                name,
                _PATTERN[b.pattern],
                b.principal,
                ANY_HOST,
                _OPERATION[b.operation],
                ALLOW,
            )
        )
    return out


def server_properties(
    *,
    port: int,
    controller_port: int,
    mtls_port: int,
    data_dir: Path,
    admin_password: str,
    certs: BrokerCerts | None,
) -> str:
    """server.properties; ``certs`` None: PLAINTEXT, else SASL_SSL with SCRAM and ACLs (plus
    mutual TLS on ``mtls_port``)."""
    listeners = [f"CLIENT://{HOST}:{port}", f"CONTROLLER://{HOST}:{controller_port}"]
    if certs is not None:
        listeners.append(f"MTLS://{HOST}:{mtls_port}")
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{HOST}:{controller_port}",
        "controller.listener.names=CONTROLLER",
        f"listeners={','.join(listeners)}",
        f"advertised.listeners={','.join(x for x in listeners if 'CONTROLLER' not in x)}",
        "inter.broker.listener.name=CLIENT",
        f"log.dirs={data_dir}",
        "num.partitions=1",
        "default.replication.factor=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",  # 50 by default: slow to create, no use here
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        # after a kill -9 the controller keeps the dead broker's registration until its session
        # expires, and only then lets the new one in: 9 s by default, 4 s here
        "broker.session.timeout.ms=4000",
        "broker.heartbeat.interval.ms=1000",
    ]
    if certs is None:
        lines.append("listener.security.protocol.map=CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT")
        return "\n".join([*lines, ""])
    admin = admin_password
    lines += [
        # The controller listener is internal (loopback; this JVM talks to itself): no TLS,
        # but SASL PLAIN as the admin, so no anonymous connection is ever trusted there.
        # (SCRAM cannot serve it: its credentials live in the metadata the controller guards.)
        "listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT,MTLS:SSL",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config="
        f'{_PLAIN_MODULE} required username="admin" password="{admin}" user_admin="{admin}";',
        # clients, and the broker itself on the inter-broker channel as the admin: SCRAM + TLS
        f"sasl.mechanism.inter.broker.protocol={SCRAM}",
        f"listener.name.client.sasl.enabled.mechanisms={SCRAM}",
        f"listener.name.client.{SCRAM.lower()}.sasl.jaas.config="
        f'{_SCRAM_MODULE} required username="admin" password="{admin}";',
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs.keystore_file}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs.ca_file}",
        # mutual TLS: a client certificate is required, its subject's CN is the principal
        "listener.name.mtls.ssl.client.auth=required",
        "ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        "super.users=User:admin",
    ]
    return "\n".join([*lines, ""])


def admin_properties(admin_password: str, ca_file: Path) -> str:
    """--command-config for Kafka's Java tools: SASL_SSL as the admin."""
    return "\n".join(
        [
            "security.protocol=SASL_SSL",
            f"sasl.mechanism={SCRAM}",
            f'sasl.jaas.config={_SCRAM_MODULE} required username="admin" '
            f'password="{admin_password}";',
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={ca_file}",
            "",
        ]
    )
