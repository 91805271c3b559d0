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
from typing import Any, ClassVar

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from services.adapter_takecare.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Unit,
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
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM, TRANSFER_URL


class Transfer(NativeModel):
    to_unit: Unit = Field(alias="toUnit")
    transferred_at: AwareDatetime = Field(alias="transferredAt")


class TakeCareTransfer(StayEvent):
    EVENT: ClassVar[EventCode] = EventCode.TRANSFER

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
