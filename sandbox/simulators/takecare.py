"""A runnable fake of TakeCare (the hospital journal), with fault switches.

Control (port 8112, always up): ``POST /_sim/emit {"family": ..., "count": n}`` makes TakeCare
send its events to adapter_takecare, as its triggers would: ``admission-notice``,
``discharge-readiness``, ``discharge-notice``, ``medication-list``, ``sip-update``,
``read-receipt`` (läskvittens: someone at the hospital read a message), ``consent-withdrawal``,
``process-interrupted`` (avbrott i utskrivningsprocessen), ``transfer`` (förflyttning),
``patient-deceased`` (patienten avliden), ``administrative-message``, ``message-cancelled``
(makulering; ``options.original``: the TakeCare document it cancels); with
``schedule_interval_s`` > 0 it also emits one admission per interval. Fault switches and
statistics as in :mod:`sandbox.simulators.journal`.

API (port 8102) receives what the broker delivers to TakeCare (Treserva's SIP updates, home
care's medication list, the municipality's answers to admission notices and that it can
receive the patient, read receipts, administrative messages) and, as primary care's inbox, the
hospital's notices as FHIR messages (``POST /api/v1/primary-care/$process-message``), filed
under the vårdcentral each is addressed to (``GET /api/v1/<kind>?unit=<HSA-id>``,
``GET /_sim/units``); it pushes a receipt for each to adapter_takecare.

Opt-in (off by default: it adds messages the end-to-end tests do not count on):
``SIM_TAKECARE_READ_RECEIPTS=true`` sends the hospital's read receipt (läskvittens) of every
document the municipality sent it, ``read_delay_s`` later, echoing the document's ``caseId``.
``SIM_TAKECARE_REGION`` (``halland``, the default, or ``gotland``): whose people and units
its samples are.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.simulators import emitters
from sandbox.simulators.journal import (
    EmitRequest,
    JournalSpec,
    JournalState,
    Kind,
    create_api_app,
    create_control_app,
)
from sandbox.simulators.samples.people import in_region
from sandbox.simulators.samples.read_receipt import takecare_read_receipt_for
from sandbox.simulators.serving import run_until_signalled, serve


class TakeCareSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_TAKECARE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8102
    control_port: int = 8112
    adapter_url: str = "http://127.0.0.1:8001"  # adapter_takecare: events and receipts
    adapter_token: str = "sandbox-takecare-key"  # noqa: S105 (sandbox simulator)
    api_token: str = "sandbox-takecare-api-key"  # noqa: S105
    primary_care_token: str = "sandbox-primary-care-api-key"  # noqa: S105
    schedule_interval_s: float = 0.0
    receipt_delay_s: float = 0.0
    receipt_give_up_s: float = 120.0
    # false: no receipts pushed; the adapter confirms by reading records back (GET by key)
    push_receipts: bool = True
    # true: send a read receipt (läskvittens) of each document the municipality sent, this
    # long after storing it, echoing its case id. Off by default (a message the end-to-end
    # tests do not count on).
    read_receipts: bool = False
    read_delay_s: float = 1.0
    # the sandbox region whose people and units the samples are (the router's directory)
    region: Literal["halland", "gotland"] = "halland"


KINDS = (
    Kind(
        "medication-lists",
        "takecare/medication-list.schema.json",
        message_id_field="eventId",
        document_id_field="listId",
        superseded_field="supersededBy",
    ),
    Kind(
        "sip-updates",
        "takecare/sip-update.schema.json",
        message_id_field="eventId",
        document_id_field="sipId",
        superseded_field="supersededBy",
    ),
    Kind("admission-answers", "takecare/admission-answer.schema.json", message_id_field="eventId"),
    Kind("read-receipts", "takecare/read-receipt.schema.json", message_id_field="eventId"),
    Kind("ready-to-receive", "takecare/ready-to-receive.schema.json", message_id_field="eventId"),
    Kind(
        "administrative-messages",
        "takecare/administrative-message.schema.json",
        message_id_field="eventId",
    ),
    Kind("cancellations", "takecare/message-cancelled.schema.json", message_id_field="eventId"),
)

_SAMPLES = "sandbox.simulators.samples"
# family → (adapter_takecare route, sample function)
EMITTERS = {
    "admission-notice": ("admissions", f"{_SAMPLES}.admission_notice:sample_admission"),
    "discharge-readiness": (
        "discharge-readiness",
        f"{_SAMPLES}.discharge:sample_discharge_readiness",
    ),
    "discharge-notice": ("discharges", f"{_SAMPLES}.discharge:sample_discharge_notice"),
    "medication-list": (
        "medication-lists",
        f"{_SAMPLES}.medication_list:sample_takecare_medication_list",
    ),
    "sip-update": ("sip-updates", f"{_SAMPLES}.sip_update:sample_takecare_sip_update"),
    "consent-withdrawal": (
        "consent-withdrawals",
        f"{_SAMPLES}.consent_withdrawal:sample_consent_withdrawal",
    ),
    "read-receipt": ("read-receipts", f"{_SAMPLES}.read_receipt:sample_takecare_read_receipt"),
    "process-interrupted": (
        "process-interruptions",
        f"{_SAMPLES}.process_interrupted:sample_process_interrupted",
    ),
    "transfer": ("transfers", f"{_SAMPLES}.transfer:sample_transfer"),
    "patient-deceased": ("deaths", f"{_SAMPLES}.patient_deceased:sample_patient_deceased"),
    "administrative-message": (
        "administrative-messages",
        f"{_SAMPLES}.administrative_message:sample_takecare_administrative_message",
    ),
    # options: {"original": <the TakeCare document it cancels>}
    "message-cancelled": (
        "cancellations",
        f"{_SAMPLES}.message_cancelled:sample_takecare_cancellation",
    ),
}


def receipt(record: dict[str, Any], record_id: str) -> dict[str, Any]:
    return {
        "receiptId": f"RCPT-{record_id}",
        "messageId": record.get("eventId") or _message_id(record),
        "recordId": record_id,
        "status": "registered",
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def _message_id(bundle: dict[str, Any]) -> str:
    """A FHIR message's id: its MessageHeader's (Bundle.id names one send of it)."""
    return str(bundle["entry"][0]["resource"]["id"])


def primary_care_kind(settings: TakeCareSimSettings) -> Kind:
    """Primary care's inbox (a vårdcentral in TakeCare): FHIR messages as they are."""
    return Kind(
        "primary-care/$process-message",
        None,
        message_id_field="entry[0].resource.id",  # MessageHeader.id
        api_token=settings.primary_care_token,
        receipt_url=f"{settings.adapter_url}/primary-care/v1/receipts",
        receiver=_addressed_vardcentral,
    )


def _addressed_vardcentral(bundle: dict[str, Any]) -> str | None:
    """The vårdcentral a FHIR message is addressed to: the HSA-id in
    ``MessageHeader.destination.receiver`` of primary care's destination."""
    entries = bundle.get("entry") or [{}]
    header = entries[0].get("resource") or {}
    for destination in header.get("destination") or []:
        if destination.get("endpoint") != "urn:carebridge:system:primary-care":
            continue
        identifier = (destination.get("receiver") or {}).get("identifier") or {}
        value = identifier.get("value")
        return value if isinstance(value, str) else None
    return None


READ_RECEIPT_KIND = "read-receipts"


def reading(
    settings: TakeCareSimSettings,
    state: JournalState,
    *,
    rng: random.Random,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Callable[[Kind, dict[str, Any]], Awaitable[None]]:
    """What TakeCare sends by itself after it stores a document of the municipality: its
    read receipt, echoing the document's ``caseId`` (never one of a read receipt, nor of
    primary care's FHIR inbox)."""

    async def after_store(kind: Kind, record: dict[str, Any]) -> None:
        if kind.schema is None or kind.path == READ_RECEIPT_KIND:
            return
        await asyncio.sleep(settings.read_delay_s)
        with in_region(settings.region):
            receipt = takecare_read_receipt_for(record, rng, now=datetime.now().astimezone())
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            sent = await emitters.post_events(
                client,
                f"{settings.adapter_url}/takecare/v1/{EMITTERS['read-receipt'][0]}",
                settings.adapter_token,
                [receipt],
            )
        if sent[0]["status"] == 202:
            state.stats["emitted"] += 1

    return after_store


def spec(
    settings: TakeCareSimSettings,
    *,
    after_store: Callable[[Kind, dict[str, Any]], Awaitable[None]] | None = None,
) -> JournalSpec:
    return JournalSpec(
        name="TakeCare",
        kinds=(*KINDS, primary_care_kind(settings)),
        api_token=settings.api_token,
        receipt_url=f"{settings.adapter_url}/takecare/v1/receipts",
        receipt_token=settings.adapter_token,
        receipt=receipt,
        record_prefix="TC",
        receipt_delay_s=settings.receipt_delay_s,
        receipt_give_up_s=settings.receipt_give_up_s,
        push_receipts=settings.push_receipts,
        after_store=after_store,
    )


def make_emitter(
    settings: TakeCareSimSettings,
    *,
    rng: random.Random,
    transport: httpx.AsyncBaseTransport | None = None,
) -> emitters.Emit:
    return emitters.make_emitter(
        EMITTERS,
        intake_url=f"{settings.adapter_url}/takecare/v1",
        token=settings.adapter_token,
        rng=rng,
        region=settings.region,
        transport=transport,
    )


async def run(settings: TakeCareSimSettings, stop: asyncio.Event) -> None:
    state = JournalState()
    emit = make_emitter(settings, rng=random.Random())
    after_store = reading(settings, state, rng=random.Random()) if settings.read_receipts else None

    async def scheduled() -> None:
        while True:
            await asyncio.sleep(settings.schedule_interval_s)
            await emit(EmitRequest(family="admission-notice"))

    task = asyncio.create_task(scheduled()) if settings.schedule_interval_s > 0 else None
    try:
        await serve(
            state,
            create_api_app(state, spec(settings, after_store=after_store)),
            create_control_app(state, name="TakeCare", emit=emit),
            host=settings.host,
            port=settings.port,
            control_port=settings.control_port,
            stop=stop,
        )
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main() -> None:
    settings = TakeCareSimSettings()
    run_until_signalled("sim_takecare", lambda stop: run(settings, stop))


if __name__ == "__main__":
    main()
