"""Composition root of adapter_treserva."""

from __future__ import annotations

from services.adapter_treserva import families
from services.adapter_treserva.app import OWNER, create_app
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.adapter_service import run_adapter
from services.messaging.db import utcnow
from services.messaging.delivery import Destination
from services.messaging.envelope import System

DESTINATION = Destination(
    system=System.TRESERVA,
    owner=OWNER,
    families=families.OUTBOUND,
    superseded_field="ersattAv",
)


async def main(settings: AdapterTreservaSettings | None = None) -> int:
    settings = settings or AdapterTreservaSettings()
    return await run_adapter(
        settings,
        destination=DESTINATION,
        journal_url=settings.treserva_url,
        journal_token=settings.treserva_token,
        request_timeout_s=settings.request_timeout_s,
        create_app=lambda store, sessions, wake: create_app(
            settings, store=store, sessions=sessions, clock=utcnow, relay_wake=wake
        ),
    )
