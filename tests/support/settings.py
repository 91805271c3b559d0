"""Settings fragments for tests that build a service's settings outside the sandbox."""

from __future__ import annotations

import json
from typing import Any

from services.messaging import sandbox_secrets
from services.messaging.keys import hash_key
from services.messaging.payload_crypto import encode_keyring, new_key
from services.messaging.record_signing import new_signing_key, public_entry

_SIGNING_KEY = f"k1:{new_signing_key()}"

# Outside the sandbox a service refuses a PLAINTEXT Kafka channel and the sandbox's record
# signing keys; these are complete, real-looking settings (nothing connects in a settings
# test).
SECURE_KAFKA: dict[str, Any] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "router",
    "kafka_sasl_password": "a-scram-password-0123456789abcdef",
    "record_signing_key": _SIGNING_KEY,
    "record_trusted_keys": {"adapter_takecare": dict([public_entry(_SIGNING_KEY)])},
}


# Outside the sandbox a service serves HTTPS (here uvicorn's own TLS; the files are only
# named) and /metrics needs a token.
SECURE_HTTP: dict[str, Any] = {
    "ssl_certfile": "/run/secrets/tls/service.pem",
    "ssl_keyfile": "/run/secrets/tls/service.key",
    "metrics_token": "a-metrics-token-0123456789abcdef",
}


def secure_kafka_env(prefix: str) -> dict[str, str]:
    """The same (and SECURE_HTTP) as environment variables of one service (``ROUTER_`` …)."""
    return {
        f"{prefix}{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in {**SECURE_KAFKA, **SECURE_HTTP}.items()
    }


# The router's own secrets outside the sandbox: none published, every key at least 32 bytes.
ROUTER_SECRETS: dict[str, Any] = {
    "ops_token": "a-real-operator-token-0123456789abcdef",
    "pseudonym_key": "a-real-pseudonym-key-0123456789abcdef",
    "console_secret": "a-real-console-secret-0123456789abcdef",
    "payload_keys": encode_keyring("k1", {"k1": new_key()}),
    # the access log's signed checkpoints: a key of the router's own, and a target
    "audit_checkpoint_key": f"audit-1:{new_signing_key()}",
    "audit_checkpoint_file": "/var/lib/carebridge/audit/access-log-checkpoints.jsonl",
    # the region's own unit directory (never a sandbox one; only named here, nothing loads it)
    "alert_unit_directory": "/etc/carebridge/units/region.json",
}


# A second admin API client, "approver" (the sandbox's, as sandbox/stack.py configures it): a
# subscription the ops token creates is activated with this key (two admins).
APPROVER = "approver"
APPROVER_KEY = sandbox_secrets.APPROVER_TOKEN
APPROVER_HEADERS = {"authorization": f"Bearer {APPROVER_KEY}"}
TWO_ADMINS: dict[str, Any] = {
    "api_clients": {APPROVER: {"role": "admin", "key_hashes": [hash_key(APPROVER_KEY)]}}
}
