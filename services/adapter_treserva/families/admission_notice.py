"""Admission notice (inskrivningsmeddelande) to Treserva: new, changed expected discharge,
cancelled. Pure translation of the FHIR message into Treserva's native notice
(``contracts/treserva/admission-notice.schema.json``)."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import stay_notice
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    coded,
    extension,
    maybe_obj,
    maybe_text,
    resources,
    text,
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
    _, encounter, notice = stay_notice(doc, TYP)
    notice["beraknadUtskrivning"] = maybe_text(
        extension(encounter, EXPECTED_DISCHARGE_URL), "valueDateTime"
    )
    notice["inskrivningsorsak"] = text(encounter, "reasonCode.0.text")
    cancelled = extension(encounter, CANCELLATION_REASON_URL)
    if cancelled is not None:
        notice["makuleringsorsak"] = text(cancelled, "valueString")
    for field in OBSERVATION_FIELDS.values():
        notice[field] = None
    for observation in resources(doc, "Observation"):
        target = OBSERVATION_FIELDS.get(
            coded(maybe_obj(observation, "code"), OBSERVATION_SYSTEM) or ""
        )
        if target is not None:
            notice[target] = maybe_text(observation, "valueString")
    return notice


OUTBOUND = OutboundFamily(
    family="admission-notice",
    events=tuple(EventCode(code) for code in TYP),
    path="/api/v1/inskrivningsmeddelanden",
    schema="treserva/admission-notice.schema.json",
    to_native=to_native,
)
