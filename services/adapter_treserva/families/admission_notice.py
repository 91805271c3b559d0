"""Admission notice (inskrivningsmeddelande) to Treserva: new, changed expected discharge,
cancelled. Pure translation of the FHIR message into Treserva's native notice
(``contracts/treserva/admission-notice.schema.json``)."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import brukare, enhet
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    TranslationError,
    coded,
    extension,
    one,
    read_patient,
    read_unit,
    resolve,
    resources,
)
from services.messaging.native import OutboundFamily
from services.messaging.vocabulary import (
    CANCELLATION_REASON_URL,
    EXPECTED_DISCHARGE_URL,
    OBSERVATION_SYSTEM,
)

TYP = {
    EventCode.ADMISSION_NOTICE.value: "inskrivningsmeddelande",
    EventCode.ADMISSION_NOTICE_UPDATED.value: "inskrivningsmeddelande-andrat",
    EventCode.ADMISSION_NOTICE_CANCELLED.value: "inskrivningsmeddelande-makulerat",
}

OBSERVATION_FIELDS = {
    "housing-situation": "boendesituation",
    "social-situation": "socialSituation",
    "care-needs-assessment": "nulagesbedomning",
}


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    header = one(doc, "MessageHeader")
    try:
        encounter = resolve(doc, header["focus"][0])
        event = header["eventCoding"]["code"]
        notice: dict[str, Any] = {
            "meddelandeId": doc["id"],
            "typ": TYP[event],
            "skickat": doc["timestamp"],
            "brukare": brukare(read_patient(resolve(doc, encounter["subject"]))),
            "vardtillfalle": {
                "id": encounter["identifier"][0]["value"],
                "inskriven": encounter["period"]["start"],
                "avdelning": enhet(read_unit(resolve(doc, encounter["serviceProvider"]))),
            },
            "beraknadUtskrivning": (extension(encounter, EXPECTED_DISCHARGE_URL) or {}).get(
                "valueDateTime"
            ),
            "inskrivningsorsak": encounter["reasonCode"][0]["text"],
        }
    except (KeyError, IndexError) as exc:
        raise TranslationError(f"admission notice incomplete: {type(exc).__name__}") from None
    cancelled = extension(encounter, CANCELLATION_REASON_URL)
    if cancelled is not None:
        notice["makuleringsorsak"] = cancelled["valueString"]
    for field in OBSERVATION_FIELDS.values():
        notice[field] = None
    for observation in resources(doc, "Observation"):
        target = OBSERVATION_FIELDS.get(coded(observation.get("code"), OBSERVATION_SYSTEM) or "")
        if target is not None:
            notice[target] = observation.get("valueString")
    return notice


OUTBOUND = OutboundFamily(
    family="admission-notice",
    events=tuple(EventCode(code) for code in TYP),
    path="/api/v1/inskrivningsmeddelanden",
    schema="treserva/admission-notice.schema.json",
    to_native=to_native,
)
