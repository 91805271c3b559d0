"""Process interrupted (avbrott i utskrivningsprocessen) from TakeCare: the planning for a
stay's discharge is interrupted, e.g. the patient's condition worsened or the patient declined
the municipality's services. Contract ``contracts/takecare/process-interrupted.schema.json``;
mapping ``contracts/fhir/process-interrupted.md``.

The reason is a code of a small closed CodeSystem; the note is free text, so patient data:
it is carried, never logged and never named in an error. No address is sent.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event process-interrupted, focus Encounter, Consent
     ├── Encounter       the stay; extension process-interrupted (reason, at, note)
     ├── Patient         personnummer / samordningsnummer / reservnummer, name
     ├── Consent         the basis it is shared on
     └── Organization    the ward (HSA-id)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Literal

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from services.adapter_takecare.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
)
from services.adapter_takecare.stay_event import Stay, StayEvent
from services.messaging.case import stay_case_id
from services.messaging.consent import consent_of
from services.messaging.envelope import EventCode, System
from services.messaging.fhir_parts import (
    Ref,
    message_bundle,
    organization_resource,
    patient_resource,
    refs,
)
from services.messaging.native import InboundFamily, NativeModel
from services.messaging.vocabulary import (
    PROCESS_INTERRUPTED_URL,
    PROCESS_INTERRUPTION_REASON_SYSTEM,
    TAKECARE_ENCOUNTER_SYSTEM,
)

Reason = Literal["condition-worsened", "declined-municipal-services", "other"]
REASON_DISPLAY: dict[str, str] = {
    "condition-worsened": "Patientens tillstånd har försämrats",
    "declined-municipal-services": "Patienten avböjer kommunens insatser",
    "other": "Annan orsak",
}


class Interruption(NativeModel):
    reason: Reason
    interrupted_at: AwareDatetime = Field(alias="interruptedAt")
    note: str | None = None  # free text: patient data


class TakeCareProcessInterrupted(StayEvent):
    EVENT: ClassVar[EventCode] = EventCode.PROCESS_INTERRUPTED

    interruption: Interruption

    @field_validator("interruption")
    @classmethod
    def _not_before_the_admission(
        cls, interruption: Interruption, info: ValidationInfo
    ) -> Interruption:
        stay = info.data.get("encounter")
        if isinstance(stay, Stay) and interruption.interrupted_at < stay.admitted_at:
            raise ValueError("the process is interrupted before the admission")
        return interruption


def to_bundle(
    event: TakeCareProcessInterrupted, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    patient = replace(event.patient.info(regional_reserve_oid), address=None)
    return message_bundle(
        key=key,
        event=EventCode.PROCESS_INTERRUPTED,
        source=System.TAKECARE,
        now=now,
        focus=["encounter", "consent"],
        case_id=stay_case_id(event.encounter.encounter_id),
        sender="organization",
        resources=[
            ("encounter", _encounter(event, ref)),
            ("patient", patient_resource(patient)),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.encounter.unit.info())),
        ],
    )


def _interruption(interruption: Interruption) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {
            "url": "reason",
            "valueCoding": {
                "system": PROCESS_INTERRUPTION_REASON_SYSTEM,
                "code": interruption.reason,
                "display": REASON_DISPLAY[interruption.reason],
            },
        },
        {"url": "at", "valueDateTime": interruption.interrupted_at.isoformat()},
    ]
    if interruption.note is not None:
        parts.append({"url": "note", "valueString": interruption.note})
    return {"url": PROCESS_INTERRUPTED_URL, "extension": parts}


def _encounter(event: TakeCareProcessInterrupted, ref: Ref) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "extension": [_interruption(event.interruption)],
        "identifier": [
            {"system": TAKECARE_ENCOUNTER_SYSTEM, "value": event.encounter.encounter_id}
        ],
        "status": "in-progress",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": ref("patient")},
        "period": {"start": event.encounter.admitted_at.isoformat()},
        "serviceProvider": {"reference": ref("organization")},
    }


INBOUND = InboundFamily(
    family="process-interrupted",
    route="process-interruptions",
    schema="takecare/process-interrupted.schema.json",
    model=TakeCareProcessInterrupted,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
