"""Routing rules that seal payloads at rest under a given keyring."""

import random
from datetime import timedelta

from services.messaging.payload_crypto import (
    Keyring,
)
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies


def routing(keyring: Keyring, **more) -> RoutingRules:
    return RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
        keyring=keyring,
        **more,
    )
