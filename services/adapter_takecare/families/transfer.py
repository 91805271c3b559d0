"""Transfer (förflyttning) from TakeCare: the patient moved to another ward or hospital during
the stay. Contract ``contracts/takecare/transfer.schema.json``; mapping
``contracts/fhir/transfer.md``.

The receivers keep planning, with the new unit as the hospital's contact: it is the
Encounter's serviceProvider and the message's sender; the unit the patient left is named in
the Encounter's transfer extension. No address is sent.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event transfer, focus Encounter, Consent; sender the new unit
     ├── Encounter       the stay; serviceProvider the new unit; extension transfer (from, at)
     ├── Patient         personnummer / samordningsnummer / reservnummer, name
     ├── Consent         the basis it is shared on
     ├── Organization    the new unit (HSA-id)
     └── Organization    the unit the patient left (HSA-id)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

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
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM, TRANSFER_URL

STAY_PATH = "encounter.encounterId"


class Stay(NativeModel):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class Transfer(NativeModel):
    to_unit: Unit = Field(alias="toUnit")
    transferred_at: AwareDatetime = Field(alias="transferredAt")


class TakeCareTransfer(NativeEvent):
    event_id: str = Field(alias="eventId")
    version: int = 1
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    encounter: Stay
    transfer: Transfer

    @field_validator("transfer")
    @classmethod
    def _to_another_unit_after_the_admission(
        cls, transfer: Transfer, info: ValidationInfo
    ) -> Transfer:
        stay = info.data.get("encounter")
        if isinstance(stay, Stay):
            if transfer.to_unit.hsa_id == stay.unit.hsa_id:
                raise ValueError("the new unit is the unit the patient is in")
            if transfer.transferred_at < stay.admitted_at:
                raise ValueError("the transfer is before the admission")
        return transfer

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, self.version)

    def event_code(self) -> EventCode:
        return EventCode.TRANSFER

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def stay(self) -> tuple[str, str]:
        return STAY_PATH, self.encounter.encounter_id


def to_bundle(
    event: TakeCareTransfer, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    patient = replace(event.patient.info(regional_reserve_oid), address=None)
    return message_bundle(
        key=key,
        event=EventCode.TRANSFER,
        source=System.TAKECARE,
        now=now,
        focus=["encounter", "consent"],
        case_id=stay_case_id(event.encounter.encounter_id),
        sender="organization",
        resources=[
            ("encounter", _encounter(event, ref)),
            ("patient", patient_resource(patient)),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.transfer.to_unit.info())),
            ("previous-unit", organization_resource(event.encounter.unit.info())),
        ],
    )


def _transfer(event: TakeCareTransfer, ref: Ref) -> dict[str, Any]:
    return {
        "url": TRANSFER_URL,
        "extension": [
            {"url": "from", "valueReference": {"reference": ref("previous-unit")}},
            {"url": "at", "valueDateTime": event.transfer.transferred_at.isoformat()},
        ],
    }


def _encounter(event: TakeCareTransfer, ref: Ref) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "extension": [_transfer(event, ref)],
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
    family="transfer",
    route="transfers",
    schema="takecare/transfer.schema.json",
    model=TakeCareTransfer,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
