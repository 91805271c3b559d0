"""The identity provider over HTTP: its discovery document, its signing keys (JWKS), the
code exchange and the refresh-token grant (a console session re-checked). httpx with an
injected ``transport`` (tests pass ``httpx.MockTransport`` or talk to a real provider on
loopback).

Keys are cached; a token whose key id is unknown makes one fresh fetch of the JWKS (the
provider rotated its keys), at most once per ``refresh_min_s`` so a stream of forged key ids
cannot turn the router into a load on the provider.

:class:`StaticKeys` is the fake beside it: a fixed key set, no HTTP.

Refusals: :class:`ProviderUnavailable` (the provider did not answer as a provider does),
:class:`GrantRefused` (it answered, and said no: ``invalid_grant`` and the like at the token
endpoint, e.g. a person removed or a grant revoked), and the token refusals of :mod:`.tokens`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from services.router.ops.oidc import tokens
from services.router.ops.oidc.tokens import Expected, KeySet


class ProviderUnavailable(Exception):
    """The provider did not answer, or not with what a provider sends."""


class GrantRefused(Exception):
    """The token endpoint answered 400 or 401 with an OAuth error: the grant is no good."""


class TokenChecker(Protocol):
    """What the API needs of the provider: a token's claims, checked."""

    async def check(self, token: str, expected: Expected, *, now: datetime) -> dict[str, Any]: ...


class RelyingPartyProvider(TokenChecker, Protocol):
    """What the console needs of it too: where to send the browser, and the code exchange."""

    async def discovery(self) -> Discovery: ...

    async def exchange(
        self,
        code: str,
        *,
        verifier: str,
        redirect_uri: str,
        client_id: str,
        client_secret: str | None,
    ) -> TokenResponse: ...

    async def refresh(
        self, refresh_token: str, *, client_id: str, client_secret: str | None
    ) -> TokenResponse: ...


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class TokenResponse:
    id_token: str
    access_token: str | None
    refresh_token: str | None = None  # with offline_access (or as the provider decides)


class StaticKeys:
    """A provider whose keys are known in advance (tests, and nothing else)."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    async def check(self, token: str, expected: Expected, *, now: datetime) -> dict[str, Any]:
        return tokens.check(token, self.keys, expected, now=now)


class IdentityProvider:
    """One OpenID Connect provider, found from its issuer URL."""

    def __init__(
        self,
        issuer: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
        refresh_min_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        ca_file: str | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._transport = transport
        # the system's trusted CAs, or only the one that signed the provider's certificate
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self._timeout = timeout_s
        self._refresh_min_s = refresh_min_s
        self._monotonic = monotonic
        self._discovery: Discovery | None = None
        self._keys = KeySet({})
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout, verify=self._verify
        )

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            async with self._client() as client:
                answer = await client.get(url, headers={"accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {type(exc).__name__}") from None
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return document

    async def discovery(self) -> Discovery:
        if self._discovery is None:
            doc = await self._get(f"{self.issuer}/.well-known/openid-configuration")
            try:
                found = Discovery(
                    issuer=str(doc["issuer"]),
                    authorization_endpoint=str(doc["authorization_endpoint"]),
                    token_endpoint=str(doc["token_endpoint"]),
                    jwks_uri=str(doc["jwks_uri"]),
                )
            except KeyError as exc:
                raise ProviderUnavailable(f"the discovery document lacks {exc}") from None
            if found.issuer.rstrip("/") != self.issuer:  # OIDC Discovery §4.3
                raise ProviderUnavailable("the discovery document names another issuer")
            self._discovery = found
        return self._discovery

    async def keys(self, kid: str) -> KeySet:
        """The key set, fetched again if ``kid`` is not in it (rate-limited)."""
        async with self._lock:
            now = self._monotonic()
            stale = self._fetched_at is None or (
                kid not in self._keys.keys and now - self._fetched_at >= self._refresh_min_s
            )
            if stale:
                found = KeySet.from_jwks(await self._get((await self.discovery()).jwks_uri))
                self._keys, self._fetched_at = found, now
            return self._keys

    async def check(self, token: str, expected: Expected, *, now: datetime) -> dict[str, Any]:
        """The token's claims, checked against the provider's keys (see :mod:`.tokens`)."""
        _, kid = tokens.header(token)
        return tokens.check(token, await self.keys(kid), expected, now=now)

    async def exchange(
        self,
        code: str,
        *,
        verifier: str,
        redirect_uri: str,
        client_id: str,
        client_secret: str | None,
    ) -> TokenResponse:
        """The authorization code and its PKCE verifier for tokens (RFC 6749 §4.1.3)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        return await self._token(form, client_id=client_id, client_secret=client_secret)

    async def refresh(
        self, refresh_token: str, *, client_id: str, client_secret: str | None
    ) -> TokenResponse:
        """A refresh token for fresh tokens (RFC 6749 §6); the answer must hold an ID token
        (OIDC Core §12.2) for the console to read the person's claims again."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token(form, client_id=client_id, client_secret=client_secret)

    async def _token(
        self, form: dict[str, str], *, client_id: str, client_secret: str | None
    ) -> TokenResponse:
        auth: httpx.BasicAuth | None = None
        if client_secret is None:
            form["client_id"] = client_id  # a public client
        else:
            auth = httpx.BasicAuth(client_id, client_secret)  # client_secret_basic
        endpoint = (await self.discovery()).token_endpoint
        try:
            async with self._client() as client:
                answer = await client.post(
                    endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"token endpoint: {type(exc).__name__}") from None
        error = document.get("error") if isinstance(document, dict) else None
        if answer.status_code in (400, 401) and isinstance(error, str):
            raise GrantRefused(error[:60])  # RFC 6749 §5.2: the provider's "no"
        if answer.status_code != 200 or not isinstance(document, dict):
            raise ProviderUnavailable(f"token endpoint: {answer.status_code} {error}")
        id_token, access = document.get("id_token"), document.get("access_token")
        refresh = document.get("refresh_token")
        if not isinstance(id_token, str):
            raise ProviderUnavailable("the token endpoint sent no ID token")
        return TokenResponse(
            id_token,
            access if isinstance(access, str) else None,
            refresh if isinstance(refresh, str) else None,
        )
