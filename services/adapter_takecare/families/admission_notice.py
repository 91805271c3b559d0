"""Admission notice (inskrivningsmeddelande) from TakeCare: new, updated expected discharge
date, cancelled. Contract ``contracts/takecare/admission-notice.schema.json``; mapping
``contracts/fhir/admission-notice.md``.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event admission-notice[-updated|-cancelled], focus Encounter
     ├── Encounter       inpatient stay: admitted at, reason, expected discharge (extension);
     │                   status cancelled with the reason for a cancelled notice
     ├── Patient         personnummer / samordningsnummer / reservnummer, name, address
     ├── Organization    the admitting ward (HSA-id)
     ├── Observation ×n  housing situation, social situation, care-needs assessment
     └── EpisodeOfCare   the case (services.messaging.case), named last in focus
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field

from services.adapter_takecare.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    ConsentBasisBlock,
    Patient,
    Unit,
)
from services.messaging.case import stay_case_id
from services.messaging.consent import consent_of
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import (
    Ref,
    code,
    message_bundle,
    organization_resource,
    patient_resource,
    refs,
)
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel
from services.messaging.vocabulary import (
    CANCELLATION_REASON_URL,
    EXPECTED_DISCHARGE_URL,
    OBSERVATION_SYSTEM,
    TAKECARE_ENCOUNTER_SYSTEM,
)

EVENTS = {
    "admission": EventCode.ADMISSION_NOTICE,
    "admission-updated": EventCode.ADMISSION_NOTICE_UPDATED,
    "admission-cancelled": EventCode.ADMISSION_NOTICE_CANCELLED,
}

OBSERVATIONS = (
    ("housing_situation", "housing-situation", "Boendesituation"),
    ("social_situation", "social-situation", "Social situation"),
    ("care_needs_assessment", "care-needs-assessment", "Nulägesbedömning"),
)


class Encounter(NativeModel):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class TakeCareAdmission(NativeEvent):
    event_id: str = Field(alias="eventId")
    version: int = 1
    event_type: str = Field(alias="eventType")
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    encounter: Encounter
    expected_discharge_at: AwareDatetime | None = Field(alias="expectedDischargeAt")
    admission_reason: str = Field(alias="admissionReason")
    cancellation_reason: str | None = Field(default=None, alias="cancellationReason")
    housing_situation: str | None = Field(default=None, alias="housingSituation")
    social_situation: str | None = Field(default=None, alias="socialSituation")
    care_needs_assessment: str | None = Field(default=None, alias="careNeedsAssessment")

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, self.version)

    def event_code(self) -> EventCode:
        return EVENTS[self.event_type]

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def stay(self) -> tuple[str, str]:
        return "encounter.encounterId", self.encounter.encounter_id


def to_bundle(
    event: TakeCareAdmission, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    observations = [
        (role, _observation(role, display, value, event, ref))
        for field, role, display in OBSERVATIONS
        if (value := getattr(event, field))
    ]
    return message_bundle(
        key=key,
        case_id=stay_case_id(event.encounter.encounter_id),
        event=event.event_code(),
        source=System.TAKECARE,
        now=now,
        focus=["encounter", "consent"],
        sender="organization",
        resources=[
            ("encounter", _encounter(event, ref)),
            ("patient", patient_resource(event.patient.info(regional_reserve_oid))),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.encounter.unit.info())),
            *observations,
        ],
    )


def _encounter(event: TakeCareAdmission, ref: Ref) -> dict[str, Any]:
    cancelled = event.event_code() is EventCode.ADMISSION_NOTICE_CANCELLED
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [
            {"system": TAKECARE_ENCOUNTER_SYSTEM, "value": event.encounter.encounter_id}
        ],
        "status": "cancelled" if cancelled else "in-progress",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": ref("patient")},
        "period": {"start": event.encounter.admitted_at.isoformat()},
        "reasonCode": [{"text": event.admission_reason}],
        "serviceProvider": {"reference": ref("organization")},
    }
    if event.expected_discharge_at is not None:
        encounter["extension"] = [
            {
                "url": EXPECTED_DISCHARGE_URL,
                "valueDateTime": event.expected_discharge_at.isoformat(),
            }
        ]
    if event.cancellation_reason is not None:
        encounter.setdefault("extension", []).append(
            {"url": CANCELLATION_REASON_URL, "valueString": event.cancellation_reason}
        )
    return encounter


def _observation(
    role: str, display: str, value: str, event: TakeCareAdmission, ref: Ref
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": code(OBSERVATION_SYSTEM, role, display),
        "subject": {"reference": ref("patient")},
        "encounter": {"reference": ref("encounter")},
        "effectiveDateTime": event.occurred_at.isoformat(),
        "valueString": value,
    }


INBOUND = InboundFamily(
    family="admission-notice",
    route="admissions",
    schema="takecare/admission-notice.schema.json",
    model=TakeCareAdmission,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
