"""A runnable fake of Treserva (the municipal home-care journal), with fault switches.

API (port 8101) receives what the broker delivers, one path per family (see
:mod:`sandbox.simulators.journal`), and pushes a kvittens (receipt) for each to
adapter_treserva. One simulator stands for the Treserva of every municipality of the region:
it files each document under the home-care unit the broker addressed it to
(``mottagandeEnhet``), and ``GET /api/v1/<kind>?unit=<HSA-id>`` lists one unit's documents,
``GET /_sim/units`` counts them per unit (the demo's per-municipality delivery).

Control (port 8111, always up): fault switches, statistics, and
``POST /_sim/emit {"family": "sip-update" | "medication-list" | "admission-answer" |
"read-receipt" | "ready-to-receive" | "administrative-message" | "message-cancelled", "count":
n}`` to make Treserva
send its own SIP updates, home care's medication list, an answer to an admission notice, a read
receipt (läskvittens), that it can receive a patient (kan ta emot), an administrative message
(administrativt meddelande) or a makulering (``options.original``: the Treserva document it
cancels) to adapter_treserva.

Opt-in, each off by default (they add messages the end-to-end tests do not count on):
``SIM_TRESERVA_READ_RECEIPTS=true`` sends a read receipt of every document it stores,
``read_delay_s`` later; ``SIM_TRESERVA_ANSWER_ADMISSIONS=true`` answers every new admission
notice, ``answer_delay_s`` after that; ``SIM_TRESERVA_READY_TO_RECEIVE=true`` says it can
receive the patient after each ready-for-discharge notice. A read receipt echoes the case id
the broker set on the document (``arendeId``). ``SIM_TRESERVA_REGION`` (``halland``, the
default, or ``gotland``): whose people and units its samples are.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

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
from sandbox.simulators.samples.admission_answer import answer_to
from sandbox.simulators.samples.people import in_region
from sandbox.simulators.samples.read_receipt import read_receipt_for
from sandbox.simulators.samples.ready_to_receive import ready_to_receive_for
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
    # true: answer each new admission notice (svar på inskrivningsmeddelande) this long after
    # storing it. Off by default: it adds a message the end-to-end tests do not count on.
    answer_admissions: bool = False
    answer_delay_s: float = 2.0
    # true: send a read receipt (läskvittens) for each document stored, this long after
    # storing it, as if someone had read it. Off by default for the same reason.
    read_receipts: bool = False
    read_delay_s: float = 1.0
    # true: say it can receive the patient (kan ta emot) after each ready-for-discharge notice
    ready_to_receive: bool = False
    ready_to_receive_delay_s: float = 3.0
    # the sandbox region whose people and units the emitted samples are (its unit
    # directory is the router's: contracts/units/<region>.json)
    region: Literal["halland", "gotland"] = "halland"


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
    _kind("laskvittenser", "read-receipt"),
    _kind("avbrott-utskrivningsprocess", "process-interrupted"),
    _kind("forflyttningar", "transfer"),
    _kind("avlidna", "patient-deceased"),
    _kind("administrativa-meddelanden", "administrative-message"),
    _kind("makuleringar", "message-cancelled"),
)

# family → (adapter_treserva route, sample function)
EMITTERS = {
    "sip-update": ("sip", "sandbox.simulators.samples.sip_update:sample_treserva_sip_update"),
    "medication-list": (
        "lakemedelslistor",
        "sandbox.simulators.samples.medication_list:sample_treserva_medication_list",
    ),
    "admission-answer": (
        "svar-inskrivningsmeddelanden",
        "sandbox.simulators.samples.admission_answer:sample_treserva_admission_answer",
    ),
    "read-receipt": (
        "laskvittenser",
        "sandbox.simulators.samples.read_receipt:sample_treserva_read_receipt",
    ),
    "ready-to-receive": (
        "kan-ta-emot",
        "sandbox.simulators.samples.ready_to_receive:sample_treserva_ready_to_receive",
    ),
    "administrative-message": (
        "administrativa-meddelanden",
        "sandbox.simulators.samples.administrative_message:sample_treserva_administrative_message",
    ),
    # options: {"original": <the Treserva document it cancels>}
    "message-cancelled": (
        "makuleringar",
        "sandbox.simulators.samples.message_cancelled:sample_treserva_cancellation",
    ),
}
ADMISSION_NOTICE_KIND = "inskrivningsmeddelanden"
ANSWERED_TYPE = "inskrivningsmeddelande"  # not the updated or cancelled notice
READ_RECEIPT_KIND = "laskvittenser"
READINESS_KIND = "utskrivningsklar"  # the ready-for-discharge notice (not its withdrawal)


def receipt(record: dict[str, Any], record_id: str) -> dict[str, Any]:
    return {
        "kvittensId": f"KV-{record_id}",
        "meddelandeId": record["meddelandeId"],
        "treservaId": record_id,
        "status": "registrerad",
        "tidpunkt": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def answering(
    settings: TreservaSimSettings,
    state: JournalState,
    *,
    rng: random.Random,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Callable[[Kind, dict[str, Any]], Awaitable[None]]:
    """What Treserva sends by itself after it stores a document, posted to adapter_treserva:
    a read receipt of it (``read_receipts``, echoing the document's ``arendeId``), its answer
    to a new admission notice (``answer_admissions``) and that it can receive the patient of
    a ready-for-discharge notice (``ready_to_receive``); those two name the stay
    (``vardtillfalleId``) instead. A read receipt is never sent of a read receipt."""

    async def send(family: str, event: dict[str, Any]) -> None:
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            sent = await emitters.post_events(
                client,
                f"{settings.adapter_url}/treserva/v1/{EMITTERS[family][0]}",
                settings.adapter_token,
                [event],
            )
        if sent[0]["status"] == 202:
            state.stats["emitted"] += 1

    async def after_store(kind: Kind, record: dict[str, Any]) -> None:
        with in_region(settings.region):
            await answer(kind, record)

    async def answer(kind: Kind, record: dict[str, Any]) -> None:
        read = settings.read_receipts and kind.path != READ_RECEIPT_KIND
        answer = settings.answer_admissions and (
            kind.path == ADMISSION_NOTICE_KIND and record.get("typ") == ANSWERED_TYPE
        )
        if read:
            await asyncio.sleep(settings.read_delay_s)
            now = datetime.now().astimezone()
            await send("read-receipt", read_receipt_for(record, rng, now=now))
        if answer:
            await asyncio.sleep(settings.answer_delay_s)
            now = datetime.now().astimezone()
            await send("admission-answer", answer_to(record, rng, now=now))
        if settings.ready_to_receive and (
            kind.path == READINESS_KIND and record.get("typ") == READINESS_KIND
        ):
            await asyncio.sleep(settings.ready_to_receive_delay_s)
            now = datetime.now().astimezone()
            await send("ready-to-receive", ready_to_receive_for(record, rng, now=now))

    return after_store


def spec(
    settings: TreservaSimSettings,
    *,
    after_store: Callable[[Kind, dict[str, Any]], Awaitable[None]] | None = None,
) -> JournalSpec:
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
        after_store=after_store,
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
        region=settings.region,
        transport=transport,
    )


async def run(settings: TreservaSimSettings, stop: asyncio.Event) -> None:
    state = JournalState()
    after_store = (
        answering(settings, state, rng=random.Random())
        if settings.answer_admissions or settings.read_receipts or settings.ready_to_receive
        else None
    )
    await serve(
        state,
        create_api_app(state, spec(settings, after_store=after_store)),
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
