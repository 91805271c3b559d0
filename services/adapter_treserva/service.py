"""Composition root of adapter_treserva."""

from __future__ import annotations

from services.adapter_treserva import families
from services.adapter_treserva.app import OWNER, create_app
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.adapter_service import Endpoint, run_adapter
from services.messaging.delivery import Destination, field_marker
from services.messaging.envelope import System
from services.messaging.startup import settings_or_exit

DESTINATION = Destination(
    system=System.TRESERVA,
    owner=OWNER,
    families=families.OUTBOUND,
    mark_superseded=field_marker("ersattAv"),
    mark_receiver=field_marker("mottagandeEnhet"),  # the municipality's receiving unit
    mark_case=field_marker("arendeId"),  # the case id, echoed back by Treserva
)


async def main(settings: AdapterTreservaSettings | None = None) -> int:
    settings = settings or settings_or_exit(AdapterTreservaSettings)
    return await run_adapter(
        settings,
        name=OWNER,
        endpoints=[
            Endpoint(
                DESTINATION,
                settings.treserva_url,
                settings.treserva_token,
                settings.request_timeout_s,
                confirmation=settings.treserva_confirmation,
            )
        ],
        read_back=settings.read_back_terms(),
        create_app=lambda store, sessions, wake: create_app(
            settings, store=store, sessions=sessions, clock=settings.clock().now, relay_wake=wake
        ),
    )
