"""Composition root of adapter_takecare."""

from __future__ import annotations

from services.adapter_takecare import families, primary_care
from services.adapter_takecare.app import OWNER, create_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.messaging.adapter_service import Endpoint, run_adapter
from services.messaging.delivery import Destination, field_marker
from services.messaging.envelope import System
from services.messaging.startup import settings_or_exit

DESTINATION = Destination(
    system=System.TAKECARE,
    owner=OWNER,
    families=families.OUTBOUND,
    mark_superseded=field_marker("supersededBy"),
    mark_case=field_marker("caseId"),  # the case id, echoed back by TakeCare
)


async def main(settings: AdapterTakeCareSettings | None = None) -> int:
    settings = settings or settings_or_exit(AdapterTakeCareSettings)
    timeout = settings.request_timeout_s
    return await run_adapter(
        settings,
        name=OWNER,
        endpoints=[
            Endpoint(
                DESTINATION,
                settings.takecare_url,
                settings.takecare_token,
                timeout,
                confirmation=settings.takecare_confirmation,
            ),
            Endpoint(
                primary_care.destination(OWNER),
                settings.primary_care_url,
                settings.primary_care_token,
                timeout,
                confirmation=settings.primary_care_confirmation,
            ),
        ],
        read_back=settings.read_back_terms(),
        create_app=lambda store, sessions, wake: create_app(
            settings, store=store, sessions=sessions, clock=settings.clock().now, relay_wake=wake
        ),
    )
