"""The Apache Kafka launcher (sandbox/apache_kafka.py) against real brokers: a plaintext one,
and a SASL_SSL one whose SCRAM users, TLS and ACLs must hold (the design's trust boundary)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from aiokafka.helpers import create_ssl_context

from sandbox.apache_kafka import AclBinding, ApacheKafka

pytestmark = [
    pytest.mark.integration,
    pytest.mark.apache_kafka,
    pytest.mark.skipif(
        shutil.which("java") is None or shutil.which("mvn") is None,
        reason="Apache Kafka needs java and mvn (make kafka)",
    ),
]

TOPIC, SECRET_TOPIC = "care.orders.v1", "care.secret.v1"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
ALLOWED = ("alice", "carol")  # carol has no password: a client certificate


@pytest.fixture(scope="module")
def plain_kafka() -> Iterator[ApacheKafka]:
    kafka = ApacheKafka(security="plaintext")
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.remove()


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[ApacheKafka]:
    kafka = ApacheKafka(security="sasl_ssl", users=USERS)
    try:
        kafka.start()
        kafka.create_topics([TOPIC, SECRET_TOPIC])
        ops = ("Read", "Write", "Describe")
        kafka.create_acls(  # alice by SCRAM, carol by her client certificate: one AclCommand
            [AclBinding(f"User:{u}", "topic", TOPIC, "literal", op) for op in ops for u in ALLOWED]
            + [AclBinding("User:alice", "group", "alice-", "prefixed", "Read")]
        )
        yield kafka
    finally:
        kafka.remove()


def _client(
    kafka: ApacheKafka, user: str | None, password: str | None = None, *, cert: bool = False
) -> dict[str, object]:
    """aiokafka options; user None: anonymous PLAINTEXT, whatever the broker speaks."""
    settings = kafka.client_settings(user or "admin", client_cert=cert)
    options: dict[str, object] = {
        "bootstrap_servers": settings["bootstrap"],
        "request_timeout_ms": 15000,
    }
    if cert:
        options.update(
            security_protocol="SSL",
            ssl_context=create_ssl_context(
                cafile=settings["ssl_cafile"],
                certfile=settings["ssl_certfile"],
                keyfile=settings["ssl_keyfile"],
            ),
        )
    elif user is not None and settings["security_protocol"] == "SASL_SSL":
        options.update(
            security_protocol="SASL_SSL",
            sasl_mechanism=settings["sasl_mechanism"],
            sasl_plain_username=user,
            sasl_plain_password=password or settings["sasl_password"],
            ssl_context=create_ssl_context(cafile=settings["ssl_cafile"]),
        )
    return options


async def _produce(options: dict[str, object], topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**options)
    try:  # stop() also after a failed start(): an unclosed client warns, warnings are errors
        await producer.start()
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consumes(options: dict[str, object], topic: str, group: str, value: bytes) -> bool:
    """Whether ``value`` arrives on ``topic`` (read from the beginning) within 30 s."""
    consumer = AIOKafkaConsumer(
        topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **options
    )
    try:
        await consumer.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            if any(r.value == value for records in batches.values() for r in records):
                return True
        return False
    finally:
        await consumer.stop()


async def test_plaintext_round_trip(plain_kafka: ApacheKafka) -> None:
    assert plain_kafka.client_settings()["security_protocol"] == "PLAINTEXT"
    topic, value = f"plain.{uuid.uuid4().hex[:8]}", b"hello"
    plain_kafka.create_topics([topic])
    await _produce(_client(plain_kafka, "admin"), topic, value)
    assert await _consumes(_client(plain_kafka, "admin"), topic, "g-plain", value)


async def test_scram_user_with_acl_produces_and_consumes(secure_kafka: ApacheKafka) -> None:
    alice = _client(secure_kafka, "alice")
    value = uuid.uuid4().bytes
    await _produce(alice, TOPIC, value)
    assert await _consumes(alice, TOPIC, "alice-reader", value)


async def test_wrong_password_is_refused(secure_kafka: ApacheKafka) -> None:
    settings = secure_kafka.client_settings("alice")
    host, port = settings["bootstrap"].rsplit(":", 1)
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(
            host,
            int(port),
            security_protocol="SASL_SSL",
            ssl_context=create_ssl_context(cafile=settings["ssl_cafile"]),
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="alice",
            sasl_plain_password="not-alice-secret",
        )
    # a client sees the same refusal as a failed bootstrap
    with pytest.raises(KafkaConnectionError):
        await _produce(_client(secure_kafka, "alice", "not-alice-secret"), TOPIC, b"x")


async def test_anonymous_plaintext_is_refused(secure_kafka: ApacheKafka) -> None:
    with pytest.raises(KafkaConnectionError):
        await _produce(_client(secure_kafka, None), TOPIC, b"x")


async def test_client_certificate_is_the_principal(secure_kafka: ApacheKafka) -> None:
    await _produce(_client(secure_kafka, "carol", cert=True), TOPIC, b"from carol")
    with pytest.raises(TopicAuthorizationFailedError):  # a valid certificate, but no ACL
        await _produce(_client(secure_kafka, "dave", cert=True), TOPIC, b"x")
    no_cert = _client(secure_kafka, "carol", cert=True)
    no_cert["ssl_context"] = create_ssl_context(cafile=str(secure_kafka.ca_file))
    with pytest.raises(KafkaConnectionError):  # TLS without a client certificate
        await _produce(no_cert, TOPIC, b"x")


async def test_user_without_acl_is_refused(secure_kafka: ApacheKafka) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_client(secure_kafka, "bob"), TOPIC, b"x")  # no ACL at all
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_client(secure_kafka, "alice"), SECRET_TOPIC, b"x")  # not her topic


async def test_restart_keeps_records_users_and_acls(secure_kafka: ApacheKafka) -> None:
    value = uuid.uuid4().bytes
    topic = f"durable.{uuid.uuid4().hex[:8]}"
    secure_kafka.create_topics([topic])
    admin = _client(secure_kafka, "admin")
    await _produce(admin, topic, value)
    secure_kafka.restart()
    assert await _consumes(admin, topic, "durable-reader", value)
    # SCRAM credentials and ACLs live in the metadata log: alice still gets in, bob still not
    await _produce(_client(secure_kafka, "alice"), TOPIC, b"after restart")
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_client(secure_kafka, "bob"), TOPIC, b"x")
