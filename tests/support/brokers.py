"""Which Kafka broker the stack tests run on: Tansu by default, Apache Kafka (SASL_SSL and
ACLs, assembled from Maven Central) with BROKER_TEST_KAFKA=apache, as CI's second pass."""

from __future__ import annotations

import os
from typing import cast

from sandbox.stack import BrokerKind

_KIND = os.environ.get("BROKER_TEST_KAFKA", "tansu")
if _KIND not in ("tansu", "apache"):
    raise RuntimeError("BROKER_TEST_KAFKA is tansu or apache")


def stack_broker() -> BrokerKind:
    return cast(BrokerKind, _KIND)
