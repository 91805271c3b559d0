"""A TakeCare notice about one stay (vårdtillfälle) and nothing more: the consent withdrawal
(återkallat samtycke), the process interrupted (avbrott), the transfer (förflyttning) and the
death (avliden). Each is the event id and version, when it occurred, the patient, the basis
it is shared on and the stay (``encounter``: its id, admission time and ward), plus a block
of its own, if any. The business key, the event code, the patient, the basis and the stay
the intake reads of it are the same for all of them and are here; a family module adds its
block and names its event (``EVENT``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from services.adapter_takecare.native import ConsentBasisBlock, Patient, Unit
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import NativeEvent, NativeModel

STAY_PATH = "encounter.encounterId"


class Stay(NativeModel):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class StayEvent(NativeEvent):
    EVENT: ClassVar[EventCode]

    event_id: str = Field(alias="eventId")
    version: int = 1
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    encounter: Stay

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, self.version)

    def event_code(self) -> EventCode:
        return self.EVENT

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def stay(self) -> tuple[str, str]:
        return STAY_PATH, self.encounter.encounter_id
