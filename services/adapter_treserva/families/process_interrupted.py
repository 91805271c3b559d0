"""Process interrupted (avbrott i utskrivningsprocessen) to Treserva: the hospital interrupted
the planning for a stay's discharge, so home care stops planning for it. Pure translation of
the FHIR message into Treserva's native document
(``contracts/treserva/process-interrupted.schema.json``). The comment is free text: patient
data, carried and never logged."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import stay_notice
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    extension,
    known,
    maybe_text,
    obj,
    required_extension,
    text,
)
from services.messaging.native import OutboundFamily
from services.messaging.vocabulary import (
    PROCESS_INTERRUPTED_URL,
    PROCESS_INTERRUPTION_REASON_SYSTEM,
)

TYP = {EventCode.PROCESS_INTERRUPTED.value: "avbrott-utskrivningsprocess"}
ORSAK = {
    "condition-worsened": "forsamrat-tillstand",
    "declined-municipal-services": "avbojer-kommunala-insatser",
    "other": "annat",
}


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    _, encounter, notice = stay_notice(doc, TYP)
    notice["brukare"].pop("folkbokforingsadress", None)  # not needed to stop planning
    found = required_extension(encounter, PROCESS_INTERRUPTED_URL)
    coding = obj(required_extension(found, "reason"), "valueCoding")
    code = (
        text(coding, "code") if coding.get("system") == PROCESS_INTERRUPTION_REASON_SYSTEM else None
    )
    avbrott: dict[str, Any] = {
        "orsak": known(ORSAK, code, "Encounter.extension.process-interrupted.reason"),
        "tidpunkt": text(required_extension(found, "at"), "valueDateTime"),
    }
    note = extension(found, "note")
    kommentar = None if note is None else maybe_text(note, "valueString")
    if kommentar is not None:
        avbrott["kommentar"] = kommentar
    notice["avbrott"] = avbrott
    return notice


OUTBOUND = OutboundFamily(
    family="process-interrupted",
    events=(EventCode.PROCESS_INTERRUPTED,),
    path="/api/v1/avbrott-utskrivningsprocess",
    schema="treserva/process-interrupted.schema.json",
    to_native=to_native,
)
