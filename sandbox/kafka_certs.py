"""Throw-away TLS material for a private Apache Kafka broker (sandbox/apache_kafka.py).

One self-signed CA, one server certificate for ``localhost`` and ``127.0.0.1`` and, on demand,
client certificates (mutual TLS, the subject's CN is the principal), written as PEM files that
Kafka reads directly (``ssl.keystore.type=PEM``, ``ssl.truststore.type=PEM``) and that Python
clients take as ``ssl_cafile``/``ssl_certfile``/``ssl_keyfile``. For tests and the sandbox only:
the keys live unencrypted in the broker's private directory and expire after a week.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True)
class BrokerCerts:
    """Where the PEM files are: the CA for every client and the broker's key store."""

    ca_file: Path  # the CA certificate: clients' ssl_cafile, the broker's trust store
    keystore_file: Path  # the broker's unencrypted PKCS#8 key followed by its certificate
    ca_key_file: Path  # signs client certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "carebridge test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,  # Kafka's PEM key store reads PKCS#8 only
        serialization.NoEncryption(),
    )


def write_broker_certs(directory: Path, hosts: tuple[str, ...] = ("localhost",)) -> BrokerCerts:
    """Generate a CA and a server certificate for ``hosts`` plus 127.0.0.1 into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + VALIDITY

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("carebridge test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    key, cert = _leaf(hosts[0], names, ca_cert, ca_key)

    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    keystore_file = directory / "broker-keystore.pem"
    keystore_file.touch(mode=0o600)
    keystore_file.write_bytes(_key_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    ca_key_file = directory / "ca-key.pem"
    ca_key_file.touch(mode=0o600)
    ca_key_file.write_bytes(_key_pem(ca_key))
    return BrokerCerts(ca_file=ca_file, keystore_file=keystore_file, ca_key_file=ca_key_file)


def write_client_cert(certs: BrokerCerts, name: str) -> tuple[Path, Path]:
    """A client certificate with subject ``CN=<name>`` signed by the broker's CA: the paths of
    the certificate and of its unencrypted key, next to the CA."""
    ca_cert = x509.load_pem_x509_certificate(certs.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(certs.ca_key_file.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key, cert = _leaf(name, [x509.DNSName(name)], ca_cert, ca_key)
    cert_file, key_file = (
        certs.ca_file.with_name(f"{name}.pem"),
        certs.ca_file.with_name(f"{name}-key.pem"),
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(_key_pem(key))
    return cert_file, key_file


def _leaf(
    common_name: str,
    names: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and a certificate signed by the CA, good as TLS server and as TLS client."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca_cert.not_valid_before_utc)
        .not_valid_after(ca_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert
