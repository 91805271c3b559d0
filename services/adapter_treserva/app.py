"""HTTP entrypoint of adapter_treserva: Treserva pushes its native events here, one route per
family (see :mod:`services.messaging.intake_http`), and its receipts (kvittens) of what the
broker delivered to it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_treserva import families
from services.adapter_treserva.families import receipt
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.adapter_metrics import install_adapter_metrics
from services.messaging.envelope import System
from services.messaging.fhir_validate_http import fhir_validate_router
from services.messaging.fhir_validator import FhirValidator, HttpFhirValidator
from services.messaging.http import answer_store_outages
from services.messaging.http_edge import install_http_edge
from services.messaging.input_limits import RateLimiter
from services.messaging.intake import IntakeStore
from services.messaging.intake_http import IntakeGuard, intake_router, receipt_router
from services.messaging.problems import OPERATION_OUTCOME, install_error_handlers
from services.messaging.runtime import health as service_health

OWNER = "adapter_treserva"
PREFIX = "/treserva/v1"


def create_app(
    settings: AdapterTreservaSettings,
    *,
    store: IntakeStore,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    relay_wake: asyncio.Event | None = None,
    fhir_validator: FhirValidator | None = None,
) -> FastAPI:
    """``fhir_validator``: the reference FHIR validator ``$validate`` asks; by default the
    one ``fhir_validator_url`` names, or none when it is unset."""
    app = FastAPI(
        title="carebridge adapter_treserva",
        description="FHIR messages → Treserva; Treserva's events and receipts → the router",
        version="1",
    )

    install_error_handlers(app, OPERATION_OUTCOME)
    answer_store_outages(app)
    # One guard, so the rate limit counts a system's events and receipts together.
    guard = IntakeGuard(
        source=settings.SOURCE,
        keys=settings.system_keys(),
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        max_body_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
    )
    if fhir_validator is None and settings.fhir_validator_url:
        fhir_validator = HttpFhirValidator(
            settings.fhir_validator_url, timeout_s=settings.fhir_validator_timeout_s
        )
    install_adapter_metrics(
        app,
        OWNER,
        sessions,
        clock,
        token=settings.metrics_token,
        replay_window=timedelta(seconds=settings.replay_window_s),
    )

    @app.get("/health")
    async def health(request: Request) -> dict[str, str]:
        """The process answers; ``kafka`` says whether its Kafka side is ready yet."""
        return service_health(request.app)

    app.include_router(
        intake_router(
            prefix=PREFIX,
            families=families.INBOUND,
            store=store,
            guard=guard,
            pseudonym_key=settings.pseudonym_key,
            clock=clock,
            regional_reserve_oid=settings.region_reserve_oid(),
            on_accepted=relay_wake.set if relay_wake is not None else lambda: None,
            fhir_validator=fhir_validator,
        ),
        tags=["intake"],
    )
    app.include_router(fhir_validate_router(guard, fhir_validator), tags=["validation"])
    app.include_router(
        receipt_router(
            prefix=PREFIX,
            route=receipt.ROUTE,
            parse=receipt.parse_receipt,
            responder=System.TRESERVA,
            owner=OWNER,
            sessions=sessions,
            guard=guard,
            clock=clock,
            relay_wake=relay_wake,
        ),
        tags=["receipts"],
    )
    install_http_edge(
        app, settings, shape=OPERATION_OUTCOME, key_ok=lambda h: guard.keys.identify(h) is not None
    )
    return app
