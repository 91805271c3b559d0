"""The service ACL table as the entries of one CreateAcls request (sandbox/kafka_config.py):
Kafka's protocol codes, an ALLOW from any host for each binding, the cluster by its name."""

import pytest

from sandbox.kafka_config import ALLOW, ANY_HOST, acl_creations
from services.messaging.kafka_acls import AclBinding, service_acls


def test_every_binding_of_the_service_table_is_one_allow_entry() -> None:
    bindings = service_acls()
    creations = acl_creations(bindings)
    assert len(creations) == len(bindings) > 40
    assert {(c[3], c[4], c[6]) for c in creations} <= {
        (b.principal, ANY_HOST, ALLOW) for b in bindings
    }


@pytest.mark.parametrize(
    ("binding", "entry"),
    [
        (
            AclBinding("User:router", "topic", "carebridge.inbound.v1", "literal", "Read"),
            (2, "carebridge.inbound.v1", 3, "User:router", "*", 3, 3),
        ),
        (
            AclBinding("User:router", "group", "carebridge-router", "prefixed", "Read"),
            (3, "carebridge-router", 4, "User:router", "*", 3, 3),
        ),
        (
            AclBinding("User:router", "cluster", "", "literal", "IdempotentWrite"),
            (4, "kafka-cluster", 3, "User:router", "*", 12, 3),
        ),
        (
            AclBinding("User:alice", "topic", "t", "literal", "DescribeConfigs"),
            (2, "t", 3, "User:alice", "*", 10, 3),
        ),
    ],
)
def test_codes_are_kafkas(binding: AclBinding, entry: tuple[object, ...]) -> None:
    assert acl_creations([binding]) == [entry]


def test_an_operation_kafka_does_not_name_is_refused() -> None:
    with pytest.raises(KeyError):
        acl_creations([AclBinding("User:x", "topic", "t", "literal", "Steal")])
