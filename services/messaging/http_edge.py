"""What every app's HTTP edge adds around its routes, installed by one call in each app
factory (:func:`install_http_edge`):

- **security headers** on every answer (:class:`SecurityHeaders`): a Content-Security-Policy
  that allows no inline script and no framing, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY``, and ``Cache-Control:
  no-store`` (console pages and API answers may hold patient data; only the console's
  static files may be cached);
- outside the sandbox, **the API description** (``/docs``, ``/redoc``, ``/openapi.json``)
  only for a caller with a key the app's API takes (:class:`DescriptionGate`): an API
  client's key on the router, a source system's key on an adapter. ``/metrics`` checks its
  own token (:mod:`services.messaging.metrics`), which the settings require there;
- **behind a TLS proxy**, nothing but ``/health`` over plain HTTP (:class:`HttpsOnly`):
  only what the proxy forwarded as HTTPS, from an address the settings trust.

Each is a plain ASGI middleware: it costs an intake request a few header writes, no more.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.messaging.problems import ErrorShape
from services.messaging.settings import ServiceSettings

# The console has no JavaScript at all and one stylesheet of its own; nothing may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)
_CACHEABLE = "/console/static/"
_HEALTH = "/health"

KeyCheck = Callable[[str | None], bool]
"""Whether an ``Authorization`` header carries a key the app's API takes."""


def description_paths(app: FastAPI) -> frozenset[str]:
    """Where FastAPI serves the API description and its interactive pages."""
    return frozenset(
        p
        for p in (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
        if p
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, interactive: frozenset[str] = frozenset()) -> None:
        self.app = app
        # FastAPI's Swagger UI and ReDoc pages load their script from a CDN and start it
        # inline; they hold no patient data (and need a key outside the sandbox)
        self.interactive = interactive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        added = list(_ALWAYS)
        if path not in self.interactive:
            added.append(("content-security-policy", CONTENT_SECURITY_POLICY))
        if not path.startswith(_CACHEABLE):
            added.append(("cache-control", "no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DescriptionGate:
    """401 for the API description without a key the app's API takes."""

    def __init__(
        self, app: ASGIApp, *, paths: frozenset[str], key_ok: KeyCheck, shape: ErrorShape
    ) -> None:
        self.app = app
        self.paths = paths
        self.key_ok = key_ok
        self.shape = shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] in self.paths
            and not self.key_ok(Headers(scope=scope).get("authorization"))
        ):
            refusal = self.shape(
                401,
                "the API description needs a key of this API outside the sandbox",
                headers={"WWW-Authenticate": 'Bearer realm="carebridge"'},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HttpsOnly:
    """Behind a TLS proxy uvicorn listens in plain HTTP, and takes the scheme from the
    proxy's ``X-Forwarded-Proto`` only when the request comes from an address in
    ``forwarded_allow_ips``. A request that did not come through the proxy is refused
    (403), except ``/health`` for the container's health check."""

    def __init__(self, app: ASGIApp, *, shape: ErrorShape) -> None:
        self.app = app
        self.shape = shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("scheme") != "https" and scope["path"] != _HEALTH:
            refusal = self.shape(403, "HTTPS only: come through the TLS proxy")
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_http_edge(
    app: FastAPI, settings: ServiceSettings, *, shape: ErrorShape, key_ok: KeyCheck
) -> None:
    """Call last in an app factory: the headers middleware must be the outermost, so that
    every answer has them, refusals of the other middlewares included."""
    paths = description_paths(app)
    if settings.environment != "sandbox":
        app.add_middleware(DescriptionGate, paths=paths, key_ok=key_ok, shape=shape)
    if settings.behind_tls_proxy:
        app.add_middleware(HttpsOnly, shape=shape)
    app.add_middleware(SecurityHeaders, interactive=paths - {app.openapi_url})
