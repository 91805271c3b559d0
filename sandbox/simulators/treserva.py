"""A runnable fake of Treserva (the municipal home-care journal), with fault switches.

API (port 8101) receives what the broker delivers, one path per family (see
:mod:`sandbox.simulators.journal`), and pushes a kvittens (receipt) for each to
adapter_treserva. Control (port 8111, always up): fault switches, statistics, and
``POST /_sim/emit {"family": "sip-update" | "medication-list", "count": n}`` to make Treserva
send its own SIP updates or home care's medication list to adapter_treserva.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.simulators import emitters
from sandbox.simulators.journal import (
    JournalSpec,
    JournalState,
    Kind,
    create_api_app,
    create_control_app,
)
from sandbox.simulators.serving import run_until_signalled, serve


class TreservaSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_TRESERVA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8101
    control_port: int = 8111
    adapter_url: str = "http://127.0.0.1:8002"  # adapter_treserva: receipts and events
    adapter_token: str = "sandbox-treserva-key"  # noqa: S105 (sandbox simulator)
    api_token: str = "sandbox-treserva-api-key"  # noqa: S105
    receipt_delay_s: float = 0.0
    receipt_give_up_s: float = 120.0
    # false: no receipts pushed; the adapter confirms by reading records back (GET by key)
    push_receipts: bool = True


def _kind(path: str, family: str, document: str | None = None) -> Kind:
    return Kind(
        path=path,
        schema=f"treserva/{family}.schema.json",
        message_id_field="meddelandeId",
        document_id_field=document,
        superseded_field="ersattAv" if document else None,
        receiver=_receiving_unit,
    )


def _receiving_unit(document: dict[str, Any]) -> str | None:
    """The home-care unit the broker addressed (mottagandeEnhet): one simulator serves the
    units of every municipality and files each record under its own."""
    unit = document.get("mottagandeEnhet")
    return unit if isinstance(unit, str) else None


KINDS = (
    _kind("inskrivningsmeddelanden", "admission-notice"),
    _kind("utskrivningsklar", "discharge-readiness"),
    _kind("utskrivningsmeddelanden", "discharge-notice"),
    _kind("lakemedelslistor", "medication-list", "listaId"),
    _kind("sip", "sip-update", "sipId"),
    _kind("aterkallade-samtycken", "consent-withdrawal"),
)

# family → (adapter_treserva route, sample function)
EMITTERS = {
    "sip-update": ("sip", "sandbox.simulators.samples.sip_update:sample_treserva_sip_update"),
    "medication-list": (
        "lakemedelslistor",
        "sandbox.simulators.samples.medication_list:sample_treserva_medication_list",
    ),
}


def receipt(record: dict[str, Any], record_id: str) -> dict[str, Any]:
    return {
        "kvittensId": f"KV-{record_id}",
        "meddelandeId": record["meddelandeId"],
        "treservaId": record_id,
        "status": "registrerad",
        "tidpunkt": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def spec(settings: TreservaSimSettings) -> JournalSpec:
    return JournalSpec(
        name="Treserva",
        kinds=KINDS,
        api_token=settings.api_token,
        receipt_url=f"{settings.adapter_url}/treserva/v1/kvittenser",
        receipt_token=settings.adapter_token,
        receipt=receipt,
        record_prefix="TRS",
        receipt_delay_s=settings.receipt_delay_s,
        receipt_give_up_s=settings.receipt_give_up_s,
        push_receipts=settings.push_receipts,
    )


def make_emitter(
    settings: TreservaSimSettings,
    *,
    rng: random.Random,
    transport: httpx.AsyncBaseTransport | None = None,
) -> emitters.Emit:
    return emitters.make_emitter(
        EMITTERS,
        intake_url=f"{settings.adapter_url}/treserva/v1",
        token=settings.adapter_token,
        rng=rng,
        transport=transport,
    )


async def run(settings: TreservaSimSettings, stop: asyncio.Event) -> None:
    state = JournalState()
    await serve(
        state,
        create_api_app(state, spec(settings)),
        create_control_app(
            state, name="Treserva", emit=make_emitter(settings, rng=random.Random())
        ),
        host=settings.host,
        port=settings.port,
        control_port=settings.control_port,
        stop=stop,
    )


def main() -> None:
    settings = TreservaSimSettings()
    run_until_signalled("sim_treserva", lambda stop: run(settings, stop))


if __name__ == "__main__":
    main()
