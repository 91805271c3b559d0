"""Discharge notice (utskrivningsmeddelande) with the information at discharge to Treserva.
Pure translation of the FHIR message into Treserva's native document
(``contracts/treserva/discharge-notice.schema.json``).

The medication list is not part of it: it arrives as its own medication-list message, and
``lakemedelslistaSkickad`` tells home care whether to expect one."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import enhet, stay_notice
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    TranslationError,
    arr,
    coded,
    known,
    maybe_boolean,
    maybe_obj,
    maybe_text,
    obj,
    read_unit,
    resolve,
    resources,
    text,
)
from services.messaging.native import OutboundFamily
from services.messaging.vocabulary import (
    DISCHARGE_DESTINATION_SYSTEM,
    OBSERVATION_SYSTEM,
    SNOMED_SYSTEM,
)

TYP = {EventCode.DISCHARGE_NOTICE.value: "utskrivningsmeddelande"}

UTSKRIVEN_TILL = {
    "home": "hem",
    "home-with-home-care": "hem-med-hemsjukvard",
    "short-term-care": "korttidsboende",
    "nursing-home": "sarskilt-boende",
    "other-hospital": "annat-sjukhus",
    "deceased": "avliden",
    "other": "annat",
}

INFORMATION_FIELDS = {
    "discharge-summary": "sammanfattning",
    "nursing-needs": "omvardnadsbehov",
    "functional-status": "funktionsstatus",
    "assistive-devices": "hjalpmedel",
    "risk-assessment": "riskbedomning",
    "pending-results": "vantandeSvar",
}
MEDICATION_LIST_SENT = "medication-list-sent"
FOLLOW_UP_CODE = "390906007"  # SNOMED CT: Follow-up encounter (procedure)
RESPONSIBILITY = "responsible-after-discharge"


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    _, encounter, notice = stay_notice(doc, TYP)
    destination = coded(
        obj(encounter, "hospitalization.dischargeDisposition"), DISCHARGE_DESTINATION_SYSTEM
    )
    return {
        **notice,
        "utskriven": text(encounter, "period.end"),
        "utskrivenTill": known(
            UTSKRIVEN_TILL, destination, "Encounter.hospitalization.dischargeDisposition"
        ),
        "uppfoljning": _follow_up(doc),
        "informationVidUtskrivning": _information(doc),
        "lakemedelslistaSkickad": _medication_list_sent(doc),
        "ansvarigEnhet": _responsible_unit(doc),
    }


def _information(doc: dict[str, Any]) -> dict[str, Any]:
    information: dict[str, Any] = dict.fromkeys(INFORMATION_FIELDS.values())
    for observation in resources(doc, "Observation"):
        concept = maybe_obj(observation, "code")
        target = INFORMATION_FIELDS.get(coded(concept, OBSERVATION_SYSTEM) or "")
        if target is not None:
            information[target] = maybe_text(observation, "valueString")
    if information["sammanfattning"] is None:
        raise TranslationError("discharge notice lacks the discharge summary")
    return information


def _medication_list_sent(doc: dict[str, Any]) -> bool:
    for observation in resources(doc, "Observation"):
        if coded(maybe_obj(observation, "code"), OBSERVATION_SYSTEM) == MEDICATION_LIST_SENT:
            sent = maybe_boolean(observation, "valueBoolean")
            if sent is not None:
                return sent
    raise TranslationError("discharge notice does not say whether a medication list was sent")


def _follow_up(doc: dict[str, Any]) -> dict[str, Any] | None:
    for request in resources(doc, "ServiceRequest"):
        if coded(maybe_obj(request, "code"), SNOMED_SYSTEM) == FOLLOW_UP_CODE:
            return {
                "enhet": enhet(read_unit(resolve(doc, request, "performer.0"))),
                "tid": maybe_text(request, "occurrenceDateTime"),
                "notering": maybe_text(request, "note.0.text"),
            }
    return None


def _responsible_unit(doc: dict[str, Any]) -> dict[str, str] | None:
    for episode in resources(doc, "EpisodeOfCare"):
        if any(coded(kind, OBSERVATION_SYSTEM) == RESPONSIBILITY for kind in arr(episode, "type")):
            return enhet(read_unit(resolve(doc, episode, "managingOrganization")))
    return None


OUTBOUND = OutboundFamily(
    family="discharge-notice",
    events=tuple(EventCode(code) for code in TYP),
    path="/api/v1/utskrivningsmeddelanden",
    schema="treserva/discharge-notice.schema.json",
    to_native=to_native,
)
