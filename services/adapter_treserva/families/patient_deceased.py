"""Patient deceased (patienten avliden) to Treserva: the patient died during the hospital stay,
so home care stops planning. Pure translation of the FHIR message into Treserva's native
document (``contracts/treserva/patient-deceased.schema.json``). Only when: never a cause of
death, which the message does not carry either."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import stay_notice
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import TranslationError, resolve, text
from services.messaging.native import OutboundFamily

TYP = {EventCode.PATIENT_DECEASED.value: "avliden"}


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    _, encounter, notice = stay_notice(doc, TYP)
    notice["brukare"].pop("folkbokforingsadress", None)  # never an address here
    deceased = text(resolve(doc, encounter, "subject", "Patient"), "deceasedDateTime")
    if text(encounter, "status") != "finished":
        raise TranslationError("Encounter.status must be finished")
    notice["avliden"] = {"tidpunkt": deceased}
    return notice


OUTBOUND = OutboundFamily(
    family="patient-deceased",
    events=(EventCode.PATIENT_DECEASED,),
    path="/api/v1/avlidna",
    schema="treserva/patient-deceased.schema.json",
    to_native=to_native,
)
