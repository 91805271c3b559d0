"""The attack probe's rows on who is asking (issue 19): console sessions (a forged cookie, a
cookie kept after log-out, password guessing), forged identity tokens at the ops API, a
name typed into a request body, and the console's security headers. Each function is one
row of :data:`sandbox.attack_probe.ATTACKS`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.oidc import API_AUDIENCE, CLIENT_ID, SANDBOX_PEOPLE, RunningProvider, access_token
from sandbox.probe_support import OPS_TOKEN, PATIENT, Observation, Probe, csrf_of, log_in
from services.messaging import sandbox_secrets
from services.router.ops.console.sessions import COOKIE

# --- console sessions kept on the server (issue 19) ---------------------------------------


def _login_redirect(res: httpx.Response) -> bool:
    return res.status_code == 303 and res.headers.get("location", "").startswith("/console/login")


def _old_style_cookie(user: str, role: str) -> str:
    """A session cookie as the console signed them before sessions moved to the server:
    ``base64(json).hmac`` under the console secret, here the sandbox's published one."""
    doc = {"u": user, "r": role, "e": time.time() + 3600, "c": secrets.token_hex(16)}
    body = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode())
    mac = hmac.new(sandbox_secrets.CONSOLE_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return f"{body.decode()}.{mac}"


def forged_console_cookie(p: Probe) -> Observation:
    forged = {
        "made up": secrets.token_urlsafe(32),
        "signed with the sandbox secret": _old_style_cookie("mallory", "admin"),
    }
    answers = {
        how: p.http.get(
            f"{p.stack.router_url}/console/audit", headers={"cookie": f"{COOKIE}={value}"}
        )
        for how, value in forged.items()
    }
    refused = [how for how, res in answers.items() if _login_redirect(res)]
    return Observation(
        "/".join(sorted({str(res.status_code) for res in answers.values()})),
        len(refused) == len(forged),
        f"to the log-in: {', '.join(refused) or 'neither'}",
    )


def cookie_after_logout(p: Probe) -> Observation:
    with p.console() as console:
        log_in(console)
        cookie = console.cookies.get(COOKIE)
        page = console.get("/console/")
        csrf = csrf_of(page)
        if cookie is None or page.status_code != 200 or csrf is None:
            return Observation(str(page.status_code), False, "could not log in to try")
        out = console.post("/console/logout", data={"csrf": csrf})
    again = p.http.get(f"{p.stack.router_url}/console/", headers={"cookie": f"{COOKIE}={cookie}"})
    return Observation(
        f"{page.status_code} before, log-out {out.status_code}, {again.status_code} after",
        _login_redirect(out) and _login_redirect(again),
        f"the old cookie sent to {again.headers.get('location', 'nowhere')}",
    )


# a name no other row logs in with: its throttling locks no one else out
THROTTLED_NAME = "probe-nobody"


def login_throttled(p: Probe) -> Observation:
    answers = [
        p.http.post(
            f"{p.stack.router_url}/console/login",
            data={"user": THROTTLED_NAME, "password": "gissning", "next": "/console/"},
        )
        for _ in range(6)
    ]
    codes, res = [a.status_code for a in answers], answers[-1]
    retry = res.headers.get("retry-after")
    return Observation(
        "/".join(map(str, codes)),
        codes == [401] * 5 + [429] and retry is not None and "set-cookie" not in res.headers,
        f"a name that does not exist; Retry-After {retry}",
    )


# --- forged identity tokens at the ops API (issue 19) -------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _provider_kid(p: Probe, issuer: str) -> str:
    """The key id the provider signs with: a forged token claims it."""
    found = p.http.get(f"{issuer}/.well-known/openid-configuration").json()
    return str(p.http.get(found["jwks_uri"]).json()["keys"][0]["kid"])


def forged_access_tokens(p: Probe) -> Observation:
    """A token the sandbox provider would have issued, to an admin, but signed by the probe
    (RS256 under the provider's own key id), and the same claims with ``alg: none``. Valid whether
    or not the probe's router trusts the provider: without it, it takes API keys only."""
    env = p.stack.settings.router_env
    issuer = env.get("OIDC_ISSUER", f"http://{p.stack.settings.host}:{p.stack.settings.oidc_port}")
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": env.get("OIDC_API_AUDIENCE", API_AUDIENCE),
        "sub": "mallory",
        "name": "Mallory",
        "hsa_id": "SE2321000131-E000000000666",
        "roles": ["carebridge-admin"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = _provider_kid(p, issuer) if "OIDC_ISSUER" in env else "probe-forged"
    tokens = {
        "RS256": jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}),
        "none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
    }
    codes = {alg: p.router("GET", "/api/v1/access-log", token) for alg, token in tokens.items()}
    return Observation(
        "/".join(str(res.status_code) for res in codes.values()),
        all(res.status_code == 401 for res in codes.values()),
        f"RS256 under kid {kid[:12]} with the probe's key / alg none; "
        + ("OIDC on" if "OIDC_ISSUER" in env else "API keys only"),
    )


def actor_from_the_body(p: Probe) -> Observation:
    marker = f"probe-actor-{secrets.token_hex(4)}"
    body = {"messageIds": ["m-probe-none"], "operator": "Mallory", "reason": marker}
    res = p.router("POST", "/api/v1/replays", OPS_TOKEN, json=body)
    listed = p.router("GET", "/api/v1/access-log?category=security&limit=200", OPS_TOKEN)
    actors = {e["actor"] for e in listed.json()["items"] if marker in str(e.get("reason"))}
    return Observation(
        f"{res.status_code}, logged as {' / '.join(sorted(actors)) or 'nobody'}",
        res.status_code == 200 and actors == {"API client ops"},
        'the body said "operator": "Mallory"',
    )


def person_token_names_the_person(p: Probe) -> Observation:
    """The positive control of the forged tokens: a sandbox person's real access token, got
    through the provider's log-in form, reaches the API, and the access log names that person
    and HSA-id, not the body's "operator"."""
    env = p.stack.settings.router_env
    if "OIDC_ISSUER" not in env:
        return Observation("not run", True, "no identity provider (make oidc-provider)")
    person = SANDBOX_PEOPLE["anna"]
    provider = RunningProvider(env["OIDC_ISSUER"], CLIENT_ID, None, env["OIDC_API_AUDIENCE"])
    token = access_token(
        provider, person.login, person.password, redirect_uri=env["OIDC_REDIRECT_URL"]
    ).access_token
    marker = f"probe-person-{secrets.token_hex(4)}"
    body = {"personnummer": PATIENT, "operator": "Mallory", "reason": marker}
    res = p.router("POST", "/api/v1/messages/search/personnummer", token, json=body)
    listed = p.router("GET", "/api/v1/access-log?category=patient-data&limit=200", OPS_TOKEN)
    actors = {e["actor"] for e in listed.json()["items"] if e.get("reason") == marker}
    return Observation(
        f"{res.status_code}, logged as {' / '.join(sorted(actors)) or 'nobody'}",
        res.status_code == 200 and actors == {f"{person.name} ({person.hsa_id})"},
        'a real token of the sandbox provider; the body said "operator": "Mallory"',
    )


# --- security headers of the console (issue 19) -------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {words[0]: words[1:] for words in parts}


def console_headers(p: Probe) -> Observation:
    login = p.http.get(f"{p.stack.router_url}/console/login")
    csp = _directives(login.headers.get("content-security-policy", ""))
    script = csp.get("script-src", csp.get("default-src", ["'unsafe-inline'"]))
    with p.console() as console:
        log_in(console)
        audit = console.get("/console/audit")
    missing = [
        what
        for what, ok in (
            ("script-src without 'unsafe-inline'", "'unsafe-inline'" not in script),
            ("frame-ancestors 'none'", csp.get("frame-ancestors") == ["'none'"]),
            ("nosniff", login.headers.get("x-content-type-options") == "nosniff"),
            ("Referrer-Policy", bool(login.headers.get("referrer-policy"))),
            ("no-store after log-in", audit.headers.get("cache-control") == "no-store"),
            ("the page after log-in", audit.status_code == 200),
        )
        if not ok
    ]
    return Observation(
        f"{login.status_code}, audit {audit.status_code}",
        not missing,
        f"missing: {', '.join(missing)}" if missing else "all present",
    )
