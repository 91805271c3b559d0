"""Fail closed (issue 19, item 1): each attack on a service's configuration, and the refusal
it meets. Outside the sandbox a service refuses published secrets, short keys, plain-HTTP
URLs and a PLAINTEXT Kafka channel, naming each setting and never its value; the sandbox is
chosen only explicitly and listens on loopback only. Payload rows in clear, file modes and
the sandbox's launchers are in test_fail_closed_startup.py."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import sandbox_secrets
from services.messaging.envelope import System
from services.messaging.keys import hash_key, new_key
from services.messaging.payload_crypto import encode_keyring
from services.messaging.payload_crypto import new_key as new_payload_key
from services.messaging.settings import ServiceSettings
from services.messaging.startup import settings_or_exit
from services.router.settings import RouterSettings
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security

SERVICES: list[type[ServiceSettings]] = [
    RouterSettings,
    AdapterTakeCareSettings,
    AdapterTreservaSettings,
]


def router(**more: Any) -> RouterSettings:
    """The router in production on settings it accepts, with ``more`` laid over them."""
    return RouterSettings(
        environment="production", **{**ROUTER_SECRETS, **SECURE_KAFKA, **SECURE_HTTP, **more}
    )


def treserva_adapter(**more: Any) -> AdapterTreservaSettings:
    settings: dict[str, Any] = {
        "pseudonym_key": ROUTER_SECRETS["pseudonym_key"],
        "payload_keys": encode_keyring("k1", {"k1": new_payload_key()}),
        "intake_key_hashes": [hash_key(new_key())],
        "peer_key_hashes": {System.TAKECARE: [hash_key(new_key())]},
        "treserva_token": "a-token-treserva-issued",  # theirs: any length
        "treserva_url": "https://treserva.example.se",
        **SECURE_KAFKA,
        **SECURE_HTTP,
    }
    return AdapterTreservaSettings(environment="production", **{**settings, **more})


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(excinfo.value)


def test_production_accepts_its_own_settings():
    """The baseline every attack below changes one setting of."""
    assert router().environment == "production"
    assert treserva_adapter().environment == "production"


def test_production_has_no_default_unit_directory():
    """Outside the sandbox the router names the region's own unit directory: it never falls
    back to the sandbox's made-up units (and refuses them at start-up:
    tests/security/test_fail_closed_startup.py)."""
    with pytest.raises(ValidationError) as excinfo:
        router(alert_unit_directory=None)
    assert "ROUTER_ALERT_UNIT_DIRECTORY: outside the sandbox the router has no default" in (
        refusal(excinfo)
    )
    with pytest.raises(ValidationError, match="ROUTER_ALERT_UNIT_DIRECTORY"):
        router(alert_unit_directory="")  # compose's ${X:-}: unset


# --- the environment: production unless the sandbox is chosen --------------------------------


@pytest.mark.parametrize("cls", SERVICES)
def test_a_service_started_without_its_environment_is_production_and_refuses_sandbox_secrets(
    cls, monkeypatch
):
    """The reviewer's finding: started without ``<PREFIX>ENVIRONMENT`` a service ran on the
    published secrets (a forged console cookie reached /console/audit)."""
    monkeypatch.delenv(cls.env("environment"))  # chosen for every test in tests/conftest.py
    assert cls.model_fields["environment"].default == "production"
    with pytest.raises(ValidationError) as excinfo:
        cls()
    text = refusal(excinfo)
    assert f"{cls.env('pseudonym_key')}: holds a published sandbox secret" in text
    assert f"{cls.env('payload_keys')}: holds the published sandbox key" in text
    assert f"{cls.env('record_signing_key')}: set this service's own key" in text
    for secret in sandbox_secrets.PUBLISHED:
        assert secret not in text  # named, never shown
    assert cls(environment="sandbox").environment == "sandbox"  # only when chosen


def test_the_router_names_every_sandbox_secret_it_holds(monkeypatch):
    monkeypatch.delenv("ROUTER_ENVIRONMENT")
    with pytest.raises(ValidationError) as excinfo:
        RouterSettings()
    for name in ("ROUTER_OPS_TOKEN", "ROUTER_CONSOLE_SECRET", "ROUTER_PSEUDONYM_KEY"):
        assert f"{name}: holds a published sandbox secret" in refusal(excinfo)


def test_a_started_service_without_its_environment_exits_naming_the_settings(tmp_path):
    """``python -m services.router`` with nothing set: exit 2 and the settings at fault on
    standard error; no traceback, no value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "ADAPTER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "services.router"],
        env={**env, "ROUTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "router refuses to start:" in done.stderr
    assert "ROUTER_CONSOLE_SECRET: holds a published sandbox secret" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(secret in done.stderr for secret in sandbox_secrets.PUBLISHED)
    assert not (tmp_path / "r.db").exists()  # refused before it opened anything


def test_refusals_name_each_environment_variable_once_and_never_a_value(monkeypatch):
    monkeypatch.setenv("ROUTER_ENVIRONMENT", "production")
    monkeypatch.setenv("ROUTER_PAYLOAD_KEYS", "not-a-keyring")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        settings_or_exit(RouterSettings, err=out)
    assert exited.value.code == 2
    assert "ROUTER_PAYLOAD_KEYS: payload keyring" in out.getvalue()
    assert "ROUTER_PAYLOAD_KEYS: ROUTER_PAYLOAD_KEYS" not in out.getvalue()
    assert "not-a-keyring" not in out.getvalue()


# --- published secrets: any of them, in any secret setting ---------------------------------


def test_a_published_secret_is_refused_in_a_setting_it_is_not_the_default_of():
    with pytest.raises(ValidationError) as excinfo:
        router(ops_token=sandbox_secrets.TAKECARE_KEY, alert_smtp_password="sandbox-ops-password")
    assert "ROUTER_OPS_TOKEN: holds a published sandbox secret" in refusal(excinfo)
    assert "ROUTER_ALERT_SMTP_PASSWORD: holds a published sandbox secret" in refusal(excinfo)
    assert sandbox_secrets.TAKECARE_KEY not in refusal(excinfo)


def test_an_api_client_with_a_published_key_is_refused():
    sandbox = {"monitoring": {"role": "viewer", "key_hashes": [hash_key("sandbox-treserva-key")]}}
    with pytest.raises(ValidationError, match="ROUTER_API_CLIENTS: holds the hash of a published"):
        router(api_clients=sandbox)


def test_a_journal_token_from_the_sandbox_is_refused():
    with pytest.raises(ValidationError, match="ADAPTER_TRESERVA_TRESERVA_TOKEN: holds a publish"):
        treserva_adapter(treserva_token=sandbox_secrets.TRESERVA_TOKEN)


# --- keys shorter than 32 bytes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("pseudonym_key", "ROUTER_PSEUDONYM_KEY"),
        ("ops_token", "ROUTER_OPS_TOKEN"),
        ("console_secret", "ROUTER_CONSOLE_SECRET"),
        ("metrics_token", "ROUTER_METRICS_TOKEN"),
    ],
)
def test_a_short_key_is_refused(field, name):
    short = "k3y-of-sixteen-b" + "x" * 4  # 20 bytes: enough for the sandbox, not for production
    given: dict[str, Any] = {field: short}
    with pytest.raises(ValidationError) as excinfo:
        router(**given)
    assert f"{name}: 20 bytes; at least 32 required" in refusal(excinfo)
    assert short not in refusal(excinfo)
    assert RouterSettings(**given).environment == "sandbox"  # the sandbox takes it


def test_a_short_webhook_secret_is_refused():
    with pytest.raises(ValidationError, match="ROUTER_ALERT_WEBHOOK_SECRET: 16 bytes; at least 32"):
        router(
            alert_webhook_url="https://hooks.example.se/carebridge", alert_webhook_secret="w" * 16
        )
    router(alert_webhook_url="https://hooks.example.se/carebridge", alert_webhook_secret="w" * 32)


def test_a_short_payload_key_is_refused_everywhere_and_named():
    short = base64.b64encode(b"\x01" * 16).decode()
    with pytest.raises(ValueError, match="is 16 bytes; 32 required"):
        encode_keyring("k1", {"k1": short})
    ring = base64.b64encode(json.dumps({"current": "k1", "keys": {"k1": short}}).encode()).decode()
    with pytest.raises(ValidationError) as excinfo:
        router(payload_keys=ring)
    assert "ROUTER_PAYLOAD_KEYS: key 'k1' is 16 bytes; 32 required" in refusal(excinfo)
    assert short not in refusal(excinfo) and ring not in refusal(excinfo)


# --- plain HTTP -----------------------------------------------------------------------------


def test_a_plain_http_journal_url_is_refused():
    url = "http://treserva.example.se/api?token=s3cret"
    with pytest.raises(ValidationError) as excinfo:
        treserva_adapter(treserva_url=url)
    assert "ADAPTER_TRESERVA_TRESERVA_URL: plain http is refused outside the sandbox" in (
        refusal(excinfo)
    )
    assert "s3cret" not in refusal(excinfo)


@pytest.mark.parametrize("field", ["takecare_url", "primary_care_url"])
def test_takecares_plain_http_urls_are_refused(field):
    settings = {
        "pseudonym_key": ROUTER_SECRETS["pseudonym_key"],
        "payload_keys": ROUTER_SECRETS["payload_keys"],
        "intake_key_hashes": [hash_key(new_key())],
        "peer_key_hashes": {System.TRESERVA: [hash_key(new_key())]},
        "takecare_token": "t" * 40,
        "primary_care_token": "p" * 40,
        "takecare_url": "https://takecare.example.se",
        "primary_care_url": "https://primary-care.example.se",
        **SECURE_KAFKA,
        **SECURE_HTTP,
    }
    AdapterTakeCareSettings(environment="production", **settings)
    with pytest.raises(ValidationError, match=f"ADAPTER_TAKECARE_{field.upper()}: plain http"):
        AdapterTakeCareSettings(
            environment="production", **{**settings, field: "http://journal.example.se"}
        )


def test_a_plain_http_webhook_url_is_refused():
    with pytest.raises(ValidationError, match="ROUTER_ALERT_WEBHOOK_URL: plain http is refused"):
        router(
            alert_webhook_url="http://hooks.example.se/carebridge", alert_webhook_secret="w" * 40
        )


def test_mail_in_clear_is_refused():
    with pytest.raises(ValidationError, match="ROUTER_ALERT_SMTP_SECURITY: 'none'"):
        router(alert_smtp_host="smtp.example.se", alert_smtp_security="none")


# --- Kafka ----------------------------------------------------------------------------------


def test_a_plaintext_kafka_channel_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        router(
            kafka_security_protocol="PLAINTEXT", kafka_sasl_username=None, kafka_sasl_password=None
        )
    assert "ROUTER_KAFKA_SECURITY_PROTOCOL: PLAINTEXT is refused outside the sandbox" in (
        refusal(excinfo)
    )
    assert "router refuses to start:\n  - ROUTER_KAFKA_SECURITY_PROTOCOL" in refusal(excinfo)


# --- the sandbox listens on loopback only ---------------------------------------------------


@pytest.mark.parametrize("cls", SERVICES)
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "carebridge.example.se"])
def test_the_sandbox_bound_beyond_loopback_is_refused(cls, host):
    with pytest.raises(ValidationError) as excinfo:
        cls(environment="sandbox", host=host)
    assert f"{cls.env('host')}: the sandbox listens on loopback only" in refusal(excinfo)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_the_sandbox_binds_to_loopback(host):
    assert RouterSettings(environment="sandbox", host=host).host == host


def test_production_may_listen_on_every_interface():
    assert router(host="0.0.0.0").host == "0.0.0.0"


def test_the_sandbox_stack_refuses_a_host_beyond_loopback(monkeypatch):
    from sandbox.stack import StackSettings

    monkeypatch.setenv("STACK_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match="STACK_HOST: the sandbox listens on loopback only"):
        StackSettings()
