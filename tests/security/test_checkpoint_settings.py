"""Outside the sandbox the router refuses to start without its own access-log checkpoint
key and a target for the checkpoints outside the database, naming the settings and never a
key; the sandbox's published key, or the Kafka record key reused, is refused too."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pydantic import ValidationError

from services.messaging.startup import settings_or_exit
from services.router.audit.checkpoint_sinks import FileSink, SyslogSink
from services.router.audit.checkpoints import sandbox_checkpoint_key
from services.router.settings import RouterSettings
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security


def router(**more: Any) -> RouterSettings:
    settings = {**ROUTER_SECRETS, **SECURE_KAFKA, **SECURE_HTTP, **more}
    return RouterSettings(environment="production", **{k: v for k, v in settings.items() if v})


def test_production_with_a_key_and_a_file_starts():
    sinks = router().checkpoint_sinks()
    assert [type(s) for s in sinks] == [FileSink]


def test_production_refuses_to_start_without_a_checkpoint_target(monkeypatch):
    with pytest.raises(ValidationError) as refused:
        router(audit_checkpoint_file=None)
    assert "ROUTER_AUDIT_CHECKPOINT_FILE, ROUTER_AUDIT_CHECKPOINT_SYSLOG" in str(refused.value)
    # the same from the environment, as `python -m services.router` starts
    for name, value in {"ENVIRONMENT": "production", "AUDIT_CHECKPOINT_FILE": ""}.items():
        monkeypatch.setenv(f"ROUTER_{name}", value)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        settings_or_exit(RouterSettings, err=out)
    assert exited.value.code == 2
    assert "ROUTER_AUDIT_CHECKPOINT_FILE, ROUTER_AUDIT_CHECKPOINT_SYSLOG" in out.getvalue()
    assert "ROUTER_AUDIT_CHECKPOINT_KEY: set the router's own" in out.getvalue()


def test_a_syslog_target_alone_is_enough():
    settings = router(audit_checkpoint_file=None, audit_checkpoint_syslog="tcp://logs:601")
    (sink,) = settings.checkpoint_sinks()
    assert isinstance(sink, SyslogSink) and (sink.host, sink.port) == ("logs", 601)


@pytest.mark.parametrize("key", [None, "sandbox"])
def test_production_refuses_no_key_or_the_published_sandbox_key(key):
    setting = sandbox_checkpoint_key() if key == "sandbox" else None
    with pytest.raises(ValidationError) as refused:
        router(audit_checkpoint_key=setting)
    assert "ROUTER_AUDIT_CHECKPOINT_KEY: set the router's own" in str(refused.value)
    assert sandbox_checkpoint_key().split(":")[1] not in str(refused.value)


def test_the_record_signing_key_is_not_the_checkpoint_key():
    with pytest.raises(ValidationError, match="AUDIT_CHECKPOINT_KEY: a key of its own"):
        router(audit_checkpoint_key=SECURE_KAFKA["record_signing_key"])


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("audit_checkpoint_key", "k1:not-base64!", "ROUTER_AUDIT_CHECKPOINT_KEY"),
        ("audit_checkpoint_syslog", "http://logs:514", "ROUTER_AUDIT_CHECKPOINT_SYSLOG"),
    ],
)
def test_a_malformed_key_or_target_is_named_at_start_up(field, value, named):
    with pytest.raises(ValidationError, match=named):
        RouterSettings(**{field: value})


def test_the_sandbox_starts_with_its_own_key_and_no_target():
    settings = RouterSettings()
    assert settings.checkpoint_sinks() == []
    assert settings.checkpoint_signer().key_id == "sandbox-audit-1"
