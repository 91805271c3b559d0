"""Optional mutual TLS: an adapter served by uvicorn over a real socket with client-certificate
verification (CERT_REQUIRED) refuses a client without a certificate from its CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.adapter_takecare.app import create_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.messaging.intake import FakeIntakeStore
from services.messaging.runtime import Tls, tls_from
from tests.security.conftest import ADMISSION, NOW, TAKECARE_KEY, bearer
from tests.security.servers import serving

pytestmark = pytest.mark.security


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    cn: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Path:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path.with_suffix(".pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _ca("carebridge test CA")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = _write(d / "server", *_leaf("127.0.0.1", ca_key, ca, server=True))
    client = _write(d / "client", *_leaf("takecare", ca_key, ca, server=False))
    other_key, other = _ca("someone else's CA")
    stranger = _write(d / "stranger", *_leaf("takecare", other_key, other, server=False))
    return Pki(
        ca=d / "ca.pem",
        server_cert=server,
        server_key=server.with_suffix(".key"),
        client_cert=client,
        client_key=client.with_suffix(".key"),
        stranger_cert=stranger,
        stranger_key=stranger.with_suffix(".key"),
    )


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


def _context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


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
    assert (await _get(served, context)).json() == {"status": "ok"}
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
