"""Who calls the router's JSON API (``/api/v1``), and what their role lets them do.

Each API client (a person's script, the ops CLI, a monitoring job) has a name, a role and one
or two active key hashes (SHA-256 hex, as for the source systems, so a key rotates without
downtime), configured as ``ROUTER_API_CLIENTS``::

    {"monitoring": {"role": "viewer", "key_hashes": ["<sha256 hex>"]},
     "oncall": {"role": "operator", "key_hashes": ["<old>", "<new>"]}}

The operator token (``ROUTER_OPS_TOKEN``, which the ops CLI sends) is the client ``ops`` with
the role admin. Roles are the console's: a viewer reads metadata (states, times, pseudonyms,
incidents, statistics, the access log); an operator may also replay, acknowledge, resolve and
open patient data; an admin may also manage subscriptions, payload keys and pruning. The
client's name goes into the access log next to the name the caller gives."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.messaging.keys import bearer_token, check_hashes, hash_key
from services.router.ops.console.accounts import Role

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

    def actor(self, person: str) -> str:
        """The access log's *who*: the person the caller names, and the key that vouched."""
        return f"{person} (API client {self.name})"


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


def authenticate(request: Request) -> ApiCaller:
    """The API's gate (every route): 401 unless a client's key is presented."""
    clients: ApiClients = request.app.state.api_clients
    caller = clients.identify(request.headers.get("authorization"))
    if caller is None:
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.api_caller = caller
    return caller


def needs(role: Role) -> Callable[[Request], ApiCaller]:
    """A dependency: the caller, or 403 unless its role includes ``role``."""

    def check(request: Request) -> ApiCaller:
        caller = authenticate(request)
        if not caller.role.may(role):
            raise HTTPException(403, f"the API client's role ({caller.role}) may not do this")
        return caller

    return check


# Ready-made dependencies, one per role above the viewer.
as_operator = needs(Role.OPERATOR)
as_admin = needs(Role.ADMIN)
