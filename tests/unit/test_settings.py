"""Settings refuse sandbox secrets outside the sandbox (and tests/security/test_fail_closed.py
every other refusal)."""

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.envelope import System
from services.messaging.kafka_connection import plaintext
from services.messaging.keys import hash_key
from services.messaging.payload_crypto import (
    SANDBOX_PAYLOAD_KEYS,
    Keyring,
    encode_keyring,
    new_key,
)
from services.router.settings import RouterSettings
from tests.support.settings import ROUTER_SECRETS, SECURE_KAFKA, secure_kafka_env


@pytest.mark.parametrize("cls", [RouterSettings, AdapterTakeCareSettings])
def test_production_refuses_sandbox_secrets(cls):
    with pytest.raises(ValidationError, match="PSEUDONYM_KEY: holds a published sandbox secret"):
        cls(environment="production")


def test_production_starts_with_real_secrets(monkeypatch):
    monkeypatch.setenv("ROUTER_ENVIRONMENT", "production")
    monkeypatch.setenv("ROUTER_PSEUDONYM_KEY", "k" * 40)
    monkeypatch.setenv("ROUTER_OPS_TOKEN", "t" * 40)
    monkeypatch.setenv("ROUTER_CONSOLE_SECRET", "c" * 40)
    monkeypatch.setenv("ROUTER_PAYLOAD_KEYS", encode_keyring("k1", {"k1": new_key()}))
    for name, value in secure_kafka_env("ROUTER_").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ROUTER_AUDIT_CHECKPOINT_KEY", ROUTER_SECRETS["audit_checkpoint_key"])
    monkeypatch.setenv("ROUTER_AUDIT_CHECKPOINT_SYSLOG", "udp://logs.example.se:514")
    monkeypatch.setenv("ROUTER_ALERT_UNIT_DIRECTORY", ROUTER_SECRETS["alert_unit_directory"])
    settings = RouterSettings()
    assert settings.environment == "production" and settings.ops_token == "t" * 40
    assert settings.console_users == []  # people log in through the identity provider


def test_sandbox_defaults_are_allowed_in_the_sandbox():  # chosen in tests/conftest.py
    assert AdapterTakeCareSettings().intake_key_hashes == [hash_key("sandbox-takecare-key")]


@pytest.mark.security
@pytest.mark.parametrize("cls", [RouterSettings, AdapterTakeCareSettings, AdapterTreservaSettings])
def test_every_service_refuses_the_sandbox_payload_key_in_production(cls):
    with pytest.raises(ValidationError, match="PAYLOAD_KEYS: holds the published sandbox key"):
        cls(environment="production")
    sandbox = Keyring.from_setting(SANDBOX_PAYLOAD_KEYS).keys["sandbox-1"]
    kept = encode_keyring("k1", {"k1": new_key(), "sandbox-1": base64.b64encode(sandbox).decode()})
    with pytest.raises(ValidationError, match="PAYLOAD_KEYS: holds the published sandbox key"):
        cls(environment="production", payload_keys=kept)
    assert cls(payload_keys=kept).keyring().current == "k1"  # the sandbox may keep it


def _real_secrets() -> dict[str, Any]:
    return {
        "pseudonym_key": "k" * 40,
        "payload_keys": encode_keyring("k1", {"k1": new_key()}),
        "intake_key_hashes": [hash_key(new_key())],
        "peer_key_hashes": {System.TAKECARE: [hash_key(new_key())]},
        "record_signing_key": SECURE_KAFKA["record_signing_key"],
        "record_trusted_keys": SECURE_KAFKA["record_trusted_keys"],
    }


@pytest.mark.security
@pytest.mark.parametrize("environment", ["production", "test"])
def test_a_plaintext_kafka_channel_is_refused_outside_the_sandbox(environment):
    with pytest.raises(
        ValidationError, match="ADAPTER_TRESERVA_KAFKA_SECURITY_PROTOCOL: PLAINTEXT is refused"
    ):
        AdapterTreservaSettings(environment=environment, **_real_secrets(), treserva_token="t" * 40)
    assert AdapterTreservaSettings().kafka().security_protocol == "PLAINTEXT"  # the sandbox


@pytest.mark.security
def test_an_incomplete_kafka_channel_names_the_missing_setting():
    with pytest.raises(ValidationError, match="kafka_sasl_username and kafka_sasl_password"):
        AdapterTreservaSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="a")
    with pytest.raises(ValidationError, match="kafka_ssl_certfile and kafka_ssl_keyfile"):
        AdapterTreservaSettings(kafka_security_protocol="SSL", kafka_ssl_certfile="/x.pem")
    with pytest.raises(ValidationError, match="PLAINTEXT but credentials"):
        AdapterTreservaSettings(kafka_sasl_username="a", kafka_sasl_password="b")


@pytest.mark.security
def test_every_kafka_client_gets_the_channel_from_one_connection(monkeypatch):
    for name, value in secure_kafka_env("ADAPTER_TRESERVA_").items():
        monkeypatch.setenv(name, value)
    connection = AdapterTreservaSettings().kafka()
    options = connection.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "router"
    context = options["ssl_context"]
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"
    assert "a-scram-password" not in repr(connection)  # the password stays out of logs
    assert connection.producer_options()["enable_idempotence"] is False
    assert "ssl_context" not in plaintext("127.0.0.1:9092").client_options()


def test_the_consumer_session_timeout_is_a_setting_no_lower_than_kafkas_floor(monkeypatch):
    assert plaintext("127.0.0.1:9092").consumer_options() == {
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_333,
        "fetch_max_wait_ms": 500,  # Apache Kafka answers a held fetch when a record arrives
    }
    monkeypatch.setenv("ROUTER_KAFKA_FETCH_MAX_WAIT_MS", "50")  # the sandbox's Tansu
    assert RouterSettings().kafka().consumer_options()["fetch_max_wait_ms"] == 50
    monkeypatch.setenv("ROUTER_KAFKA_SESSION_TIMEOUT_MS", "6000")
    assert RouterSettings().kafka().consumer_options()["session_timeout_ms"] == 6000
    monkeypatch.setenv("ROUTER_KAFKA_SESSION_TIMEOUT_MS", "2000")
    with pytest.raises(ValidationError, match="kafka_session_timeout_ms"):
        RouterSettings()


@pytest.mark.security
def test_production_refuses_the_sandbox_record_signing_keys():
    secure = {k: v for k, v in SECURE_KAFKA.items() if not k.startswith("record_")}
    real = {**_real_secrets(), **secure, "treserva_token": "t" * 40}
    del real["record_signing_key"], real["record_trusted_keys"]
    with pytest.raises(ValidationError, match="RECORD_SIGNING_KEY: set this service's own key"):
        AdapterTreservaSettings(
            environment="production",
            **real,
            record_trusted_keys=SECURE_KAFKA["record_trusted_keys"],
        )
    sandbox = AdapterTreservaSettings().record_verifier({})
    sandbox_keys = {
        service: {kid: base64.b64encode(k.public_bytes_raw()).decode() for kid, k in ids.items()}
        for service, ids in sandbox.trusted.items()
    }
    with pytest.raises(ValidationError, match="RECORD_TRUSTED_KEYS: list the real public keys"):
        AdapterTreservaSettings(
            environment="production",
            **real,
            record_signing_key=SECURE_KAFKA["record_signing_key"],
            record_trusted_keys=sandbox_keys,
        )
    with pytest.raises(ValidationError, match="ADAPTER_TRESERVA_RECORD_SIGNING_KEY"):
        AdapterTreservaSettings(record_signing_key="k1:not-a-key")
