"""Who a token names and what they may do, from its claims alone. Pure.

The region's identity provider says who the person is (``name``, and their HSA-id: the
national directory's id of a person in Swedish health care, e.g. ``SE2321000131-E000000000001``)
and which of carebridge's groups they are in (a role claim, e.g. ``roles``:
``["carebridge-operator"]``). :class:`ClaimRules` names the claims and maps group values to
console roles; a person with several gets the highest. Nothing from a request body or a
form ever decides who someone is.

Refusals::

    ClaimsRefused
     ├── NoRole         no value of the role claim maps to a role (403, no session)
     └── NotAPerson     the name or the HSA-id claim is missing or malformed
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.router.ops.console.accounts import Role

# SE + the organisation's 10 digits + "-" + up to 31 characters of its own (HSA's format)
HSA_ID = re.compile(r"^SE[0-9]{10}-[0-9A-Za-z]{1,31}$")
# the access log's actor holds 100 characters: "name (HSA-id)", and "… (console)" after it
# in the console's incident notes
NAME_MAX = 40

DEFAULT_ROLES: dict[str, Role] = {
    "carebridge-viewer": Role.VIEWER,
    "carebridge-operator": Role.OPERATOR,
    "carebridge-admin": Role.ADMIN,
}
_ORDER = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


class ClaimsRefused(Exception):
    """The token is genuine but does not make its bearer an operator; the subclass says why."""


class NoRole(ClaimsRefused):
    pass


class NotAPerson(ClaimsRefused):
    pass


@dataclass(frozen=True)
class ClaimRules:
    name_claim: str = "name"
    hsa_claim: str = "hsa_id"
    role_claim: str = "roles"
    roles: Mapping[str, Role] = field(default_factory=lambda: dict(DEFAULT_ROLES))


@dataclass(frozen=True, slots=True)
class Person:
    """A person the identity provider vouched for."""

    name: str
    hsa_id: str
    role: Role

    def actor(self) -> str:
        """The access log's *who*: the name and the HSA-id, both from the token."""
        return f"{self.name} ({self.hsa_id})"


def role_of(claims: Mapping[str, Any], rules: ClaimRules) -> Role:
    """The highest role the role claim's values map to (a string or a list of strings)."""
    value = claims.get(rules.role_claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    found = [rules.roles[v] for v in values if isinstance(v, str) and v in rules.roles]
    if not found:
        raise NoRole(f"no value of the claim {rules.role_claim!r} gives a carebridge role")
    return max(found, key=_ORDER.index)


def person(claims: Mapping[str, Any], rules: ClaimRules) -> Person:
    """The person the claims name, with their role."""
    name, hsa_id = claims.get(rules.name_claim), claims.get(rules.hsa_claim)
    if not isinstance(name, str) or not name.strip():  # OIDC's standard parts, if sent
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip())
    if not name.strip():
        raise NotAPerson(f"the claim {rules.name_claim!r} is missing")
    if not isinstance(hsa_id, str) or not HSA_ID.match(hsa_id):
        raise NotAPerson(f"the claim {rules.hsa_claim!r} is missing or not an HSA-id")
    clean = " ".join(name.split())[:NAME_MAX]
    return Person(clean, hsa_id, role_of(claims, rules))
