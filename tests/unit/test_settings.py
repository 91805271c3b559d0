"""Settings refuse sandbox secrets outside the sandbox."""

import base64
import json

import pytest
from pydantic import ValidationError

from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.keys import hash_key
from services.messaging.payload_crypto import (
    SANDBOX_PAYLOAD_KEYS,
    Keyring,
    encode_keyring,
    new_key,
)
from services.router.console.accounts import hash_password
from services.router.settings import RouterSettings


@pytest.mark.parametrize("cls", [RouterSettings, AdapterTakeCareSettings])
def test_production_refuses_sandbox_secrets(cls):
    with pytest.raises(ValidationError, match="sandbox secrets"):
        cls(environment="production")


def test_production_starts_with_real_secrets(monkeypatch):
    monkeypatch.setenv("ROUTER_ENVIRONMENT", "production")
    monkeypatch.setenv("ROUTER_PSEUDONYM_KEY", "k" * 40)
    monkeypatch.setenv("ROUTER_OPS_TOKEN", "t" * 40)
    monkeypatch.setenv("ROUTER_CONSOLE_SECRET", "c" * 40)
    monkeypatch.setenv("ROUTER_PAYLOAD_KEYS", encode_keyring("k1", {"k1": new_key()}))
    user = {"name": "asa", "role": "admin", "password_hash": hash_password("a long passphrase")}
    monkeypatch.setenv("ROUTER_CONSOLE_USERS", json.dumps([user]))
    settings = RouterSettings()
    assert settings.environment == "production" and settings.ops_token == "t" * 40
    assert [u.name for u in settings.console_users] == ["asa"]


def test_sandbox_defaults_are_allowed_in_the_sandbox():
    assert AdapterTakeCareSettings().intake_key_hashes == [hash_key("sandbox-takecare-key")]


@pytest.mark.security
@pytest.mark.parametrize("cls", [RouterSettings, AdapterTakeCareSettings, AdapterTreservaSettings])
def test_every_service_refuses_the_sandbox_payload_key_in_production(cls):
    with pytest.raises(ValidationError, match="payload_keys"):
        cls(environment="production")
    sandbox = Keyring.from_setting(SANDBOX_PAYLOAD_KEYS).keys["sandbox-1"]
    kept = encode_keyring("k1", {"k1": new_key(), "sandbox-1": base64.b64encode(sandbox).decode()})
    with pytest.raises(ValidationError, match=r"payload_keys \(holds the sandbox key\)"):
        cls(environment="production", payload_keys=kept)
    assert cls(payload_keys=kept).keyring().current == "k1"  # the sandbox may keep it
