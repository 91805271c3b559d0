"""Ready for discharge (utskrivningsklar) from TakeCare, and its withdrawal (återtag).
Contract ``contracts/takecare/discharge-readiness.schema.json``; mapping
``contracts/fhir/discharge-readiness.md``.

The physician's judgement (``judgedAt``) travels as its own extension and is never replaced by
``occurredAt``. It does not start the municipality's payment clock: that runs from when the
notice was sent to the municipality (:mod:`services.router.statistics.payment_clock`). A withdrawal
carries the judgement it withdraws plus the reason.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event ready-for-discharge[-withdrawn], focus Encounter
     ├── Encounter       inpatient stay (in-progress): admitted at, judged ready at
     │                   (extension), expected discharge (extension), withdrawal reason
     │                   (extension), the judging physician as participant DIS (discharger)
     ├── Patient         personnummer / samordningsnummer / reservnummer, name, address
     ├── Organization    the ward (HSA-id)
     ├── Practitioner    the judging physician (personal HSA-id), when given
     ├── Observation ×n  care needs at discharge, note
     ├── planning information (planeringsunderlag), when given: ADL Observations,
     │   DeviceRequest (+ prescribing Practitioner) per hjälpmedel, RelatedPerson per next
     │   of kin and legal representative, CareTeam + Practitioner for the fast vårdkontakt;
     │   interpreter, language and phone on the Patient (:mod:`services.messaging.planning`)
     └── EpisodeOfCare   the case (services.messaging.case), named last in focus

The planning information rides on the ready-for-discharge notice because that is when the
municipality starts planning home care (Lag 2017:612); a withdrawal carries none.
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
from services.adapter_takecare.planning import Planning
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
from services.messaging.identifiers import HSA_ID_SYSTEM, PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel
from services.messaging.planning import patient_parts, planning_resources
from services.messaging.vocabulary import (
    EXPECTED_DISCHARGE_URL,
    OBSERVATION_SYSTEM,
    READY_FOR_DISCHARGE_URL,
    TAKECARE_ENCOUNTER_SYSTEM,
    WITHDRAWAL_REASON_URL,
)

EVENTS = {
    "ready-for-discharge": EventCode.READY_FOR_DISCHARGE,
    "ready-for-discharge-withdrawn": EventCode.READY_FOR_DISCHARGE_WITHDRAWN,
}

OBSERVATIONS = (
    ("care_needs_at_discharge", "care-needs-at-discharge", "Omvårdnadsbehov vid utskrivning"),
    ("note", "note", "Notering"),
)

PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
JUDGED_BY_TYPE = "DIS"  # discharger: the physician responsible for the discharge


class Encounter(NativeModel):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class Physician(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    name: str


class TakeCareDischargeReadiness(NativeEvent):
    event_id: str = Field(alias="eventId")
    version: int = 1
    event_type: str = Field(alias="eventType")
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    encounter: Encounter
    judged_at: AwareDatetime = Field(alias="judgedAt")
    judged_by: Physician | None = Field(default=None, alias="judgedBy")
    expected_discharge_at: AwareDatetime | None = Field(default=None, alias="expectedDischargeAt")
    withdrawal_reason: str | None = Field(default=None, alias="withdrawalReason")
    care_needs_at_discharge: str | None = Field(default=None, alias="careNeedsAtDischarge")
    note: str | None = None
    planning_information: Planning | None = Field(default=None, alias="planningInformation")

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
    event: TakeCareDischargeReadiness, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    observations = [
        (role, _observation(role, display, value, event, ref))
        for field, role, display in OBSERVATIONS
        if (value := getattr(event, field))
    ]
    physician = (
        [] if event.judged_by is None else [("practitioner", _practitioner(event.judged_by))]
    )
    patient = event.patient.info(regional_reserve_oid)
    planning = None if event.planning_information is None else event.planning_information.info()
    patient_fhir = patient_resource(patient)
    planned: list[tuple[str, dict[str, Any]]] = []
    if planning is not None:
        for name, value in patient_parts(planning, protected=patient.protected).items():
            # lists are added to, never replaced: the municipality of residence is an
            # extension too, and addressing by unit reads it
            patient_fhir[name] = [*patient_fhir.get(name, ()), *value]
        planned = planning_resources(
            planning, ref, protected=patient.protected, effective=event.occurred_at.isoformat()
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
            ("patient", patient_fhir),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.encounter.unit.info())),
            *physician,
            *observations,
            *planned,
        ],
    )


def _encounter(event: TakeCareDischargeReadiness, ref: Ref) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [
        {"url": READY_FOR_DISCHARGE_URL, "valueDateTime": event.judged_at.isoformat()}
    ]
    if event.expected_discharge_at is not None:
        extensions.append(
            {
                "url": EXPECTED_DISCHARGE_URL,
                "valueDateTime": event.expected_discharge_at.isoformat(),
            }
        )
    if event.withdrawal_reason is not None:
        extensions.append({"url": WITHDRAWAL_REASON_URL, "valueString": event.withdrawal_reason})
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "extension": extensions,
        "identifier": [
            {"system": TAKECARE_ENCOUNTER_SYSTEM, "value": event.encounter.encounter_id}
        ],
        "status": "in-progress",  # ready or not, the patient is still on the ward
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": ref("patient")},
        "period": {"start": event.encounter.admitted_at.isoformat()},
        "serviceProvider": {"reference": ref("organization")},
    }
    if event.judged_by is not None:
        encounter["participant"] = [
            {
                "type": [code(PARTICIPATION_TYPE_SYSTEM, JUDGED_BY_TYPE, "discharger")],
                "individual": {"reference": ref("practitioner")},
            }
        ]
    return encounter


def _practitioner(physician: Physician) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "identifier": [{"system": HSA_ID_SYSTEM, "value": physician.hsa_id}],
        "name": [{"text": physician.name}],
    }


def _observation(
    role: str, display: str, value: str, event: TakeCareDischargeReadiness, ref: Ref
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
    family="discharge-readiness",
    route="discharge-readiness",
    schema="takecare/discharge-readiness.schema.json",
    model=TakeCareDischargeReadiness,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
