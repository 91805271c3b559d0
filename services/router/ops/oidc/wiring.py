"""The identity provider on the router's app: one :class:`IdentityProvider` (its discovery
and key cache) shared by the console's log-in and the API's token check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from services.router.ops.api_clients import PersonTokens
from services.router.ops.oidc.provider import IdentityProvider, RelyingPartyProvider
from services.router.ops.oidc.recheck import ProviderRecheck
from services.router.ops.oidc.tokens import Expected
from services.router.settings import RouterSettings


def install_identity_provider(
    app: FastAPI,
    settings: RouterSettings,
    clock: Callable[[], datetime],
    provider: RelyingPartyProvider | None = None,
) -> None:
    """``app.state.identity_provider`` for the console and, with an API audience,
    ``app.state.person_tokens`` for the API. Nothing when ``oidc_issuer`` is unset."""
    if settings.oidc_issuer is None:
        app.state.identity_provider = app.state.person_tokens = None
        return
    provider = provider or IdentityProvider(settings.oidc_issuer, ca_file=settings.oidc_ca_file)
    app.state.identity_provider = provider
    app.state.person_tokens = (
        PersonTokens(
            provider,
            Expected(
                issuer=settings.oidc_issuer,
                audience=settings.oidc_api_audience,
                leeway_s=settings.oidc_leeway_s,
            ),
            settings.oidc_rules(),
            clock,
        )
        if settings.oidc_api_audience
        else None
    )


def session_rechecker(app: FastAPI, settings: RouterSettings) -> ProviderRecheck | None:
    """What checks a console session with the provider (after
    :func:`install_identity_provider`); None without one."""
    provider: RelyingPartyProvider | None = getattr(app.state, "identity_provider", None)
    if provider is None or settings.oidc_issuer is None or settings.oidc_client_id is None:
        return None
    return ProviderRecheck(
        provider,
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        rules=settings.oidc_rules(),
        leeway_s=settings.oidc_leeway_s,
    )
