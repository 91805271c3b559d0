"""Optional mutual TLS: an adapter served by uvicorn over a real socket with client-certificate
verification (CERT_REQUIRED) refuses a client without a certificate from its CA."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from services.adapter_takecare.app import create_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.messaging.intake import FakeIntakeStore
from services.messaging.runtime import Tls, tls_from
from tests.support.adapters import ADMISSION, NOW, TAKECARE_KEY, bearer
from tests.support.pki import Pki, _context
from tests.support.servers import serving

pytestmark = pytest.mark.security


@pytest.fixture
async def served(pki: Pki) -> AsyncIterator[str]:
    """adapter_takecare over HTTPS with client certificates required; yields its base URL."""
    settings = AdapterTakeCareSettings(
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca),
    )
    tls = tls_from(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_ca_certs)
    assert tls == Tls(str(pki.server_cert), str(pki.server_key), str(pki.ca))
    app = create_app(settings, store=FakeIntakeStore(), sessions=None, clock=lambda: NOW)
    async with serving(app, tls) as port:
        yield f"https://127.0.0.1:{port}"


async def _get(url: str, context: ssl.SSLContext) -> httpx.Response:
    async with httpx.AsyncClient(verify=context, timeout=5) as client:
        return await client.get(f"{url}/health")


async def test_a_client_without_a_certificate_is_refused(served, pki):
    with pytest.raises(httpx.TransportError):
        await _get(served, _context(pki))


async def test_a_client_with_a_certificate_from_another_ca_is_refused(served, pki):
    with pytest.raises(httpx.TransportError):
        await _get(served, _context(pki, pki.stranger_cert, pki.stranger_key))


async def test_a_client_with_a_certificate_is_served_and_still_needs_its_key(served, pki):
    context = _context(pki, pki.client_cert, pki.client_key)
    assert (await _get(served, context)).json()["status"] == "ok"
    admission = json.loads(ADMISSION.read_text(encoding="utf-8"))
    async with httpx.AsyncClient(verify=context, timeout=5) as client:
        url = f"{served}/takecare/v1/admissions"
        assert (await client.post(url, json=admission)).status_code == 401
        res = await client.post(url, json=admission, headers=bearer(TAKECARE_KEY))
    assert res.status_code == 202, res.text


def test_mutual_tls_settings_must_be_complete():
    with pytest.raises(ValueError, match="ssl_ca_certs"):
        AdapterTakeCareSettings(ssl_ca_certs="ca.pem")
    with pytest.raises(ValueError, match="go together"):
        AdapterTakeCareSettings(ssl_certfile="server.pem")
    assert tls_from(None, None, None) is None
