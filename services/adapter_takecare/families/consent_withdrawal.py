"""Consent withdrawal (återkallat samtycke) from TakeCare: the patient withdrew the consent
that covered a stay. Contract ``contracts/takecare/consent-withdrawal.schema.json``; mapping
``contracts/fhir/consent-withdrawal.md``.

The receivers of the stay are told by a message of its own; after it the adapter refuses
every later document of the stay (``services.messaging.withdrawals``). It carries as little
as it can: the stay, the patient's identifier and name (never an address), and the Consent.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event consent-withdrawn, focus Encounter, Consent
     ├── Encounter       the stay the withdrawal is for
     ├── Patient         personnummer / samordningsnummer / reservnummer, name
     ├── Consent         status inactive, provision.period.end = when it was withdrawn
     ├── Organization    the ward (HSA-id)
     └── EpisodeOfCare   the case (services.messaging.case), named last in focus
"""

from __future__ import annotations

from dataclasses import replace
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
    message_bundle,
    organization_resource,
    patient_resource,
    refs,
)
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM

STAY_PATH = "encounter.encounterId"


class Stay(NativeModel):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class TakeCareConsentWithdrawal(NativeEvent):
    event_id: str = Field(alias="eventId")
    version: int = 1
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    encounter: Stay

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, self.version)

    def event_code(self) -> EventCode:
        return EventCode.CONSENT_WITHDRAWN

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def stay(self) -> tuple[str, str]:
        return STAY_PATH, self.encounter.encounter_id


def to_bundle(
    event: TakeCareConsentWithdrawal, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    patient = replace(event.patient.info(regional_reserve_oid), address=None)
    return message_bundle(
        key=key,
        case_id=stay_case_id(event.encounter.encounter_id),
        event=EventCode.CONSENT_WITHDRAWN,
        source=System.TAKECARE,
        now=now,
        focus=["encounter", "consent"],
        sender="organization",
        resources=[
            ("encounter", _encounter(event, ref)),
            ("patient", patient_resource(patient)),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.encounter.unit.info())),
        ],
    )


def _encounter(event: TakeCareConsentWithdrawal, ref: Ref) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
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
    family="consent-withdrawal",
    route="consent-withdrawals",
    schema="takecare/consent-withdrawal.schema.json",
    model=TakeCareConsentWithdrawal,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
