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
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.router.ops.console.identity import Identity
from services.router.ops.console.web import render
from services.router.ops.oidc.claims import ClaimsRefused, person
from services.router.ops.oidc.pkce import (
    ATTEMPT_COOKIE,
    ATTEMPT_TTL_S,
    authorization_url,
    new_attempt,
    seal,
    unseal,
)
from services.router.ops.oidc.provider import ProviderUnavailable, RelyingPartyProvider
from services.router.ops.oidc.tokens import Expected, TokenRefused
from services.router.settings import RouterSettings

SignIn = Callable[[Request, Response, Identity], Awaitable[None]]
ATTEMPT_PATH = "/console/oidc"


def _safe_next(next_path: str) -> str:
    return next_path if next_path.startswith("/console") and "//" not in next_path else "/console/"


def oidc_login_routes(
    settings: RouterSettings, clock: Callable[[], datetime], sign_in: SignIn
) -> APIRouter:
    web = APIRouter(prefix="/oidc")

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
            return refuse(request, 400, "this log-in was not started here, or too long ago")
        if error or not code:
            return refuse(request, 401, "the identity provider did not log you in")
        client_id = str(settings.oidc_client_id)
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
            found = person(claims, settings.oidc_rules())
        except ClaimsRefused:
            return refuse(request, 403, "your account gives no role in carebridge")
        except TokenRefused:
            return refuse(request, 401, "the identity provider's answer was not accepted")
        except ProviderUnavailable:
            return refuse(request, 502, "the identity provider did not answer: try again")
        # a page of our own, not a redirect: the session cookie is SameSite=Strict, and a
        # redirect chain that began at the provider would not send it on to the console
        response = render(request, "signed_in.html", {"next": attempt.next_path})
        response.delete_cookie(ATTEMPT_COOKIE, path=ATTEMPT_PATH)
        await sign_in(request, response, Identity(found.name, found.role, found.hsa_id))
        return response

    return web
