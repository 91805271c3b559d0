"""Settings fragments for tests that build a service's settings outside the sandbox."""

from __future__ import annotations

from typing import Any

# Outside the sandbox a service refuses a PLAINTEXT Kafka channel; these are complete
# SASL_SSL settings (nothing connects in a settings test).
SECURE_KAFKA: dict[str, Any] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "router",
    "kafka_sasl_password": "a-scram-password-0123456789abcdef",
}


def secure_kafka_env(prefix: str) -> dict[str, str]:
    """The same as environment variables of one service (``ROUTER_`` …)."""
    return {f"{prefix}{name.upper()}": value for name, value in SECURE_KAFKA.items()}
