"""TLS verification is on by default in every httpx client: over a real socket, each of the
broker's outbound clients refuses an HTTPS server whose certificate no trusted CA signed,
and sends it nothing; and no ``httpx.AsyncClient(...)`` in services/ or sandbox/ switches
``verify`` off."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from services.messaging.journal_client import HttpJournalClient, TransientDeliveryError
from services.messaging.runtime import tls_from
from services.messaging.webhook_client import HttpWebhookSender, Webhook
from services.router.alerting.sender import TransientNotificationError, WebhookPoster
from tests.support.pki import Pki, _context
from tests.support.servers import serving

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parents[2]
CODE = (ROOT / "services", ROOT / "sandbox")  # the simulators' clients too


@pytest.fixture
async def untrusted(pki: Pki) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTPS server with a certificate from a private CA; yields its URL and the paths
    it was asked for."""
    hits: list[str] = []
    app = FastAPI()

    @app.post("/{path:path}")
    async def anything(request: Request, path: str) -> dict[str, str]:
        hits.append(path)
        return {"ok": "yes"}

    tls = tls_from(str(pki.server_cert), str(pki.server_key), None)
    async with serving(app, tls) as port:
        yield f"https://127.0.0.1:{port}", hits


async def test_the_server_answers_a_client_that_trusts_its_ca(untrusted, pki):
    url, hits = untrusted  # the control: the refusals below are the certificate's doing
    async with httpx.AsyncClient(verify=_context(pki), timeout=5) as client:
        assert (await client.post(f"{url}/probe")).status_code == 200
    assert hits == ["probe"]


async def test_the_journal_client_refuses_an_untrusted_certificate(untrusted):
    url, hits = untrusted
    client = HttpJournalClient(url, "token", 5.0)
    try:
        with pytest.raises(TransientDeliveryError, match="transport: ConnectError"):
            await client.post("/records", {"a": 1}, idempotency_key="m-1")
    finally:
        await client.aclose()
    assert hits == []


async def test_the_webhook_sender_refuses_an_untrusted_certificate(untrusted):
    url, hits = untrusted
    sender = HttpWebhookSender(5.0)
    hook = Webhook(f"{url}/hook", b"{}", "s" * 20, "m-1", "admission-notice", "sub-1")
    try:
        with pytest.raises(TransientDeliveryError, match="transport: ConnectError"):
            await sender.send(hook)
    finally:
        await sender.aclose()
    assert hits == []


async def test_the_alert_webhook_refuses_an_untrusted_certificate(untrusted):
    url, hits = untrusted
    poster = WebhookPoster("s" * 20, 5.0)
    try:
        with pytest.raises(TransientNotificationError, match="transport: ConnectError"):
            await poster.post(f"{url}/alerts", b"{}", idempotency_key="a-1", change="opened")
    finally:
        await poster.aclose()
    assert hits == []


def _async_clients() -> list[tuple[str, ast.Call]]:
    found = []
    for path in sorted(p for folder in CODE for p in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("AsyncClient", "Client")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "httpx"
            ):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def test_no_httpx_client_in_services_switches_verification_off():
    clients = _async_clients()
    assert len(clients) >= 5  # journal, webhook, alert webhook, two simulator clients
    for where, call in clients:
        for keyword in call.keywords:
            assert keyword.arg is not None, f"{where}: **kwargs could hide verify=False"
            if keyword.arg == "verify":
                value = keyword.value
                if where.startswith("services/router/ops/oidc/provider.py"):
                    # the identity provider's own CA: checked below that it still verifies
                    assert isinstance(value, ast.Attribute) and value.attr == "_verify", where
                    continue
                assert isinstance(value, ast.Constant) and value.value is True, where


def test_the_identity_providers_own_ca_still_verifies_certificate_and_host(pki):
    import ssl

    from services.router.ops.oidc.provider import IdentityProvider

    assert IdentityProvider("https://idp")._verify is True
    context = IdentityProvider("https://idp", ca_file=str(pki.ca))._verify
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.fixture
async def untrusted_idp(pki: Pki) -> AsyncIterator[str]:
    """An identity provider's discovery document over HTTPS, from the private CA."""
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, str]:
        base = str(request.base_url).rstrip("/")
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
        }

    tls = tls_from(str(pki.server_cert), str(pki.server_key), None)
    async with serving(app, tls) as port:
        yield f"https://127.0.0.1:{port}"


async def test_the_identity_provider_client_trusts_only_the_configured_ca(untrusted_idp, pki):
    from services.router.ops.oidc.provider import IdentityProvider, ProviderUnavailable

    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        await IdentityProvider(untrusted_idp).discovery()
    found = await IdentityProvider(untrusted_idp, ca_file=str(pki.ca)).discovery()
    assert found.token_endpoint == f"{untrusted_idp}/token"
