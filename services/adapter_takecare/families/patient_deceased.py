"""Patient deceased (patienten avliden) from TakeCare: the patient died during the stay, so the
municipality and primary care stop planning. Contract
``contracts/takecare/patient-deceased.schema.json``; mapping ``contracts/fhir/patient-deceased.md``.

Data minimisation: the message says when, and nothing more. The contract has no field for a
cause of death or any finding and refuses one; no address is sent.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event patient-deceased, focus Encounter, Consent
     ├── Encounter       the stay, status finished, period.end = the time of death
     ├── Patient         identifier, name, deceasedDateTime
     ├── Consent         the basis it is shared on
     └── Organization    the ward (HSA-id)
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
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM

EXPIRED = {  # HL7 discharge disposition: the stay ended with the death, nothing about why
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
            "code": "exp",
            "display": "Expired",
        }
    ]
}


class Death(NativeModel):
    deceased_at: AwareDatetime = Field(alias="deceasedAt")  # when: never why


class TakeCarePatientDeceased(StayEvent):
    EVENT: ClassVar[EventCode] = EventCode.PATIENT_DECEASED

    death: Death

    @field_validator("death")
    @classmethod
    def _not_before_the_admission(cls, death: Death, info: ValidationInfo) -> Death:
        stay = info.data.get("encounter")
        if isinstance(stay, Stay) and death.deceased_at < stay.admitted_at:
            raise ValueError("the time of death is before the admission")
        return death


def to_bundle(
    event: TakeCarePatientDeceased, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    patient = replace(event.patient.info(regional_reserve_oid), address=None)
    deceased = event.death.deceased_at.isoformat()
    return message_bundle(
        key=key,
        event=EventCode.PATIENT_DECEASED,
        source=System.TAKECARE,
        now=now,
        focus=["encounter", "consent"],
        case_id=stay_case_id(event.encounter.encounter_id),
        sender="organization",
        resources=[
            ("encounter", _encounter(event, ref)),
            ("patient", patient_resource(patient) | {"deceasedDateTime": deceased}),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.encounter.unit.info())),
        ],
    )


def _encounter(event: TakeCarePatientDeceased, ref: Ref) -> dict[str, Any]:
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
            "end": event.death.deceased_at.isoformat(),
        },
        "hospitalization": {"dischargeDisposition": EXPIRED},
        "serviceProvider": {"reference": ref("organization")},
    }


INBOUND = InboundFamily(
    family="patient-deceased",
    route="deaths",
    schema="takecare/patient-deceased.schema.json",
    model=TakeCarePatientDeceased,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
