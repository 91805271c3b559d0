"""Log-in through the region's identity provider: the console as an OpenID Connect relying
party (authorization code flow with PKCE, S256).

``GET /console/oidc/start`` makes a log-in attempt (state, nonce, PKCE verifier; see
services.router.ops.oidc.pkce), keeps it sealed in a cookie on this browser only and sends the
browser to the provider, which does the SITHS or Freja eID log-in. ``GET
/console/oidc/callback`` takes the provider's answer: the state must be this browser's
attempt's; the code is exchanged with the verifier; the ID token must carry the provider's
signature (its JWKS), its issuer, this client as audience, valid times and the attempt's
nonce; its claims must name a person (name, HSA-id) and give a carebridge role. Only then is
the operator signed in (the one ``sign_in`` call the pages share). A person whose claims give
no role gets a 403 page and no session.

Every refused callback is a ``login-failed`` security event on the access log
(:class:`FailedOidcLogins`): a short reason code (:class:`Failure`), the client's address, and
who, when the provider's signed token named them (their HSA-id, never a token, a code, a
``sub`` or anything else from the provider's answer). A callback that anyone can send without
going through the provider (no attempt or the wrong state, or the provider's ``error``) is
recorded at most once per address a minute (the left-out ones are counted in the next entry),
so forged callbacks cannot fill the log; the refusals after a code exchange are all recorded.
"""

from __future__ import annotations

import enum
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.http import client_address
from services.router.audit.access_log import AccessKind, record_security_event
from services.router.ops.console.identity import Identity
from services.router.ops.console.web import render
from services.router.ops.oidc.claims import HSA_ID, ClaimRules, ClaimsRefused, NoRole, person
from services.router.ops.oidc.pkce import (
    ATTEMPT_COOKIE,
    ATTEMPT_TTL_S,
    authorization_url,
    new_attempt,
    seal,
    unseal,
)
from services.router.ops.oidc.provider import (
    GrantRefused,
    ProviderUnavailable,
    RelyingPartyProvider,
)
from services.router.ops.oidc.tokens import Expected, NonceMismatch, TokenRefused
from services.router.ops.refused_tokens import RefusalLimiter
from services.router.settings import RouterSettings

log = logging.getLogger(__name__)

# the person, and the provider's refresh token to check the session with later
SignIn = Callable[[Request, Response, Identity, str | None], Awaitable[None]]
ATTEMPT_PATH = "/console/oidc"
UNKNOWN_PERSON = "unknown person"  # the actor of a failure before any token named someone
NO_ROLE = "-"  # the role column of a failed log-in (as the password form's)


class Failure(enum.StrEnum):
    """Why a callback signed nobody in: the access log's reason code."""

    BAD_STATE = "bad-state"  # no attempt on this browser, a stale one, or another's state
    PROVIDER_ERROR = "provider-error"  # the provider sent ``error`` (or no code) back
    CODE_REFUSED = "code-refused"  # the token endpoint refused the code (used, expired)
    PROVIDER_UNAVAILABLE = "provider-unavailable"  # the code exchange or keys failed
    # signature, algorithm, issuer, audience, times
    ID_TOKEN_REFUSED = "id-token-refused"  # noqa: S105 (a reason code, not a secret)
    NONCE_MISMATCH = "nonce-mismatch"  # an ID token of another log-in attempt
    NO_ROLE = "no-role"  # a genuine person whose claims give no carebridge role
    NOT_A_PERSON = "not-a-person"  # no name or no HSA-id in the claims

    @property
    def forgeable(self) -> bool:
        """Anyone can send this one without a provider's log-in: recording is limited."""
        return self in (Failure.BAD_STATE, Failure.PROVIDER_ERROR)


def actor_of(claims: Mapping[str, Any] | None, rules: ClaimRules) -> str:
    """Who a refused token named: its HSA-id, if it has a well-formed one. Never ``sub`` or
    other claims, which some providers fill with a personnummer."""
    hsa_id = (claims or {}).get(rules.hsa_claim)
    return hsa_id if isinstance(hsa_id, str) and HSA_ID.match(hsa_id) else UNKNOWN_PERSON


@dataclass
class FailedOidcLogins:
    """Writes a refused callback to the access log (``login-failed``)."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    monotonic: Callable[[], float] = time.monotonic
    limiter: RefusalLimiter = field(default_factory=RefusalLimiter)

    async def record(self, request: Request, failure: Failure, *, actor: str) -> bool:
        """True if an entry was written (a forgeable failure may be left out, counted)."""
        address = client_address(request)
        left_out = 0
        if failure.forgeable:
            if not self.limiter.admit(address, self.monotonic()):
                return False
            left_out, self.limiter.suppressed = self.limiter.suppressed, 0
        reason = f"oidc log-in refused: {failure.value}, from {address}"
        if left_out:
            reason += f" ({left_out} more forgeable refusals not recorded)"
        try:
            async with self.sessions.begin() as db:
                await record_security_event(
                    db,
                    actor=actor,
                    role=NO_ROLE,
                    kind=AccessKind.LOGIN_FAILED,
                    reason=reason,
                    now=self.clock(),
                )
        except SQLAlchemyError as exc:  # the refusal page goes out whatever the log's fate
            log.warning("failed log-in not recorded", extra={"error": type(exc).__name__})
            return False
        return True


def _safe_next(next_path: str) -> str:
    return next_path if next_path.startswith("/console") and "//" not in next_path else "/console/"


def oidc_login_routes(
    settings: RouterSettings,
    clock: Callable[[], datetime],
    sign_in: SignIn,
    failed: FailedOidcLogins,
) -> APIRouter:
    web = APIRouter(prefix="/oidc")
    rules = settings.oidc_rules()

    def refuse(request: Request, status: int, detail: str) -> HTMLResponse:
        page = render(
            request,
            "error.html",
            {"status": status, "detail": detail, "errors": []},
            status_code=status,
        )
        page.delete_cookie(ATTEMPT_COOKIE, path=ATTEMPT_PATH)
        return page

    def provider_of(request: Request) -> RelyingPartyProvider | None:
        found: RelyingPartyProvider | None = getattr(request.app.state, "identity_provider", None)
        return found if settings.oidc_issuer and settings.oidc_client_id else None

    @web.get("/start", response_model=None)
    async def start(request: Request, next: str = "/console/") -> Response:
        provider = provider_of(request)
        if provider is None or settings.oidc_redirect_url is None:
            return refuse(request, 404, "log-in through an identity provider is not configured")
        attempt = new_attempt(_safe_next(next), now=clock().timestamp())
        try:
            found = await provider.discovery()
        except ProviderUnavailable:
            return refuse(request, 503, "the identity provider does not answer: try again")
        response = RedirectResponse(
            authorization_url(
                found.authorization_endpoint,
                client_id=str(settings.oidc_client_id),
                redirect_uri=settings.oidc_redirect_url,
                scopes=settings.oidc_scopes,
                attempt=attempt,
            ),
            status_code=303,
        )
        # Lax, not Strict: the provider's redirect back is a cross-site navigation
        response.set_cookie(
            ATTEMPT_COOKIE,
            seal(attempt, secret=settings.console_secret),
            max_age=int(ATTEMPT_TTL_S),
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookie(),
            path=ATTEMPT_PATH,
        )
        return response

    @web.get("/callback", response_model=None)
    async def callback(
        request: Request, state: str = "", code: str = "", error: str = ""
    ) -> Response:
        provider = provider_of(request)
        if provider is None or settings.oidc_redirect_url is None:
            return refuse(request, 404, "log-in through an identity provider is not configured")
        attempt = unseal(
            request.cookies.get(ATTEMPT_COOKIE),
            secret=settings.console_secret,
            now=clock().timestamp(),
        )
        if attempt is None or not hmac.compare_digest(state, attempt.state):
            await failed.record(request, Failure.BAD_STATE, actor=UNKNOWN_PERSON)
            return refuse(request, 400, "this log-in was not started here, or too long ago")
        if error or not code:
            await failed.record(request, Failure.PROVIDER_ERROR, actor=UNKNOWN_PERSON)
            return refuse(request, 401, "the identity provider did not log you in")
        client_id = str(settings.oidc_client_id)
        claims: dict[str, Any] | None = None
        try:
            answer = await provider.exchange(
                code,
                verifier=attempt.verifier,
                redirect_uri=settings.oidc_redirect_url,
                client_id=client_id,
                client_secret=settings.oidc_client_secret,
            )
            claims = await provider.check(
                answer.id_token,
                Expected(
                    issuer=str(settings.oidc_issuer),
                    audience=client_id,
                    leeway_s=settings.oidc_leeway_s,
                    nonce=attempt.nonce,
                ),
                now=clock(),
            )
            found = person(claims, rules)
        except ClaimsRefused as exc:
            why = Failure.NO_ROLE if isinstance(exc, NoRole) else Failure.NOT_A_PERSON
            await failed.record(request, why, actor=actor_of(claims, rules))
            return refuse(request, 403, "your account gives no role in carebridge")
        except TokenRefused as exc:
            bad = Failure.NONCE_MISMATCH if isinstance(exc, NonceMismatch) else None
            await failed.record(request, bad or Failure.ID_TOKEN_REFUSED, actor=UNKNOWN_PERSON)
            return refuse(request, 401, "the identity provider's answer was not accepted")
        except GrantRefused:
            await failed.record(request, Failure.CODE_REFUSED, actor=UNKNOWN_PERSON)
            return refuse(request, 401, "the identity provider did not log you in")
        except ProviderUnavailable:
            await failed.record(request, Failure.PROVIDER_UNAVAILABLE, actor=UNKNOWN_PERSON)
            return refuse(request, 502, "the identity provider did not answer: try again")
        # a page of our own, not a redirect: the session cookie is SameSite=Strict, and a
        # redirect chain that began at the provider would not send it on to the console
        response = render(request, "signed_in.html", {"next": attempt.next_path})
        response.delete_cookie(ATTEMPT_COOKIE, path=ATTEMPT_PATH)
        identity = Identity(found.name, found.role, found.hsa_id)
        await sign_in(request, response, identity, answer.refresh_token)
        return response

    return web
