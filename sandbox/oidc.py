"""The sandbox's OpenID Connect provider: panva's oidc-provider (sandbox/oidc_provider/,
installed by ``make oidc-provider`` into .cache/oidc-provider) run by Node on a loopback port.

It stands in for the region's identity provider (which does the SITHS or Freja eID log-in in
production) for the sandbox and the tests: the console logs in through it in Chromium, and
:func:`access_token` gets a person's access token for the ops API the way a browser would,
through the provider's own log-in form (no test-only grant: the token is the one a person
gets). Its people (:data:`SANDBOX_PEOPLE`) and their passwords are published; its signing key
is made at each start.

    with running(redirect_uris=["http://127.0.0.1:8000/console/oidc/callback"]) as idp:
        idp.issuer, idp.client_id, idp.audience
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from sandbox.stack import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "sandbox" / "oidc_provider" / "server.mjs"
MODULES = ROOT / ".cache" / "oidc-provider" / "node_modules"
CLIENT_ID = "carebridge-console"
API_AUDIENCE = "https://carebridge.sandbox/ops-api"


@dataclass(frozen=True)
class SandboxPerson:
    login: str
    password: str
    name: str
    hsa_id: str
    roles: tuple[str, ...]  # empty: the token carries no role claim


SANDBOX_PEOPLE: dict[str, SandboxPerson] = {
    p.login: p
    for p in (
        SandboxPerson(
            "anna",
            "anna-sandbox",
            "Anna Admin",
            "SE2321000131-E000000000001",
            ("carebridge-admin",),
        ),
        SandboxPerson(
            "olle",
            "olle-sandbox",
            "Olle Operatör",
            "SE2321000131-E000000000002",
            ("carebridge-operator", "some-other-group"),
        ),
        SandboxPerson(
            "vera",
            "vera-sandbox",
            "Vera Viewer",
            "SE2321000131-E000000000003",
            ("carebridge-viewer",),
        ),
        # a person the region knows but who is in no carebridge group: refused
        SandboxPerson("nils", "nils-sandbox", "Nils Norole", "SE2321000131-E000000000004", ()),
    )
}


class ProviderNotInstalled(RuntimeError):
    """Node or the npm package is missing: ``make oidc-provider`` installs the package."""


@dataclass(frozen=True)
class RunningProvider:
    issuer: str
    client_id: str
    client_secret: str | None
    audience: str


def _config(
    port: int, redirect_uris: Sequence[str], client_secret: str | None, audience: str
) -> dict[str, object]:
    people = {
        p.login: {
            "password": p.password,
            "claims": {
                "name": p.name,
                "hsa_id": p.hsa_id,
                **({"roles": list(p.roles)} if p.roles else {}),
            },
        }
        for p in SANDBOX_PEOPLE.values()
    }
    client: dict[str, object] = {"client_id": CLIENT_ID, "redirect_uris": list(redirect_uris)}
    if client_secret is not None:
        client["client_secret"] = client_secret
    return {
        "modules": str(MODULES),
        "issuer": f"http://127.0.0.1:{port}",
        "port": port,
        "audience": audience,
        "client": client,
        "people": people,
    }


def _wait_until_up(issuer: str, proc: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the OIDC provider exited with {proc.returncode}")
        try:
            answer = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1)
            if answer.status_code == 200 and answer.json().get("issuer") == issuer:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling with a deadline
    raise TimeoutError(f"the OIDC provider at {issuer} did not answer within {deadline_s} s")


@contextmanager
def running(
    redirect_uris: Sequence[str],
    *,
    client_secret: str | None = None,
    audience: str = API_AUDIENCE,
    port: int | None = None,
    deadline_s: float = 30.0,
    log: Path | None = None,
) -> Iterator[RunningProvider]:
    """The provider on ``127.0.0.1:port`` (a free one by default) until the block ends; its
    warnings go to ``log`` (default: standard error)."""
    node = shutil.which("node")
    if node is None or not (MODULES / "oidc-provider" / "package.json").exists():
        raise ProviderNotInstalled("run `make oidc-provider` (needs Node >= 20.19 and npm)")
    port = port or free_port()
    with (
        tempfile.TemporaryDirectory(prefix="carebridge-oidc-") as tmp,
        open(log, "ab") if log else contextlib.nullcontext() as errors,
    ):
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(_config(port, redirect_uris, client_secret, audience)))
        proc = subprocess.Popen(  # noqa: S603 (node and our own server.mjs)
            [node, str(SERVER), str(config)],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env={"PATH": "/usr/bin:/bin", "NODE_ENV": "production"},
        )
        try:
            issuer = f"http://127.0.0.1:{port}"
            _wait_until_up(issuer, proc, deadline_s)
            yield RunningProvider(issuer, CLIENT_ID, client_secret, audience)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str


def _form_action(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page)
    if found is None:
        raise RuntimeError("the provider showed no log-in form")
    return found.group(1)


def authorization_code(
    provider: RunningProvider,
    login: str,
    password: str,
    *,
    redirect_uri: str,
    challenge: str,
    nonce: str,
    transport: httpx.BaseTransport | None = None,
    scope: str = "openid profile",
) -> str:
    """The code the provider sends the browser back with after a person's log-in, driven
    over HTTP the way a browser would (its log-in form, its redirects). ``redirect_uri`` is
    only read back from the provider's redirect, never called."""
    state = secrets.token_urlsafe(16)
    with httpx.Client(transport=transport, timeout=10) as client:
        discovery = client.get(f"{provider.issuer}/.well-known/openid-configuration").json()
        answer = client.get(
            discovery["authorization_endpoint"],
            params={
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": scope,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            follow_redirects=True,
        )
        answer = client.post(
            urljoin(str(answer.url), _form_action(answer.text)),
            data={"login": login, "password": password},
        )
        for _ in range(10):  # the provider's redirects, until it sends the browser back
            location = answer.headers.get("location")
            if answer.status_code not in (302, 303) or location is None:
                raise RuntimeError(f"the provider refused the log-in ({answer.status_code})")
            target = urljoin(str(answer.url), location)
            if target.startswith(redirect_uri):
                break
            answer = client.get(target)
        else:
            raise RuntimeError("the provider never sent the browser back")
    query = parse_qs(urlsplit(target).query)
    if query.get("state") != [state] or "code" not in query:
        raise RuntimeError(f"the provider answered {sorted(query)}")
    code: str = query["code"][0]
    return code


def access_token(
    provider: RunningProvider,
    login: str,
    password: str,
    *,
    redirect_uri: str,
    transport: httpx.BaseTransport | None = None,
) -> Tokens:
    """A person's tokens through the provider's authorization code flow with PKCE: the log-in
    of :func:`authorization_code`, then the code and its verifier for tokens."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    code = authorization_code(
        provider,
        login,
        password,
        redirect_uri=redirect_uri,
        challenge=challenge.decode().rstrip("="),
        nonce=secrets.token_urlsafe(16),
        transport=transport,
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    auth: httpx.Auth | None = None
    if provider.client_secret is None:
        form["client_id"] = provider.client_id
    else:
        auth = httpx.BasicAuth(provider.client_id, provider.client_secret)
    with httpx.Client(transport=transport, timeout=10) as client:
        discovery = client.get(f"{provider.issuer}/.well-known/openid-configuration").json()
        done = client.post(
            discovery["token_endpoint"], data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
        )
    done.raise_for_status()
    body = done.json()
    return Tokens(body["access_token"], body["id_token"])
