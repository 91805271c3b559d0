"""The console's log-in and log-out forms.

A log-in is refused with 429 and ``Retry-After`` while its name or address is throttled
(:mod:`services.router.ops.console.throttle`), before any password is hashed; otherwise the
password is checked off the event loop (:class:`~.identity.PasswordAuthenticator`) and a
session is started on the server (:class:`~.sessions.SessionStore`); the cookie holds only
its opaque id. Log-out revokes the session, so a copy of the cookie is worth nothing after.

Access-log entries: each log-in (in the session's own transaction), each failed one (the
name typed, the client's address, never the password), the first refusal of a throttled
name or address after a failure (not every refused request: that would let anyone fill
the log), each log-out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.http import client_address
from services.router.audit.access_log import AccessKind, record_security_event
from services.router.ops.console import sessions as console_sessions
from services.router.ops.console.identity import Authenticator, Identity
from services.router.ops.console.oidc_login import FailedOidcLogins, oidc_login_routes
from services.router.ops.console.sessions import Origin, SessionStore
from services.router.ops.console.throttle import LoginThrottle
from services.router.ops.console.web import Operator, check_csrf, render
from services.router.settings import RouterSettings

NO_ROLE = "-"  # the access log's role of a log-in that gave none
PRUNE_EVERY_S = 60.0  # at most this often per process, at a successful log-in


def set_session_cookie(response: Response, cookie: str, settings: RouterSettings) -> None:
    """Hand a started session's id to the browser (any log-in: password or OIDC)."""
    response.set_cookie(
        console_sessions.COOKIE,
        cookie,
        max_age=int(settings.console_session_s),
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookie(),
        path="/console",
    )


def login_routes(
    settings: RouterSettings,
    db: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    authenticator: Authenticator,
    store: SessionStore,
    throttle: LoginThrottle,
    failed: FailedOidcLogins,
) -> APIRouter:
    web = APIRouter(prefix="/console", include_in_schema=False)
    pruned_at: list[datetime] = []
    # what the log-in page offers: the identity provider when configured, the password form
    # in the sandbox only
    offered = {"oidc": bool(settings.oidc_issuer), "password_login": settings.password_login}

    async def signed_in(
        request: Request, response: Response, identity: Identity, refresh_token: str | None
    ) -> None:
        """The one place a log-in through the identity provider becomes a session."""
        cookie = await store.start(
            identity,
            origin=Origin.OIDC,
            address=client_address(request),
            now=clock(),
            refresh_token=refresh_token,
        )
        set_session_cookie(response, cookie, settings)

    web.include_router(oidc_login_routes(settings, clock, signed_in, failed))

    async def prune(now: datetime) -> None:
        if pruned_at and (now - pruned_at[0]).total_seconds() < PRUNE_EVERY_S:
            return
        pruned_at[:] = [now]
        await store.prune(now=now)
        await throttle.prune(now=now)

    @web.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/console/") -> HTMLResponse:
        return render(request, "login.html", {"next": next, "failed": False, **offered})

    @web.post("/login", response_class=HTMLResponse, response_model=None)
    async def login(
        request: Request,
        user: Annotated[str, Form(max_length=60)],
        password: Annotated[str, Form(max_length=200)],
        next: Annotated[str, Form(max_length=500)] = "/console/",
    ) -> Response:
        if not settings.password_login:  # outside the sandbox: the identity provider only
            raise HTTPException(404, "password log-in is for the sandbox only")
        now, address = clock(), client_address(request)
        target = next if next.startswith("/console") and "//" not in next else "/console/"
        refusal = await throttle.check(account=user, address=address, now=now)
        if refusal is not None:
            if refusal.first:
                async with db.begin() as session:
                    await record_security_event(
                        session,
                        actor=user,
                        role=NO_ROLE,
                        kind=AccessKind.LOGIN_FAILED,
                        reason=f"throttled for {refusal.retry_after_s} s, from {address}",
                        now=now,
                    )
            # the same page whether or not the name exists
            refused = render(
                request,
                "login.html",
                {"next": target, "failed": False, "retry_after": refusal.retry_after_s, **offered},
                status_code=429,
            )
            refused.headers["Retry-After"] = str(refusal.retry_after_s)
            return refused
        found = await authenticator.authenticate(user, password)
        now = clock()  # the hash may have queued behind others
        if found is None:
            async with db.begin() as session:
                await throttle.failed(session, account=user, address=address, now=now)
                await record_security_event(
                    session,
                    actor=user,
                    role=NO_ROLE,
                    kind=AccessKind.LOGIN_FAILED,
                    reason=f"wrong name or password, from {address}",
                    now=now,
                )
            failed = {"next": target, "failed": True, **offered}
            return render(request, "login.html", failed, status_code=401)
        cookie = await store.start(found, origin=Origin.PASSWORD, address=address, now=now)
        async with db.begin() as session:
            await throttle.succeeded(session, account=user)
        await prune(now)
        response = RedirectResponse(target, status_code=303)
        set_session_cookie(response, cookie, settings)
        return response

    @web.post("/logout")
    async def logout(
        request: Request, operator: Operator, csrf: Annotated[str, Form(max_length=64)]
    ) -> RedirectResponse:
        check_csrf(operator, csrf)
        await store.revoke(operator, reason=f"log-out from {client_address(request)}", now=clock())
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(console_sessions.COOKIE, path="/console")
        return response

    return web
