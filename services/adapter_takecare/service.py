"""Composition root of adapter_takecare."""

from __future__ import annotations

from services.adapter_takecare import families
from services.adapter_takecare.app import OWNER, create_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.messaging.adapter_service import run_adapter
from services.messaging.db import utcnow
from services.messaging.delivery import Destination
from services.messaging.envelope import System

DESTINATION = Destination(
    system=System.TAKECARE,
    owner=OWNER,
    families=families.OUTBOUND,
    superseded_field="supersededBy",
)


async def main(settings: AdapterTakeCareSettings | None = None) -> int:
    settings = settings or AdapterTakeCareSettings()
    return await run_adapter(
        settings,
        destination=DESTINATION,
        journal_url=settings.takecare_url,
        journal_token=settings.takecare_token,
        request_timeout_s=settings.request_timeout_s,
        create_app=lambda store, sessions, wake: create_app(
            settings, store=store, sessions=sessions, clock=utcnow, relay_wake=wake
        ),
    )
