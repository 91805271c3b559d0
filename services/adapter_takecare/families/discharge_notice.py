"""Discharge notice (utskrivningsmeddelande) from TakeCare, with the information at discharge.
Contract ``contracts/takecare/discharge-notice.schema.json``; mapping
``contracts/fhir/discharge-notice.md``.

The medication list is not in this message: it travels as its own medication-list message.
An Observation (``medication-list-sent``, valueBoolean) says whether TakeCare sent one.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event discharge-notice, focus Encounter
     ├── Encounter       finished inpatient stay: admitted at, discharged at (period.end),
     │                   where to (hospitalization.dischargeDisposition)
     ├── Patient         personnummer / samordningsnummer / reservnummer, name, address
     ├── Organization ×n the ward; the follow-up unit and the responsible unit when given
     │                   (one Organization per distinct unit)
     ├── ServiceRequest  planned follow-up: performer = follow-up unit, booked time, note
     ├── EpisodeOfCare   responsibility after discharge: managingOrganization = the unit
     ├── Observation ×n  information at discharge (summary, nursing needs, functional status,
     │                   assistive devices, risk assessment, pending results) and
     │                   medication-list-sent
     └── EpisodeOfCare   the case (services.messaging.case), named last in focus
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, StrictBool

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
    DISCHARGE_DESTINATION_SYSTEM,
    OBSERVATION_SYSTEM,
    SNOMED_SYSTEM,
    TAKECARE_ENCOUNTER_SYSTEM,
)

EVENTS = {"discharged": EventCode.DISCHARGE_NOTICE}

DESTINATIONS = {
    "home": "Hem",
    "home-with-home-care": "Hem med hemsjukvård",
    "short-term-care": "Korttidsboende",
    "nursing-home": "Särskilt boende",
    "other-hospital": "Annat sjukhus",
    "deceased": "Avliden",
    "other": "Annat",
}

OBSERVATIONS = (
    ("summary", "discharge-summary", "Sammanfattning vid utskrivning"),
    ("nursing_needs", "nursing-needs", "Omvårdnadsbehov"),
    ("functional_status", "functional-status", "Funktionsstatus"),
    ("aids", "assistive-devices", "Hjälpmedel"),
    ("risk_assessment", "risk-assessment", "Riskbedömning"),
    ("pending_results", "pending-results", "Väntande provsvar"),
)
MEDICATION_LIST_SENT = ("medication-list-sent", "Läkemedelslista skickad")

FOLLOW_UP_CODE = "390906007"  # SNOMED CT: Follow-up encounter (procedure)
RESPONSIBILITY = ("responsible-after-discharge", "Medicinskt ansvar efter utskrivning")


class Encounter(NativeModel):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class FollowUp(NativeModel):
    unit: Unit
    appointment_at: AwareDatetime | None = Field(default=None, alias="appointmentAt")
    note: str | None = None


class InformationAtDischarge(NativeModel):
    summary: str
    nursing_needs: str | None = Field(default=None, alias="nursingNeeds")
    functional_status: str | None = Field(default=None, alias="functionalStatus")
    aids: str | None = None
    risk_assessment: str | None = Field(default=None, alias="riskAssessment")
    pending_results: str | None = Field(default=None, alias="pendingResults")


class TakeCareDischarge(NativeEvent):
    event_id: str = Field(alias="eventId")
    version: int = 1
    event_type: str = Field(alias="eventType")
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    encounter: Encounter
    discharged_at: AwareDatetime = Field(alias="dischargedAt")
    destination: str
    follow_up: FollowUp | None = Field(default=None, alias="followUp")
    information: InformationAtDischarge = Field(alias="informationAtDischarge")
    medication_list_included: StrictBool = Field(alias="medicationListIncluded")
    responsible_unit: Unit | None = Field(default=None, alias="responsibleUnit")

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
    event: TakeCareDischarge, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    # One Organization per distinct unit: a follow-up on the discharging ward reuses it.
    units: dict[Unit, str] = {event.encounter.unit: "organization"}
    planned: list[tuple[str, dict[str, Any]]] = []
    if event.follow_up is not None:
        performer = units.setdefault(event.follow_up.unit, "follow-up-unit")
        planned.append(("follow-up", _follow_up(event.follow_up, performer, event, ref)))
    if event.responsible_unit is not None:
        manager = units.setdefault(event.responsible_unit, "responsible-unit")
        planned.append(("responsibility", _responsibility(manager, event, ref)))
    observations = [
        (role, _observation(role, display, {"valueString": value}, event, ref))
        for field, role, display in OBSERVATIONS
        if (value := getattr(event.information, field))
    ]
    role, display = MEDICATION_LIST_SENT
    observations.append(
        (
            role,
            _observation(
                role, display, {"valueBoolean": event.medication_list_included}, event, ref
            ),
        )
    )
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
            *((role, organization_resource(unit.info())) for unit, role in units.items()),
            *planned,
            *observations,
        ],
    )


def _encounter(event: TakeCareDischarge, ref: Ref) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "identifier": [
            {"system": TAKECARE_ENCOUNTER_SYSTEM, "value": event.encounter.encounter_id}
        ],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": ref("patient")},
        "period": {
            "start": event.encounter.admitted_at.isoformat(),
            "end": event.discharged_at.isoformat(),
        },
        "hospitalization": {
            "dischargeDisposition": code(
                DISCHARGE_DESTINATION_SYSTEM,
                event.destination,
                DESTINATIONS[event.destination],
            )
        },
        "serviceProvider": {"reference": ref("organization")},
    }


def _follow_up(
    follow_up: FollowUp, performer: str, event: TakeCareDischarge, ref: Ref
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "plan",
        "code": {
            "coding": [
                {"system": SNOMED_SYSTEM, "code": FOLLOW_UP_CODE, "display": "Follow-up encounter"}
            ],
            "text": "Uppföljning efter utskrivning",
        },
        "subject": {"reference": ref("patient")},
        "encounter": {"reference": ref("encounter")},
        "authoredOn": event.occurred_at.isoformat(),
        "requester": {"reference": ref("organization")},
        "performer": [{"reference": ref(performer)}],
    }
    if follow_up.appointment_at is not None:
        request["occurrenceDateTime"] = follow_up.appointment_at.isoformat()
    if follow_up.note is not None:
        request["note"] = [{"text": follow_up.note}]
    return request


def _responsibility(manager: str, event: TakeCareDischarge, ref: Ref) -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [code(OBSERVATION_SYSTEM, *RESPONSIBILITY)],
        "patient": {"reference": ref("patient")},
        "managingOrganization": {"reference": ref(manager)},
        "period": {"start": event.discharged_at.isoformat()},
    }


def _observation(
    role: str, display: str, value: dict[str, Any], event: TakeCareDischarge, ref: Ref
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": code(OBSERVATION_SYSTEM, role, display),
        "subject": {"reference": ref("patient")},
        "encounter": {"reference": ref("encounter")},
        "effectiveDateTime": event.occurred_at.isoformat(),
        **value,
    }


INBOUND = InboundFamily(
    family="discharge-notice",
    route="discharges",
    schema="takecare/discharge-notice.schema.json",
    model=TakeCareDischarge,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
