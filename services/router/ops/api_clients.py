"""Who calls the router's JSON API (``/api/v1``), and what their role lets them do.

Each API client (the ops CLI, a monitoring job: a machine, not a person) has a name, a role and one
or two active key hashes (SHA-256 hex, as for the source systems, so a key rotates without
downtime), configured as ``ROUTER_API_CLIENTS``::

    {"monitoring": {"role": "viewer", "key_hashes": ["<sha256 hex>"]},
     "oncall": {"role": "operator", "key_hashes": ["<old>", "<new>"]}}

The operator token (``ROUTER_OPS_TOKEN``, which the ops CLI sends) is the client ``ops`` with
the role admin. Roles are the console's: a viewer reads metadata (states, times, pseudonyms,
incidents, statistics, the access log); an operator may also replay, acknowledge, resolve and
open patient data; an admin may also manage subscriptions, payload keys and pruning.

**People** call the API with an access token from the region's identity provider
(``Authorization: Bearer <JWT>``, when ``ROUTER_OIDC_API_AUDIENCE`` is set): :class:`PersonTokens`
checks it against the provider's keys (issuer, audience, times, an asymmetric algorithm;
services.router.ops.oidc.tokens) and takes the name, HSA-id and role from its claims.

**Who goes into the access log** (:meth:`ApiCaller.actor`) comes only from what vouched for
the call, never from the request body: a person's name and HSA-id from their token, or the
API client itself for a key ("API client monitoring"). A body's ``operator`` field is still
accepted from older scripts and ignored."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.messaging.keys import bearer_token, check_hashes, hash_key
from services.router.ops.console.accounts import Role
from services.router.ops.oidc.claims import ClaimRules, ClaimsRefused, person
from services.router.ops.oidc.provider import ProviderUnavailable, TokenChecker
from services.router.ops.oidc.tokens import Expected, TokenRefused

OPS_CLIENT = "ops"  # the name of the operator token's client


class ApiClient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    key_hashes: list[str] = Field(min_length=1)

    @field_validator("key_hashes")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        return check_hashes(value)


@dataclass(frozen=True)
class ApiCaller:
    name: str
    role: Role
    hsa_id: str | None = None  # a person the identity provider vouched for

    def actor(self) -> str:
        """The access log's *who*: the person from their token, or the API client."""
        if self.hsa_id is not None:
            return f"{self.name} ({self.hsa_id})"
        return f"API client {self.name}"


class PersonTokens:
    """The API's check of a person's access token: the provider's signature, issuer,
    audience and times, then who the claims name and which role they give."""

    def __init__(
        self,
        provider: TokenChecker,
        expected: Expected,
        rules: ClaimRules,
        clock: Callable[[], datetime],
    ) -> None:
        self._provider = provider
        self._expected = expected
        self._rules = rules
        self._clock = clock

    async def caller(self, token: str) -> ApiCaller:
        """Raises TokenRefused, ClaimsRefused or ProviderUnavailable."""
        claims = await self._provider.check(token, self._expected, now=self._clock())
        found = person(claims, self._rules)
        return ApiCaller(found.name, found.role, found.hsa_id)


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2  # API keys are base64url without dots


@dataclass(frozen=True)
class ApiClients:
    """Every client's active key hashes, compared all in constant time."""

    hashes: Mapping[str, tuple[Role, tuple[str, ...]]]

    @classmethod
    def build(cls, clients: Mapping[str, ApiClient], ops_token: str) -> ApiClients:
        if OPS_CLIENT in clients:
            raise ValueError(f"the API client name {OPS_CLIENT!r} is the operator token's")
        table = {name: (c.role, tuple(c.key_hashes)) for name, c in clients.items()}
        table[OPS_CLIENT] = (Role.ADMIN, (hash_key(ops_token),))
        held = [h for _, hashes in table.values() for h in hashes]
        if len(set(held)) != len(held):
            raise ValueError("each API key hash belongs to exactly one client")
        return cls(table)

    def identify(self, authorization: str | None) -> ApiCaller | None:
        token = bearer_token(authorization)
        if token is None:
            return None
        presented = hash_key(token).encode()
        found: ApiCaller | None = None
        for name, (role, hashes) in self.hashes.items():
            for stored in hashes:
                if hmac.compare_digest(presented, stored.encode()):
                    found = ApiCaller(name, role)
        return found


async def authenticate(request: Request) -> ApiCaller:
    """The API's gate (every route): 401 unless a client's key or a person's valid access
    token is presented; 403 for a genuine token that gives no carebridge role."""
    known = getattr(request.state, "api_caller", None)
    if isinstance(known, ApiCaller):  # the router-wide gate ran already for this request
        return known
    authorization = request.headers.get("authorization")
    token = bearer_token(authorization)
    people: PersonTokens | None = getattr(request.app.state, "person_tokens", None)
    caller: ApiCaller | None
    if token is not None and people is not None and _looks_like_jwt(token):
        try:
            caller = await people.caller(token)
        except TokenRefused:
            caller = None
        except ClaimsRefused:
            raise HTTPException(403, "the token gives no carebridge role") from None
        except ProviderUnavailable:
            raise HTTPException(503, "the identity provider does not answer") from None
    else:
        clients: ApiClients = request.app.state.api_clients
        caller = clients.identify(authorization)
    if caller is None:
        raise HTTPException(
            401, "missing or wrong API key or token", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.api_caller = caller
    return caller


def needs(role: Role) -> Callable[[Request], Awaitable[ApiCaller]]:
    """A dependency: the caller, or 403 unless its role includes ``role``."""

    async def check(request: Request) -> ApiCaller:
        caller = await authenticate(request)
        if not caller.role.may(role):
            raise HTTPException(403, f"the API client's role ({caller.role}) may not do this")
        return caller

    return check


# Ready-made dependencies, one per role above the viewer.
as_operator = needs(Role.OPERATOR)
as_admin = needs(Role.ADMIN)
