"""Apache Kafka as production runs it: SASL_SSL with a SCRAM-SHA-512 user per service, mutual
TLS on its own listener, and exactly the ACL table of services/messaging/kafka_acls.py, with
the topics created by the admin. Who is refused (no credentials, a wrong password, a client
that does not check the broker's certificate, a service outside its row of the table) and who
is let in (every right of the table, used the way the service uses it).

One broker for the module. Every client is built from a KafkaConnection, as the services
build theirs, and every wait is bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import shutil
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
    for_code,
)
from cryptography import x509

from sandbox.apache_kafka import ApacheKafka
from services.messaging import topics
from services.messaging.broker_epoch import EPOCH_TOPIC
from services.messaging.committed_offsets import KafkaCommittedOffsets
from services.messaging.kafka import TopicsMissing, ensure_topics
from services.messaging.kafka_acls import (
    ADAPTER_TAKECARE,
    ADAPTER_TRESERVA,
    PRINCIPALS,
    ROUTER,
    reader_acls,
    service_acls,
)
from services.messaging.kafka_connection import KafkaConnection

pytestmark = [
    pytest.mark.kafka_security,
    pytest.mark.security,
    pytest.mark.apache_kafka,
    # one event loop for the module: a TLS connection aiokafka closes without waiting (after a
    # refused handshake, say) finishes closing while later tests run, not in a closed loop
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        shutil.which("java") is None or shutil.which("mvn") is None,
        reason="Apache Kafka needs java and mvn (make kafka)",
    ),
]

WAIT_S = 15.0  # any one client step; the broker answers in well under a second
REQUEST_TIMEOUT_MS = 5000
SCRAM: Final = "SCRAM-SHA-512"
ADAPTERS = (ADAPTER_TAKECARE, ADAPTER_TRESERVA)
WEBHOOK_GROUP = "router.webhooks"
FROM_ADAPTERS = (topics.INBOUND, topics.RESULTS)  # the sources' messages, the receipts
READER = "municipal-dashboard"  # another system reading the public topic (docs/vendors.md)


# --- the broker -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kafka() -> Iterator[ApacheKafka]:
    """What production gets: a user per service, the admin's topics, the ACL table; and an
    outside system's user with the reader's rights (``reader_acls``)."""
    broker = ApacheKafka(
        security="sasl_ssl",
        users={p: secrets.token_urlsafe(18) for p in (*PRINCIPALS, READER)},
    )
    try:
        broker.start()
        broker.create_topics(topics.all_topics(), 3)
        broker.create_topics([EPOCH_TOPIC], 1)
        broker.create_acls([*service_acls(), *reader_acls(READER)])
        yield broker
    finally:
        broker.remove()


@pytest_asyncio.fixture(scope="module", autouse=True, loop_scope="module")
async def _closes_settle(kafka: ApacheKafka) -> AsyncIterator[None]:
    """After the last test, while the broker still answers: let the connections aiokafka
    closed without waiting finish their TLS shutdown (an unclosed transport warns)."""
    yield
    await asyncio.sleep(0.5)


def _service(kafka: ApacheKafka, user: str, *, idempotent: bool = False) -> KafkaConnection:
    """The connection a service (or the admin) is configured with: SASL_SSL, SCRAM-SHA-512."""
    s = kafka.client_settings(user)
    assert (s["security_protocol"], s["sasl_mechanism"]) == ("SASL_SSL", SCRAM)
    return KafkaConnection(
        s["bootstrap"],
        security_protocol="SASL_SSL",
        sasl_mechanism=SCRAM,
        sasl_username=s["sasl_username"],
        sasl_password=s["sasl_password"],
        ssl_cafile=s["ssl_cafile"],
        idempotent_producer=idempotent,
    )


def _certified(kafka: ApacheKafka, name: str, *, idempotent: bool = False) -> KafkaConnection:
    """Mutual TLS with a certificate (signed by the broker's CA) whose CN is ``name``."""
    s = kafka.client_settings(name, client_cert=True)
    return KafkaConnection(
        s["bootstrap"],
        security_protocol="SSL",
        ssl_cafile=s["ssl_cafile"],
        ssl_certfile=s["ssl_certfile"],
        ssl_keyfile=s["ssl_keyfile"],
        idempotent_producer=idempotent,
    )


def _properties(kafka: ApacheKafka) -> dict[str, str]:
    text = (kafka.directory / "server.properties").read_text()
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def _names(value: str) -> dict[str, str]:
    """``A:x,B:y`` or ``A://x,B://y`` as {A: x, B: y}."""
    items = (item.replace("://", ":", 1).split(":", 1) for item in value.split(","))
    return {name: rest for name, rest in items}


# --- clients ----------------------------------------------------------------------------------


async def _write(connection: KafkaConnection, topic: str, value: bytes = b"probe") -> Any:
    """One record with the service's producer options; its RecordMetadata."""
    producer = AIOKafkaProducer(
        **connection.producer_options(), request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    try:  # stop() also after a failed start(): an unclosed client warns, warnings are errors
        await asyncio.wait_for(producer.start(), WAIT_S)
        return await asyncio.wait_for(producer.send_and_wait(topic, value), WAIT_S)
    finally:
        await asyncio.wait_for(producer.stop(), WAIT_S)


async def _read(connection: KafkaConnection, topic: str, group: str | None, marker: bytes) -> None:
    """Read ``topic`` from the beginning until ``marker`` arrives, as the services read: in
    ``group`` (joined, offsets committed at the end) or with no group, all partitions (the
    epoch reader, the router's lag probe). Raises whatever the broker refuses; TimeoutError
    if the marker never comes."""
    consumer = AIOKafkaConsumer(
        topic,
        **connection.client_options(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )

    async def arrives() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            if any(r.value == marker for records in batches.values() for r in records):
                return

    try:
        # joins the group; without one, takes every partition of the topic
        await asyncio.wait_for(consumer.start(), WAIT_S)
        await asyncio.wait_for(arrives(), WAIT_S)
        if group is not None:
            await asyncio.wait_for(consumer.commit(), WAIT_S)
    finally:
        await asyncio.wait_for(consumer.stop(), WAIT_S)


async def _visible_topics(connection: KafkaConnection) -> set[str]:
    consumer = AIOKafkaConsumer(**connection.client_options(), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(consumer.start(), WAIT_S)
        return set(await asyncio.wait_for(consumer.topics(), WAIT_S))
    finally:
        await asyncio.wait_for(consumer.stop(), WAIT_S)


async def _scram_handshake(
    kafka: ApacheKafka,
    user: str,
    password: str,
    *,
    mechanism: str = SCRAM,
    controller: bool = False,
) -> None:
    """One connection up to and including SASL authentication (raises what aiokafka raises);
    ``controller``: on the controller listener, SASL_PLAINTEXT."""
    tls = None if controller else ssl.create_default_context(cafile=str(kafka.ca_file))
    conn = await asyncio.wait_for(
        create_conn(
            "127.0.0.1",
            kafka.controller_port if controller else kafka.port,
            security_protocol="SASL_PLAINTEXT" if controller else "SASL_SSL",
            ssl_context=tls,
            sasl_mechanism=mechanism,
            sasl_plain_username=user,
            sasl_plain_password=password,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
        ),
        WAIT_S,
    )
    conn.close()


def _marker() -> bytes:
    return uuid.uuid4().hex.encode()


# --- 1. no anonymous client, on any listener ----------------------------------------------------


def _anonymous(kafka: ApacheKafka, case: str) -> KafkaConnection:
    address = {
        "plaintext-on-client": kafka.port,
        "plaintext-on-mtls": kafka.mtls_port,
        "plaintext-on-controller": kafka.controller_port,
        "tls-without-sasl-on-client": kafka.port,
        "tls-without-certificate-on-mtls": kafka.mtls_port,
    }[case]
    bootstrap = f"127.0.0.1:{address}"
    if case.startswith("plaintext"):
        return KafkaConnection(bootstrap)  # PLAINTEXT: what an unconfigured client speaks
    return KafkaConnection(bootstrap, security_protocol="SSL", ssl_cafile=str(kafka.ca_file))


@pytest.mark.parametrize(
    "case",
    [
        "plaintext-on-client",
        "plaintext-on-mtls",
        "plaintext-on-controller",
        "tls-without-sasl-on-client",
        "tls-without-certificate-on-mtls",
    ],
)
async def test_anonymous_client_gets_no_metadata(kafka: ApacheKafka, case: str) -> None:
    """No listener serves a client that has not authenticated: it cannot even bootstrap."""
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await _visible_topics(_anonymous(kafka, case))
    if case == "plaintext-on-client":  # the broker hangs up on the first plaintext request
        with pytest.raises(KafkaConnectionError, match="closed"):
            await asyncio.wait_for(
                create_conn("127.0.0.1", kafka.port, request_timeout_ms=REQUEST_TIMEOUT_MS),
                WAIT_S,
            )


# --- 2. authentication --------------------------------------------------------------------------


async def test_wrong_password_is_refused(kafka: ApacheKafka) -> None:
    with pytest.raises(SaslAuthenticationFailed):
        await _scram_handshake(kafka, ADAPTER_TRESERVA, "not-the-password")
    # the same refusal, seen by a client made as the service makes its clients
    wrong = dataclasses.replace(_service(kafka, ADAPTER_TRESERVA), sasl_password="not-it")
    with pytest.raises(KafkaConnectionError):
        await _write(wrong, topics.INBOUND)
    # and the right one gets in (the refusal above is the password, not the channel)
    await _scram_handshake(kafka, ADAPTER_TRESERVA, kafka.users[ADAPTER_TRESERVA])


async def test_unknown_user_is_refused_and_not_told_apart(kafka: ApacheKafka) -> None:
    """An unknown name, or another service's password under a name, is refused with the same
    message as a wrong password: the refusal does not say which names exist."""
    refusals = []
    for user, password in [
        ("mallory", "whatever"),
        ("mallory", kafka.users[ROUTER]),
        (ADAPTER_TRESERVA, kafka.users[ROUTER]),  # a real password, of another service
        (ADAPTER_TRESERVA, "not-the-password"),
    ]:
        with pytest.raises(SaslAuthenticationFailed) as refused:
            await _scram_handshake(kafka, user, password)
        refusals.append(str(refused.value))
    assert len(set(refusals)) == 1, refusals
    unknown = dataclasses.replace(_service(kafka, ROUTER), sasl_username="mallory")
    with pytest.raises(KafkaConnectionError):
        await _visible_topics(unknown)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
async def test_only_scram_sha_512_is_offered(kafka: ApacheKafka, mechanism: str) -> None:
    """PLAIN would hand the broker the password itself; neither it nor SHA-256 is enabled."""
    with pytest.raises(UnsupportedSaslMechanismError):
        await _scram_handshake(kafka, ROUTER, kafka.users[ROUTER], mechanism=mechanism)


async def test_controller_listener_takes_only_the_admin(kafka: ApacheKafka) -> None:
    """The controller listener (SASL_PLAINTEXT on loopback) accepts PLAIN for the admin only:
    a service's valid credentials get nowhere, and SCRAM is not offered there."""
    with pytest.raises(SaslAuthenticationFailed):
        await _scram_handshake(
            kafka, ROUTER, kafka.users[ROUTER], mechanism="PLAIN", controller=True
        )
    with pytest.raises(UnsupportedSaslMechanismError):
        await _scram_handshake(kafka, ROUTER, kafka.users[ROUTER], controller=True)
    await _scram_handshake(kafka, "admin", kafka.users["admin"], mechanism="PLAIN", controller=True)


# --- 3. encryption ------------------------------------------------------------------------------


async def test_client_that_does_not_trust_the_brokers_ca_fails_the_handshake(
    kafka: ApacheKafka,
) -> None:
    system_cas_only = dataclasses.replace(_service(kafka, ROUTER), ssl_cafile=None)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await _visible_topics(system_cas_only)
    with pytest.raises(ssl.SSLCertVerificationError):  # the reason, one level down
        await asyncio.wait_for(
            create_conn(
                "127.0.0.1",
                kafka.port,
                security_protocol="SASL_SSL",
                ssl_context=ssl.create_default_context(),
                sasl_mechanism=SCRAM,
                sasl_plain_username=ROUTER,
                sasl_plain_password=kafka.users[ROUTER],
            ),
            WAIT_S,
        )


@pytest.mark.parametrize("listener", ["client", "mtls"])
async def test_listeners_speak_tls_with_the_brokers_certificate(
    kafka: ApacheKafka, listener: str
) -> None:
    """A bare TLS handshake: TLS 1.2 or newer, the certificate verified against the CA (and
    for 127.0.0.1), before a single Kafka byte."""
    port = kafka.port if listener == "client" else kafka.mtls_port
    context = ssl.create_default_context(cafile=str(kafka.ca_file))
    if listener == "mtls":
        s = kafka.client_settings(ADAPTER_TRESERVA, client_cert=True)
        context.load_cert_chain(s["ssl_certfile"], s["ssl_keyfile"])
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"),
        WAIT_S,
    )
    try:
        tls = writer.get_extra_info("ssl_object")
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    finally:
        writer.close()
        await writer.wait_closed()
    ca = x509.load_pem_x509_certificate(kafka.ca_file.read_bytes())
    served.verify_directly_issued_by(ca)  # raises if another key signed it
    assert served.subject != ca.subject


async def test_server_properties_have_no_plaintext_client_listener(kafka: ApacheKafka) -> None:
    props = _properties(kafka)
    protocols = _names(props["listener.security.protocol.map"])
    listeners = _names(props["listeners"])
    assert set(listeners) == set(protocols)
    assert props["controller.listener.names"] == "CONTROLLER"
    clients = {name: protocols[name] for name in listeners if name != "CONTROLLER"}
    assert clients == {"CLIENT": "SASL_SSL", "MTLS": "SSL"}
    assert "PLAINTEXT" not in protocols.values()
    assert set(_names(props["advertised.listeners"])) == {"CLIENT", "MTLS"}
    assert listeners["CLIENT"] == f"127.0.0.1:{kafka.port}"
    assert listeners["MTLS"] == f"127.0.0.1:{kafka.mtls_port}"
    # the controller listener: internal, loopback, SASL PLAIN as the admin, never advertised
    assert protocols["CONTROLLER"] == "SASL_PLAINTEXT"
    assert listeners["CONTROLLER"] == f"127.0.0.1:{kafka.controller_port}"
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{kafka.controller_port}"
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    jaas = props["listener.name.controller.plain.sasl.jaas.config"]
    assert [w for w in jaas.split() if w.startswith("user_")] == [
        f'user_admin="{kafka.users["admin"]}";'
    ]
    # clients: SCRAM-SHA-512 only; mutual TLS requires a certificate; deny unless allowed
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["listener.name.client.sasl.enabled.mechanisms"] == SCRAM
    assert props["listener.name.mtls.ssl.client.auth"] == "required"
    assert props["authorizer.class.name"].endswith(".StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"


# --- 4. authorization: outside its row of the table, refused ----------------------------------


def _not_delivered_by(adapter: str) -> list[str]:
    own = {topics.outbound(d) for d, a in topics.DELIVERED_BY.items() if a == adapter}
    return [t for t in topics.all_topics() if t not in own]


@pytest.mark.parametrize(
    ("adapter", "topic", "group"),
    [
        # in a group of its own prefix (which it may use): the topic is refused
        *((a, t, f"{a}.probe") for a in ADAPTERS for t in _not_delivered_by(a)),
        # and without a group (partitions it may describe, but not read)
        (ADAPTER_TRESERVA, topics.INBOUND, None),
        (ADAPTER_TRESERVA, topics.RESULTS, None),
    ],
    ids=str,
)
async def test_adapter_cannot_read_what_is_not_its_own(
    kafka: ApacheKafka, adapter: str, topic: str, group: str | None
) -> None:
    """Another destination's delivery commands, the messages of every source (INBOUND), the
    receipts (RESULTS), webhooks, dead letters: all patient data an adapter has no need for."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(_service(kafka, adapter), topic, group, _marker())


async def test_adapter_treserva_does_not_even_see_other_destinations(kafka: ApacheKafka) -> None:
    seen = await _visible_topics(_service(kafka, ADAPTER_TRESERVA))
    assert seen == {topics.INBOUND, topics.RESULTS, topics.outbound("treserva"), EPOCH_TOPIC}


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("topic", [t for t in topics.all_topics() if t not in FROM_ADAPTERS])
async def test_adapter_cannot_write_delivery_commands(
    kafka: ApacheKafka, adapter: str, topic: str
) -> None:
    """A delivery command on an outbound topic is the router's word: an adapter that could
    write one could make another adapter deliver anything (or itself, from its own topic).
    An adapter writes INBOUND and RESULTS (and the epoch), nothing the router writes."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(_service(kafka, adapter), topic)


@pytest.mark.parametrize("topic", FROM_ADAPTERS)
async def test_router_cannot_forge_receipts_or_messages(kafka: ApacheKafka, topic: str) -> None:
    """RESULTS carries the destinations' receipts and INBOUND the sources' messages: the
    router reads both and writes neither."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(_service(kafka, ROUTER), topic)


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_no_service_can_create_a_topic(kafka: ApacheKafka, principal: str) -> None:
    connection = _service(kafka, principal)
    new, auto = f"carebridge.rogue-{principal}.v1", f"carebridge.auto-{principal}.v1"
    admin = AIOKafkaAdminClient(**connection.client_options(), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), WAIT_S)
        response = await asyncio.wait_for(
            admin.create_topics([NewTopic(new, 1, 1), NewTopic(topics.INBOUND, 1, 1)]), WAIT_S
        )
    finally:
        await asyncio.wait_for(admin.close(), WAIT_S)
    errors = {name: for_code(code) for name, code, *_ in response.topic_errors}
    # refused outright, also for an existing topic (not "already exists": no probing)
    assert errors == {
        new: TopicAuthorizationFailedError,
        topics.INBOUND: TopicAuthorizationFailedError,
    }
    # nor by producing to it (a metadata request may auto-create a topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(connection, auto)
    existing = await _visible_topics(_service(kafka, "admin"))
    assert {new, auto} & existing == set()


async def test_a_service_missing_a_topic_says_so_at_start_up(kafka: ApacheKafka) -> None:
    """ensure_topics (every service's start-up) names the topic it may not create, instead
    of going on and failing later with a less clear error."""
    connection = _service(kafka, ADAPTER_TRESERVA)
    await ensure_topics(connection, [topics.INBOUND, topics.outbound("treserva")], 3)  # exist
    with pytest.raises(TopicsMissing, match=r"carebridge\.missing\.v1 \(error 29\)"):
        await ensure_topics(connection, ["carebridge.missing.v1"], 3)


@pytest.mark.parametrize(
    ("principal", "topic", "group"),
    [
        (ADAPTER_TRESERVA, topics.outbound("treserva"), "router"),
        (ADAPTER_TRESERVA, topics.outbound("treserva"), WEBHOOK_GROUP),
        (ADAPTER_TAKECARE, topics.outbound("takecare"), "adapter_treserva.treserva"),
        (ADAPTER_TRESERVA, topics.outbound("treserva"), "adapter_takecare.treserva"),
        # the router may describe the adapters' groups (lag), not join them
        (ROUTER, topics.outbound("treserva"), "adapter_treserva.treserva"),
        (ROUTER, topics.WEBHOOKS, "router.other"),
    ],
    ids=str,
)
async def test_service_cannot_consume_in_another_services_group(
    kafka: ApacheKafka, principal: str, topic: str, group: str
) -> None:
    """Each topic here is one the principal may read: only the group is refused. A group
    joined by a stranger would take partitions (deliveries) away from its owner."""
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(_service(kafka, principal), topic, group, _marker())


async def test_adapter_cannot_read_another_adapters_offsets(kafka: ApacheKafka) -> None:
    consumer = AIOKafkaConsumer(
        **_service(kafka, ADAPTER_TRESERVA).client_options(),
        group_id=topics.delivery_group(ADAPTER_TAKECARE, "takecare"),
        enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    try:
        await asyncio.wait_for(consumer.start(), WAIT_S)
        with pytest.raises(GroupAuthorizationFailedError):
            await asyncio.wait_for(
                consumer.committed(TopicPartition(topics.outbound("treserva"), 0)), WAIT_S
            )
    finally:
        await asyncio.wait_for(consumer.stop(), WAIT_S)


async def test_certificate_for_a_name_without_acls_gets_nothing(kafka: ApacheKafka) -> None:
    """A valid client certificate (our CA) proves a name, not a right."""
    stranger = _certified(kafka, "stranger")
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(stranger, topics.INBOUND)
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(stranger, topics.outbound("treserva"), "stranger", _marker())
    assert await _visible_topics(stranger) == set()
    # the idempotent producer needs a cluster right (or Write on some topic): none
    with pytest.raises(ClusterAuthorizationFailedError):
        await _write(_certified(kafka, "stranger", idempotent=True), topics.INBOUND)


# --- an outside system reading the public topic --------------------------------------------


async def test_an_outside_reader_sees_only_the_public_topic(kafka: ApacheKafka) -> None:
    assert await _visible_topics(_service(kafka, READER)) == set(topics.PUBLIC)


@pytest.mark.parametrize("topic", topics.PUBLIC)
async def test_an_outside_reader_reads_the_public_topic_in_its_own_groups(
    kafka: ApacheKafka, topic: str
) -> None:
    marker = _marker()
    await _write(_service(kafka, ROUTER), topic, marker)  # the router publishes the events
    await _read(_service(kafka, READER), topic, f"{READER}.state-board", marker)


@pytest.mark.parametrize(
    "topic", [t for t in (*topics.all_topics(), EPOCH_TOPIC) if t not in topics.PUBLIC], ids=str
)
async def test_an_outside_reader_cannot_read_an_internal_topic(
    kafka: ApacheKafka, topic: str
) -> None:
    """The internal topics carry patient data (sealed payloads, pseudonyms, receipts)."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(_service(kafka, READER), topic, f"{READER}.probe", _marker())


@pytest.mark.parametrize("topic", [*topics.PUBLIC, *FROM_ADAPTERS])
async def test_an_outside_reader_cannot_write_anything(kafka: ApacheKafka, topic: str) -> None:
    """Not a forged delivery state on the public topic, nor a message or receipt."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(_service(kafka, READER), topic)


@pytest.mark.parametrize("group", [topics.ROUTER_GROUP, "another-system.events"])
async def test_an_outside_reader_cannot_join_a_group_outside_its_prefix(
    kafka: ApacheKafka, group: str
) -> None:
    """Joining the router's group, or another reader's, would take partitions from it."""
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(_service(kafka, READER), topics.EVENTS, group, _marker())


# --- 5. authorization: every right of the table works, the way the service uses it ------------


def _table(operation: str) -> list[tuple[str, str]]:
    """(principal, topic) for every topic binding of ``operation`` in the production table."""
    found = {
        (b.principal.removeprefix("User:"), b.name)
        for b in service_acls()
        if b.resource_type == "topic" and b.operation == operation
    }
    return sorted(found)


def _group_of(principal: str, topic: str) -> str | None:
    """The group the service reads ``topic`` in (router/service.py, adapter_service.py); None
    where it reads without one: the broker epoch, the router's lag probe on outbound topics."""
    if principal == ROUTER:
        return {
            topics.INBOUND: "router",
            topics.RESULTS: "router",
            topics.WEBHOOKS: WEBHOOK_GROUP,
        }.get(topic)
    for destination, adapter in topics.DELIVERED_BY.items():
        if adapter == principal and topic == topics.outbound(destination):
            return topics.delivery_group(adapter, destination)
    return None


@pytest.mark.parametrize(("principal", "topic"), _table("Write"), ids=str)
async def test_every_write_in_the_table_works(
    kafka: ApacheKafka, principal: str, topic: str
) -> None:
    written = await _write(_service(kafka, principal), topic, _marker())
    assert written.topic == topic
    assert written.offset >= 0


@pytest.mark.parametrize(("principal", "topic"), _table("Read"), ids=str)
async def test_every_read_in_the_table_works(
    kafka: ApacheKafka, principal: str, topic: str
) -> None:
    marker = _marker()
    await _write(_service(kafka, "admin"), topic, marker)
    await _read(_service(kafka, principal), topic, _group_of(principal, topic), marker)


async def test_router_reads_the_adapters_committed_offsets(kafka: ApacheKafka) -> None:
    """The console's lag: the router asks for each delivery group's committed offsets (an
    OffsetFetch in the group, no join), which its Describe on ``adapter_*`` allows."""
    for destination, adapter in topics.DELIVERED_BY.items():
        group, topic = topics.delivery_group(adapter, destination), topics.outbound(destination)
        marker = _marker()
        await _write(_service(kafka, ROUTER), topic, marker)
        await _read(_service(kafka, adapter), topic, group, marker)  # commits
        consumer = AIOKafkaConsumer(
            **_service(kafka, ROUTER).client_options(),
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
        )
        try:
            await asyncio.wait_for(consumer.start(), WAIT_S)
            offsets = [
                await asyncio.wait_for(consumer.committed(TopicPartition(topic, p)), WAIT_S)
                for p in range(3)
            ]
        finally:
            await asyncio.wait_for(consumer.stop(), WAIT_S)
        assert sum(o or 0 for o in offsets) >= 1, (group, offsets)


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_adapter_reads_what_the_router_confirmed(kafka: ApacheKafka, adapter: str) -> None:
    """What a broker data loss makes an adapter publish again is found from the router's
    committed offsets on the topics it writes (publish_watermarks), which its Describe on
    the router's group allows; joining that group stays refused (above)."""
    marker = _marker()
    await _write(_service(kafka, adapter), topics.INBOUND, marker)
    await _read(_service(kafka, ROUTER), topics.INBOUND, topics.ROUTER_GROUP, marker)  # commits
    groups = topics.confirming_groups(topics.written_by(adapter))
    reader = KafkaCommittedOffsets(_service(kafka, adapter), groups, timeout_s=WAIT_S)
    try:
        committed = await reader.committed()
    finally:
        await reader.aclose()
    assert {t for _, t, _ in committed} == {topics.INBOUND, topics.RESULTS}
    assert sum(o or 0 for (_, t, _), o in committed.items() if t == topics.INBOUND) >= 1


async def test_certificate_named_after_a_service_has_exactly_its_rights(
    kafka: ApacheKafka,
) -> None:
    treserva = _certified(kafka, ADAPTER_TRESERVA)
    assert (await _write(treserva, topics.RESULTS)).offset >= 0
    marker = _marker()
    await _write(_service(kafka, ROUTER), topics.outbound("treserva"), marker)
    await _read(
        treserva,
        topics.outbound("treserva"),
        topics.delivery_group(ADAPTER_TRESERVA, "treserva"),
        marker,
    )
    with pytest.raises(TopicAuthorizationFailedError):  # and no more
        await _write(treserva, topics.outbound("treserva"))
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(treserva, topics.outbound("treserva"), "router", _marker())


# --- 6. the idempotent producer -----------------------------------------------------------------


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_idempotent_producer_works_for_every_service(
    kafka: ApacheKafka, principal: str
) -> None:
    """Production turns it on for Apache Kafka (InitProducerId must be allowed)."""
    connection = _service(kafka, principal, idempotent=True)
    assert connection.producer_options()["enable_idempotence"] is True
    topic = topics.outbound("treserva") if principal == ROUTER else topics.RESULTS
    producer = AIOKafkaProducer(
        **connection.producer_options(), request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    try:
        await asyncio.wait_for(producer.start(), WAIT_S)  # InitProducerId happens here
        sent = [
            await asyncio.wait_for(producer.send_and_wait(topic, m, partition=0), WAIT_S)
            for m in (_marker(), _marker())
        ]
    finally:
        await asyncio.wait_for(producer.stop(), WAIT_S)
    assert sent[1].offset == sent[0].offset + 1


# --- the table against what the services do ----------------------------------------------------


async def test_table_rights_are_what_the_services_use() -> None:
    """The topics each service writes and reads, from its code (router/service.py,
    router/deliveries.py, adapter_service.py, broker_epoch.py), against the table: a right
    missing from the table fails here, and so does one nobody uses. The adapters write what
    the router reads from them, the router writes every other topic; each service reads what
    it consumes (the router also every outbound topic, for its lag probe); all of them read
    and write the broker epoch."""
    outbound = {topics.outbound(d) for d in topics.DESTINATIONS}
    writes = {
        ROUTER: {*topics.all_topics(), EPOCH_TOPIC} - set(FROM_ADAPTERS),
        **{adapter: {*FROM_ADAPTERS, EPOCH_TOPIC} for adapter in ADAPTERS},
    }
    reads = {
        ROUTER: {*FROM_ADAPTERS, topics.WEBHOOKS, *outbound, EPOCH_TOPIC},
        **{
            adapter: {t for t in topics.all_topics() if t not in _not_delivered_by(adapter)}
            | {EPOCH_TOPIC}
            for adapter in ADAPTERS
        },
    }
    assert reads[ADAPTER_TRESERVA] == {topics.outbound("treserva"), EPOCH_TOPIC}
    for operation, expected in (("Write", writes), ("Read", reads)):
        table: dict[str, set[str]] = {p: set() for p in PRINCIPALS}
        for principal, topic in _table(operation):
            table[principal].add(topic)
        assert table == expected, operation
