"""Where a webhook may go (server-side request forgery): at registration the API refuses a
callback that is http outside the sandbox, off the allowlist, or resolves to a non-public
address, with a 422 naming ``body.channel.endpoint`` and never the URL; before every POST
the same checks run again on a fresh resolution, so a name re-pointed at loopback after
registration (DNS rebinding) gets nothing, and the POST goes to the address that was
checked. Resolution is a FakeResolver: no test asks DNS."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from pydantic import ValidationError
from sqlalchemy import select

from services.messaging.journal_client import TransientDeliveryError
from services.messaging.runtime import tls_from
from services.messaging.webhook_client import HttpWebhookSender, Webhook
from services.router.ops.app import create_app
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, delivery_attempt
from services.router.settings import RouterSettings
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.endpoints import (
    EndpointPolicy,
    FakeResolver,
    forbidden_range,
    host_matches,
)
from services.router.subscriptions.guard import GuardedWebhookSender
from services.router.subscriptions.matching import Criteria
from services.router.subscriptions.webhooks import WebhookDispatcher
from tests.support.pki import _ca, _leaf, _write
from tests.support.router import T0, Clock, inbound, started
from tests.support.router_api import PLATFORM_ADDRESS, SUBSCRIPTION, TOKEN, _subscriptions
from tests.support.servers import serving
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA
from tests.support.webhooks import SECRET, URL, Subscriber, commands, hook_delivery, webhook_rules

pytestmark = pytest.mark.security

HOST = "platform.example.se"
ENDPOINT_FIELD = "body.channel.endpoint"

# one address per range that must never be called, with the kind the refusal names
FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("fe80::1", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "not a public address"),  # documentation (TEST-NET-1)
    ("198.18.0.1", "not a public address"),  # benchmarking
    ("::ffff:127.0.0.1", "loopback (inside IPv6)"),
    ("::ffff:10.0.0.1", "private (inside IPv6)"),
    ("::ffff:169.254.169.254", "link-local (inside IPv6)"),
    ("2002:7f00:1::", "loopback (inside IPv6)"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a00:1", "private (inside IPv6)"),  # NAT64 of 10.0.0.1
]


ON_THE_LIST = EndpointPolicy(allowed_hosts=("*.example.se",))  # https, public addresses only


def production(**more: Any) -> RouterSettings:
    return RouterSettings(
        environment="production", **{**ROUTER_SECRETS, **SECURE_KAFKA, **SECURE_HTTP, **more}
    )


def sandbox(**more: Any) -> RouterSettings:
    return RouterSettings(subscription_allow_private_addresses=False, **more)


def body(endpoint: str) -> dict[str, Any]:
    return {**SUBSCRIPTION, "channel": {"type": "rest-hook", "endpoint": endpoint}}


async def register(sessions, settings: RouterSettings, resolver: FakeResolver, endpoint: str):
    app = create_app(settings, sessions=sessions, resolver=resolver)
    token = {"authorization": f"Bearer {settings.ops_token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=token
    ) as api:
        return await api.post("/api/v1/subscriptions", json=body(endpoint))


def refused_naming_the_field(res: httpx.Response, endpoint: str, rule: str) -> None:
    assert res.status_code == 422, res.text
    assert res.headers["content-type"] == "application/problem+json"
    (error,) = res.json()["errors"]
    assert error["field"] == ENDPOINT_FIELD
    assert rule in error["message"], error
    host = httpx.URL(endpoint).host
    assert host not in res.text and endpoint not in res.text  # never the value


# --- registration -------------------------------------------------------------------------


async def test_production_refuses_an_http_callback(sessions):
    endpoint = f"http://{HOST}/hooks"
    resolver = FakeResolver.of({HOST: [PLATFORM_ADDRESS]})
    res = await register(
        sessions, production(subscription_allowed_hosts=[HOST]), resolver, endpoint
    )
    refused_naming_the_field(res, endpoint, "https only")
    assert await _subscriptions(sessions) == 0


async def test_production_accepts_an_https_callback_on_the_allowlist(sessions):
    resolver = FakeResolver.of({HOST: [PLATFORM_ADDRESS]})
    settings = production(subscription_allowed_hosts=["*.example.se"])
    res = await register(sessions, settings, resolver, f"https://{HOST}/hooks")
    assert res.status_code == 201, res.text
    assert resolver.asked == [HOST]  # the address was checked at registration


async def test_production_with_an_empty_allowlist_registers_nothing(sessions):
    endpoint = f"https://{HOST}/hooks"
    resolver = FakeResolver.of({HOST: [PLATFORM_ADDRESS]})
    res = await register(sessions, production(), resolver, endpoint)
    refused_naming_the_field(res, endpoint, "ROUTER_SUBSCRIPTION_ALLOWED_HOSTS is empty")
    assert await _subscriptions(sessions) == 0


@pytest.mark.parametrize("endpoint", ["https://evil.example.org/h", "https://example.se/h"])
async def test_a_host_off_the_allowlist_is_refused(sessions, endpoint):
    resolver = FakeResolver.of({"evil.example.org": [PLATFORM_ADDRESS], "example.se": ["1.1.1.1"]})
    res = await register(
        sessions, sandbox(subscription_allowed_hosts=["*.example.se"]), resolver, endpoint
    )
    refused_naming_the_field(res, endpoint, "not on ROUTER_SUBSCRIPTION_ALLOWED_HOSTS")
    assert await _subscriptions(sessions) == 0


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN)
async def test_a_name_resolving_to_a_non_public_address_is_refused(sessions, address, kind):
    endpoint = f"https://{HOST}/hooks"
    resolver = FakeResolver.of({HOST: [address]})
    res = await register(sessions, sandbox(), resolver, endpoint)
    refused_naming_the_field(res, endpoint, f"forbidden address: {kind}")
    assert address not in res.text
    assert await _subscriptions(sessions) == 0


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN)
async def test_a_non_public_address_written_in_the_url_is_refused(sessions, address, kind):
    host = f"[{address}]" if ":" in address else address
    res = await register(sessions, sandbox(), FakeResolver(), f"https://{host}/hooks")
    assert res.status_code == 422, res.text
    assert res.json()["errors"][0]["field"] == ENDPOINT_FIELD
    assert await _subscriptions(sessions) == 0


@pytest.mark.parametrize("endpoint", ["https://localhost/h", "https://2130706433/h"])
async def test_loopback_in_other_spellings_is_refused(sessions, endpoint):
    resolver = FakeResolver.of({"localhost": ["127.0.0.1", "::1"]})
    res = await register(sessions, sandbox(), resolver, endpoint)
    assert res.status_code == 422, res.text
    assert await _subscriptions(sessions) == 0


async def test_a_name_with_one_private_address_among_public_ones_is_refused(sessions):
    endpoint = f"https://{HOST}/hooks"
    resolver = FakeResolver.of({HOST: [PLATFORM_ADDRESS, "10.0.0.7"]})
    res = await register(sessions, sandbox(), resolver, endpoint)
    refused_naming_the_field(res, endpoint, "forbidden address: private")


async def test_a_name_that_does_not_resolve_is_refused(sessions):
    endpoint = f"https://{HOST}/hooks"
    res = await register(sessions, sandbox(), FakeResolver(), endpoint)
    refused_naming_the_field(res, endpoint, "does not resolve")


async def test_the_sandbox_setting_lets_the_loopback_simulator_in(sessions):
    settings = RouterSettings(subscription_allow_private_addresses=True)
    res = await register(sessions, settings, FakeResolver(), "http://127.0.0.1:8103/hooks")
    assert res.status_code == 201, res.text


def test_the_allow_private_setting_is_refused_outside_the_sandbox():
    with pytest.raises(ValidationError) as refused:
        production(subscription_allowed_hosts=[HOST], subscription_allow_private_addresses=True)
    assert "ROUTER_SUBSCRIPTION_ALLOW_PRIVATE_ADDRESSES" in str(refused.value)
    production(subscription_allowed_hosts=[HOST])  # and without it the same settings start


@pytest.mark.parametrize("pattern", ["*", "*.se*", "10.0.0.0/8", "host:443", ""])
def test_an_allowlist_entry_must_be_a_name_or_a_suffix_pattern(pattern):
    with pytest.raises(ValidationError, match="ROUTER_SUBSCRIPTION_ALLOWED_HOSTS"):
        RouterSettings(subscription_allowed_hosts=[pattern])


def test_suffix_patterns_match_subdomains_not_the_apex():
    assert host_matches("a.example.se", "*.example.se")
    assert host_matches("B.a.Example.se.", "*.example.se")
    assert not host_matches("example.se", "*.example.se")
    assert not host_matches("evilexample.se", "*.example.se")
    assert host_matches("hooks.example.se", "hooks.example.se")


def test_public_addresses_pass():
    for address in (PLATFORM_ADDRESS, "1.1.1.1", "2a00:1450:4001:80b::200e"):
        assert forbidden_range(ipaddress.ip_address(address)) is None


# --- delivery ------------------------------------------------------------------------------


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rules():
    return webhook_rules()


@pytest.fixture
async def router(sessions, clock, rules):
    return await started(Router(sessions=sessions, rules=rules, clock=clock))


@pytest.fixture
def subscriber():
    return Subscriber()


@pytest.fixture
def resolver():
    return FakeResolver.of({HOST: [PLATFORM_ADDRESS]})


def dispatcher_for(sessions, clock, rules, subscriber, resolver, policy: EndpointPolicy):
    sender = HttpWebhookSender(
        5.0, clock=lambda: clock().timestamp(), transport=httpx.MockTransport(subscriber)
    )
    guarded = GuardedWebhookSender(sender, policy, resolver)
    return WebhookDispatcher(sessions=sessions, rules=rules, sender=guarded, clock=clock)


async def active_subscription(sessions, endpoint: str = URL) -> str:
    async with sessions.begin() as s:
        created = await subscription_store.create_rest_hook(
            s,
            name="platform",
            criteria=Criteria(frozenset({"admission-notice"})),
            endpoint=endpoint,
            secret=SECRET,
            created_by="ops",
            now=T0,
        )
        assert await subscription_store.activate(s, created.id, "approver", T0)
    return created.id


async def attempts(sessions, delivery_id: int) -> list[Any]:
    async with sessions() as s:
        return list(
            (
                await s.execute(
                    select(delivery_attempt).where(delivery_attempt.c.delivery_id == delivery_id)
                )
            ).all()
        )


async def test_the_post_connects_to_the_checked_address_keeping_the_name(
    router, sessions, clock, rules, subscriber, resolver
):
    dispatcher = dispatcher_for(sessions, clock, rules, subscriber, resolver, ON_THE_LIST)
    sub_id = await active_subscription(sessions)
    await router.handle_batch([inbound()])
    await dispatcher.handle_batch(await commands(sessions))
    (req,) = subscriber.requests
    assert req.url.host == PLATFORM_ADDRESS and req.url.path == "/hooks/carebridge"
    assert req.headers["host"] == HOST
    assert req.extensions["sni_hostname"] == HOST  # TLS: SNI and the certificate's name
    assert resolver.asked == [HOST]  # resolved at delivery
    assert (await hook_delivery(sessions, sub_id)).state == "confirmed"


async def test_dns_rebinding_after_registration_gets_nothing_and_is_dead_lettered(
    router, sessions, clock, rules, subscriber, resolver
):
    app = create_app(sandbox(), sessions=sessions, clock=clock, resolver=resolver)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as api:
        created = await api.post("/api/v1/subscriptions", json=body(URL))
    assert created.status_code == 201, created.text  # public at registration
    sub_id = created.json()["id"]
    async with sessions.begin() as s:
        assert await subscription_store.activate(s, sub_id, "approver", T0)
    resolver.answers[HOST] = ["127.0.0.1"]  # the name now points at the router's host
    dispatcher = dispatcher_for(sessions, clock, rules, subscriber, resolver, ON_THE_LIST)
    await router.handle_batch([inbound()])
    await dispatcher.handle_batch(await commands(sessions))
    assert subscriber.requests == []  # nothing POSTed anywhere
    d = await hook_delivery(sessions, sub_id)
    assert d.state == "dead_letter"
    assert d.last_error == "endpoint refused: its host resolves to a forbidden address: loopback"
    (attempt,) = await attempts(sessions, d.id)
    assert attempt.outcome == "fatal-error" and attempt.detail == d.last_error
    async with sessions() as s:
        (a,) = (await s.execute(select(alert))).all()
    assert (a.kind, a.destination) == ("delivery_failed", sub_id)  # an operator is told
    assert "127.0.0.1" not in d.last_error and HOST not in d.last_error


async def test_an_http_callback_is_refused_at_delivery_in_production(
    router, sessions, clock, rules, subscriber, resolver
):
    """A row written before the rules (or by hand) still gets nothing over http."""
    sub_id = await active_subscription(sessions, endpoint=f"http://{HOST}/hooks")
    policy = production(subscription_allowed_hosts=[HOST]).endpoint_policy()
    dispatcher = dispatcher_for(sessions, clock, rules, subscriber, resolver, policy)
    await router.handle_batch([inbound()])
    await dispatcher.handle_batch(await commands(sessions))
    assert subscriber.requests == []
    d = await hook_delivery(sessions, sub_id)
    assert (
        d.state == "dead_letter"
        and d.last_error == "endpoint refused: https only outside the sandbox"
    )


async def test_a_host_taken_off_the_allowlist_gets_nothing(
    router, sessions, clock, rules, subscriber, resolver
):
    sub_id = await active_subscription(sessions)
    policy = EndpointPolicy(allowed_hosts=("hooks.elsewhere.se",))
    dispatcher = dispatcher_for(sessions, clock, rules, subscriber, resolver, policy)
    await router.handle_batch([inbound()])
    await dispatcher.handle_batch(await commands(sessions))
    assert subscriber.requests == []
    assert (await hook_delivery(sessions, sub_id)).state == "dead_letter"


async def test_a_name_that_stops_resolving_is_retried_not_dead_lettered(
    router, sessions, clock, rules, subscriber, resolver
):
    sub_id = await active_subscription(sessions)
    resolver.answers.clear()
    dispatcher = dispatcher_for(sessions, clock, rules, subscriber, resolver, ON_THE_LIST)
    await router.handle_batch([inbound()])
    await dispatcher.handle_batch(await commands(sessions))
    assert subscriber.requests == []
    d = await hook_delivery(sessions, sub_id)
    assert d.state != "dead_letter"
    (attempt,) = await attempts(sessions, d.id)
    assert attempt.outcome == "transient-error" and "does not resolve" in attempt.detail


# --- pinning over a real socket -------------------------------------------------------------


@pytest.fixture
async def named_server(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 whose certificate names only ``hooks.example.se`` (from a
    CA the process trusts through SSL_CERT_FILE); yields its port and the paths it got."""
    ca_key, ca = _ca("pinning test CA")
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert = _write(
        tmp_path / "server", *_leaf("hooks", ca_key, ca, server=True, dns_names=(TLS_NAME,))
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    hits: list[tuple[str, str]] = []
    app = FastAPI()

    @app.post("/{path:path}")
    async def anything(request: Request, path: str) -> dict[str, str]:
        hits.append((path, request.headers["host"]))
        return {}

    async with serving(app, tls_from(str(cert), str(cert.with_suffix(".key")), None)) as port:
        yield port, hits


TLS_NAME = "hooks.example.se"


async def test_a_pinned_post_verifies_the_certificate_against_the_name(named_server):
    """Connected to 127.0.0.1, TLS still checks the certificate for the URL's name: the POST
    to the name the certificate holds goes through, one to another name at the same
    address is refused before anything is sent."""
    port, hits = named_server
    sender = HttpWebhookSender(5.0)

    def hook(host: str) -> Webhook:
        return Webhook(
            f"https://{host}:{port}/hook",
            b"{}",
            SECRET,
            "m-1",
            "admission-notice",
            "sub-1",
            connect_to="127.0.0.1",
        )

    try:
        assert (await sender.send(hook(TLS_NAME))).http_status == 200
        with pytest.raises(TransientDeliveryError, match="ConnectError"):
            await sender.send(hook("other.example.se"))
    finally:
        await sender.aclose()
    assert hits == [("hook", f"{TLS_NAME}:{port}")]
