"""Every secret this repository publishes: the sandbox's credentials, printed by ``make run``,
written in the README, the docs, the simulators and the tests. Anyone can read them, so
outside the sandbox a service refuses each of them in *every* secret setting, not only as
that setting's own default, and refuses a key hash that is the hash of one of them
(:mod:`services.messaging.fail_closed`).

The sandbox's payload key and record signing keys are published too; they are bytes, not
strings, and are recognised where they are parsed (``payload_crypto``, ``record_signing``).
Only constants here: the settings of every service import this module.
"""

from __future__ import annotations

import hashlib

PSEUDONYM_KEY = "sandbox-pseudonym-key-not-for-production"
TAKECARE_KEY = "sandbox-takecare-key"  # TakeCare's bearer key toward adapter_takecare
TRESERVA_KEY = "sandbox-treserva-key"  # Treserva's toward adapter_treserva
TAKECARE_TOKEN = "sandbox-takecare-api-key"  # the broker's toward TakeCare's API
PRIMARY_CARE_TOKEN = "sandbox-primary-care-api-key"  # the broker's toward primary care
TRESERVA_TOKEN = "sandbox-treserva-api-key"  # the broker's toward Treserva's API
OPS_TOKEN = "sandbox-ops-token"  # the router's API client "ops" (the ops CLI)
# the sandbox's second admin API client "approver": activates the subscriptions "ops" makes
APPROVER_TOKEN = "sandbox-approver-token"
CONSOLE_SECRET = "sandbox-console-secret-not-for-production"  # keys console session ids
CONSOLE_PASSWORDS = {"ops": "sandbox-ops-password", "viewer": "sandbox-viewer-password"}
SUBSCRIBER_SECRET = "sandbox-subscriber-secret"  # the subscriber simulator's webhook secret

PUBLISHED: frozenset[str] = frozenset(
    {
        PSEUDONYM_KEY,
        TAKECARE_KEY,
        TRESERVA_KEY,
        TAKECARE_TOKEN,
        PRIMARY_CARE_TOKEN,
        TRESERVA_TOKEN,
        OPS_TOKEN,
        APPROVER_TOKEN,
        CONSOLE_SECRET,
        SUBSCRIBER_SECRET,
        *CONSOLE_PASSWORDS.values(),
    }
)
"""Every published secret string."""

PUBLISHED_HASHES: frozenset[str] = frozenset(
    hashlib.sha256(secret.encode()).hexdigest() for secret in PUBLISHED
)
"""Their SHA-256 (``services.messaging.keys.hash_key``): what a key-hash setting holds."""
