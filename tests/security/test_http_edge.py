"""Headers and transport (issue 19, item 4): security headers on every answer of every app,
a console without inline script, the API description and ``/metrics`` behind a credential
outside the sandbox, and no service that starts outside the sandbox without HTTPS (its own
TLS, or a TLS proxy at addresses it trusts)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from services.adapter_takecare.app import OWNER as TAKECARE_OWNER
from services.adapter_takecare.app import create_app as create_takecare
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.app import OWNER as TRESERVA_OWNER
from services.adapter_treserva.app import create_app as create_treserva
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import keys
from services.messaging.envelope import System
from services.messaging.http_edge import CONTENT_SECURITY_POLICY
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.payload_crypto import encode_keyring, new_key
from services.messaging.runtime import server_config
from services.messaging.settings import ServiceSettings
from services.router.ops.app import create_app as create_router
from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from services.router.settings import RouterSettings
from tests.support.adapters import NOW, TAKECARE_KEY, TRESERVA_KEY
from tests.support.app_routes import Target, targets, url
from tests.support.servers import serving
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security

TEMPLATES = Path("services/router/ops/console/templates")
DESCRIPTION = ("/openapi.json", "/docs", "/redoc")
METRICS_TOKEN = SECURE_HTTP["metrics_token"]


# --- security headers ---------------------------------------------------------------------


def assert_secure_headers(res: httpx.Response) -> None:
    what = f"{res.request.method} {res.request.url.path} → {res.status_code}"
    assert res.headers.get("x-content-type-options") == "nosniff", what
    assert res.headers.get("referrer-policy") == "no-referrer", what
    assert res.headers.get("x-frame-options") == "DENY", what
    path = res.request.url.path
    if path not in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert res.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, what
    if not path.startswith("/console/static/"):
        assert res.headers.get("cache-control") == "no-store", what


def test_the_policy_allows_no_inline_script_and_no_framing():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


def test_no_console_template_holds_inline_script_style_or_handlers():
    inline = re.compile(r"<script|<style|\son[a-z]+\s*=|\sstyle\s*=|javascript:", re.I)
    found = {p.name: inline.findall(p.read_text()) for p in TEMPLATES.glob("*.html")}
    assert len(found) > 8
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.fixture
async def sandbox_apps(sessions) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    apps: dict[str, tuple[FastAPI, str]] = {
        "adapter_takecare": (
            create_takecare(
                AdapterTakeCareSettings(),
                store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
                sessions=sessions,
                clock=lambda: NOW,
            ),
            TAKECARE_KEY,
        ),
        "adapter_treserva": (
            create_treserva(
                AdapterTreservaSettings(),
                store=GroupedIntakeStore(sessions, TRESERVA_OWNER),
                sessions=sessions,
                clock=lambda: NOW,
            ),
            TRESERVA_KEY,
        ),
        "router": (create_router(RouterSettings(), sessions=sessions), "sandbox-ops-token"),
    }
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://svc",
            headers={"authorization": f"Bearer {key}"},
        )
        for name, (app, key) in apps.items()
    }
    yield clients
    for client in clients.values():
        await client.aclose()


async def test_every_answer_of_every_app_has_the_security_headers(sandbox_apps):
    """Every route of every app (console pages, API, intake, metrics, static, errors)."""
    router = sandbox_apps["router"]
    logged_in = await router.post(
        "/console/login", data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"]}
    )
    assert_secure_headers(logged_in)  # the 303 too
    answered = 0
    for client in sandbox_apps.values():
        app = client._transport.app
        for target in targets(app):
            res = await client.request(target.method, url(target.path, "1"))
            assert_secure_headers(res)
            answered += 1
    static = await router.get("/console/static/console.css")
    assert static.status_code == 200 and "cache-control" not in static.headers
    assert answered > 150


async def test_every_console_page_sends_the_policy_and_runs_no_inline_script(sandbox_apps):
    router = sandbox_apps["router"]
    login = await router.get("/console/login")
    assert login.status_code == 200
    assert_secure_headers(login)
    await router.post("/console/login", data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"]})
    pages = [t for t in targets(router._transport.app) if _console_page(t)]
    assert len(pages) >= 8
    for page in pages:
        res = await router.get(url(page.path, "nope"))
        assert res.headers["content-type"].startswith("text/html"), page
        assert_secure_headers(res)
        assert not re.search(r"<script|\son[a-z]+=|\sstyle=|javascript:", res.text, re.I), page


def _console_page(target: Target) -> bool:
    return (
        target.method == "GET"
        and target.path.startswith("/console")
        and not target.path.startswith("/console/static")
        and "export" not in target.path
        and not target.path.endswith(".csv")  # downloads, not pages
    )


# --- the API description and /metrics outside the sandbox --------------------------------


OPS_TOKEN = "a-real-ops-token-0123456789abcdefghij"  # 32 bytes at least outside the sandbox


def production(cls: type[ServiceSettings], **overrides: Any) -> Any:
    """Settings as production runs them: real secrets, secure Kafka, HTTPS, a metrics token."""
    real: dict[str, Any] = {
        "environment": "production",
        "pseudonym_key": "k" * 40,
        "payload_keys": encode_keyring("k1", {"k1": new_key()}),
        **SECURE_KAFKA,
        **SECURE_HTTP,
    }
    if cls is RouterSettings:
        real |= {"ops_token": OPS_TOKEN, "console_secret": "c" * 40}
        real |= {
            k: v
            for k, v in ROUTER_SECRETS.items()
            if k.startswith("audit_checkpoint") or k == "alert_unit_directory"
        }
    else:
        own, other = (
            (TAKECARE_KEY, System.TRESERVA)
            if cls is AdapterTakeCareSettings
            else (TRESERVA_KEY, System.TAKECARE)
        )
        real |= {
            "intake_key_hashes": [keys.hash_key(own + "-real")],
            "peer_key_hashes": {other: [keys.hash_key(new_key())]},
            "takecare_token": "t" * 40,
            "primary_care_token": "p" * 40,
            "treserva_token": "t" * 40,
            "takecare_url": "https://takecare.example.se",
            "primary_care_url": "https://primary-care.example.se",
            "treserva_url": "https://treserva.example.se",
        }
    return cls(**{**real, **overrides})


def production_apps(sessions) -> dict[str, tuple[FastAPI, str]]:
    """Each app in production, with a key its API takes."""
    return {
        "router": (
            create_router(production(RouterSettings), sessions=sessions),
            OPS_TOKEN,
        ),
        "adapter_takecare": (
            create_takecare(
                production(AdapterTakeCareSettings),
                store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
                sessions=sessions,
                clock=lambda: NOW,
            ),
            TAKECARE_KEY + "-real",
        ),
        "adapter_treserva": (
            create_treserva(
                production(AdapterTreservaSettings),
                store=GroupedIntakeStore(sessions, TRESERVA_OWNER),
                sessions=sessions,
                clock=lambda: NOW,
            ),
            TRESERVA_KEY + "-real",
        ),
    }


async def get(app: FastAPI, path: str, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://svc"
    ) as client:
        return await client.get(path, headers=headers)


@pytest.mark.parametrize("name", ["router", "adapter_takecare", "adapter_treserva"])
async def test_in_production_the_api_description_needs_a_key_of_the_api(sessions, name):
    app, key = production_apps(sessions)[name]
    shape = "application/problem+json" if name == "router" else "application/fhir+json"
    for path in DESCRIPTION:
        for wrong in (None, "sandbox-ops-token", TAKECARE_KEY, METRICS_TOKEN):
            res = await get(app, path, wrong)
            assert res.status_code == 401, (path, wrong)
            assert res.headers["content-type"] == shape
            assert res.headers["www-authenticate"].startswith("Bearer")
            assert "openapi" not in res.text and "swagger" not in res.text.lower()
            assert_secure_headers(res)
        assert (await get(app, path, key)).status_code == 200, path
    spec = (await get(app, "/openapi.json", key)).json()
    assert spec["paths"]


@pytest.mark.parametrize("name", ["router", "adapter_takecare", "adapter_treserva"])
async def test_in_production_metrics_need_the_token(sessions, name):
    app, key = production_apps(sessions)[name]
    for wrong in (None, key, "sandbox-ops-token"):
        res = await get(app, "/metrics", wrong)
        assert res.status_code == 401 and "carebridge_" not in res.text
    assert (await get(app, "/metrics", METRICS_TOKEN)).status_code == 200


@pytest.mark.parametrize("cls", [RouterSettings, AdapterTakeCareSettings, AdapterTreservaSettings])
def test_a_service_will_not_start_outside_the_sandbox_without_a_metrics_token(cls):
    for environment in ("production", "test"):
        with pytest.raises(ValidationError, match="METRICS_TOKEN: outside the sandbox"):
            production(cls, environment=environment, metrics_token=None)
    assert cls().metrics_token is None  # the sandbox may leave /metrics open


async def test_in_the_sandbox_the_api_description_stays_open(sandbox_apps):
    for client in sandbox_apps.values():
        app = client._transport.app
        for path in DESCRIPTION:
            assert (await get(app, path, None)).status_code == 200, path


# --- HTTPS outside the sandbox ------------------------------------------------------------


@pytest.mark.parametrize("cls", [RouterSettings, AdapterTakeCareSettings, AdapterTreservaSettings])
@pytest.mark.parametrize("environment", ["production", "test"])
def test_a_service_will_not_start_outside_the_sandbox_without_https(cls, environment):
    plain = {"ssl_certfile": None, "ssl_keyfile": None}
    with pytest.raises(
        ValidationError, match=r"SSL_CERTFILE, [A-Z_]*SSL_KEYFILE: outside the sandbox"
    ):
        production(cls, environment=environment, **plain)
    with pytest.raises(ValidationError, match=r"BEHIND_TLS_PROXY needs [A-Z_]*FORWARDED_ALLOW_IPS"):
        production(cls, environment=environment, **plain, behind_tls_proxy=True)
    for anyone in (["*"], ["0.0.0.0/0"], ["proxy.example.se"]):
        with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
            production(
                cls,
                environment=environment,
                **plain,
                behind_tls_proxy=True,
                forwarded_allow_ips=anyone,
            )
    served = production(cls, environment=environment)
    assert served.ssl_certfile and served.trusted_proxies() is None
    proxied = production(
        cls,
        environment=environment,
        **plain,
        behind_tls_proxy=True,
        forwarded_allow_ips=["10.1.2.3"],
    )
    assert proxied.trusted_proxies() == ["10.1.2.3"]
    assert cls().ssl_certfile is None  # the sandbox serves plain HTTP on the loopback


def test_uvicorn_believes_forwarded_headers_only_from_the_proxy():
    app = FastAPI()
    direct = server_config(app, host="127.0.0.1", port=0)
    assert direct.proxy_headers is False  # uvicorn's default would trust the loopback
    proxied = server_config(app, host="127.0.0.1", port=0, proxies=["10.1.2.3"])
    assert proxied.proxy_headers is True and proxied.forwarded_allow_ips == ["10.1.2.3"]


def _behind_proxy(sessions, proxies: list[str]) -> FastAPI:
    settings = production(
        RouterSettings,
        ssl_certfile=None,
        ssl_keyfile=None,
        behind_tls_proxy=True,
        forwarded_allow_ips=proxies,
    )
    return create_router(settings, sessions=sessions)


async def test_behind_a_tls_proxy_only_what_it_forwarded_as_https_is_served(sessions):
    """Over a real socket: uvicorn takes the scheme from X-Forwarded-Proto only from the
    proxy's address; anything else that reaches the plain-HTTP listener is refused."""
    token = {"authorization": f"Bearer {OPS_TOKEN}"}
    forwarded = {**token, "x-forwarded-proto": "https", "x-forwarded-for": "192.0.2.7"}
    app = _behind_proxy(sessions, ["127.0.0.1"])
    async with (
        serving(app, None, proxies=["127.0.0.1"]) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert (await client.get("/api/v1/alerts", headers=forwarded)).status_code == 200
        direct = await client.get("/api/v1/alerts", headers=token)
        assert direct.status_code == 403 and "HTTPS only" in direct.json()["detail"]
        assert_secure_headers(direct)
        assert (await client.get("/health")).status_code == 200  # the health check
    elsewhere = _behind_proxy(sessions, ["10.1.2.3"])  # the proxy is not this client
    async with (
        serving(elsewhere, None, proxies=["10.1.2.3"]) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert (await client.get("/api/v1/alerts", headers=forwarded)).status_code == 403
