"""A console session from the identity provider, checked again with it (issue 19: a person
removed or demoted at the provider loses the console within minutes, not at the session's
timeout).

:class:`ProviderRecheck` spends the session's refresh token (refresh-token grant) and
checks the fresh ID token as at log-in (:mod:`.tokens`: signature, issuer, audience, times;
:mod:`.claims`: a person with a role). The session store
(:class:`services.router.ops.console.sessions.SessionStore`) decides when, and what a
:class:`Recheck` means for the session: ``keep`` (with the provider's next refresh token),
``revoke`` (the provider said no, or the role or the person changed), or ``unreachable``
(the provider did not answer: the store keeps the session for a grace, then ends it).
:class:`FakeRecheck` is the fake beside it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.router.ops.console.accounts import Role
from services.router.ops.oidc.claims import ClaimRules, ClaimsRefused, NoRole, person
from services.router.ops.oidc.provider import (
    GrantRefused,
    ProviderUnavailable,
    RelyingPartyProvider,
)
from services.router.ops.oidc.tokens import Expected, TokenRefused


class Verdict(enum.StrEnum):
    KEEP = "keep"
    REVOKE = "revoke"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class Recheck:
    verdict: Verdict
    reason: str = ""  # why a session is revoked: a short text, never a token or a claim
    refresh_token: str | None = field(default=None, repr=False)  # the one to use next time


class SessionRechecker(Protocol):
    async def recheck(
        self, refresh_token: str, *, hsa_id: str | None, role: Role, now: datetime
    ) -> Recheck: ...


@dataclass(frozen=True)
class ProviderRecheck:
    provider: RelyingPartyProvider
    issuer: str
    client_id: str
    client_secret: str | None
    rules: ClaimRules
    leeway_s: float = 30.0

    async def recheck(
        self, refresh_token: str, *, hsa_id: str | None, role: Role, now: datetime
    ) -> Recheck:
        try:
            answer = await self.provider.refresh(
                refresh_token, client_id=self.client_id, client_secret=self.client_secret
            )
            claims = await self.provider.check(
                answer.id_token,
                Expected(issuer=self.issuer, audience=self.client_id, leeway_s=self.leeway_s),
                now=now,
            )
            found = person(claims, self.rules)
        except GrantRefused as exc:  # the person removed, the grant revoked or expired
            code = re.sub(r"[^a-z_]", "", str(exc))[:40] or "refused"
            return Recheck(Verdict.REVOKE, f"the identity provider refused the session ({code})")
        except NoRole:
            return Recheck(Verdict.REVOKE, "no carebridge role at the identity provider any more")
        except ClaimsRefused:
            return Recheck(Verdict.REVOKE, "the identity provider's claims name no person")
        except TokenRefused as exc:
            return Recheck(
                Verdict.REVOKE, f"the refreshed ID token was refused ({type(exc).__name__})"
            )
        except ProviderUnavailable:
            return Recheck(Verdict.UNREACHABLE)
        if hsa_id is not None and found.hsa_id != hsa_id:
            return Recheck(Verdict.REVOKE, "the identity provider names another person")
        if found.role is not role:
            return Recheck(
                Verdict.REVOKE, f"role changed to {found.role.value} at the identity provider"
            )
        # a provider that rotates refresh tokens sends the next one; others keep the old
        return Recheck(Verdict.KEEP, refresh_token=answer.refresh_token or refresh_token)


@dataclass
class FakeRecheck:
    """Answers what the test sets, and counts the refresh tokens it was given."""

    answer: Recheck = field(default_factory=lambda: Recheck(Verdict.KEEP))
    spent: list[str] = field(default_factory=list)

    async def recheck(
        self, refresh_token: str, *, hsa_id: str | None, role: Role, now: datetime
    ) -> Recheck:
        self.spent.append(refresh_token)
        return self.answer
