"""Transfer (förflyttning) to Treserva: the patient moved to another ward or hospital, and home
care keeps planning with the new unit as the hospital's contact. Pure translation of the FHIR
message into Treserva's native document (``contracts/treserva/transfer.schema.json``)."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import enhet, stay_notice
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import read_unit, required_extension, resolve, text
from services.messaging.native import OutboundFamily
from services.messaging.vocabulary import TRANSFER_URL

TYP = {EventCode.TRANSFER.value: "forflyttning"}


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    _, encounter, notice = stay_notice(doc, TYP)
    notice["brukare"].pop("folkbokforingsadress", None)  # a move needs no address
    found = required_extension(encounter, TRANSFER_URL)
    previous = resolve(doc, required_extension(found, "from"), "valueReference", "Organization")
    notice["forflyttning"] = {
        "franEnhet": enhet(read_unit(previous)),
        "tillEnhet": notice["vardtillfalle"]["avdelning"],
        "tidpunkt": text(required_extension(found, "at"), "valueDateTime"),
    }
    return notice


OUTBOUND = OutboundFamily(
    family="transfer",
    events=(EventCode.TRANSFER,),
    path="/api/v1/forflyttningar",
    schema="treserva/transfer.schema.json",
    to_native=to_native,
)
