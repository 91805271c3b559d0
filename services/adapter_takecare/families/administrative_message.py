"""The administrative message (administrativt meddelande) between TakeCare and the broker, both
ways: someone at the hospital unit writes to the municipal unit about a stay (``INBOUND``), and
someone in the municipality writes to the hospital unit (``OUTBOUND``). Contract
``contracts/takecare/administrative-message.schema.json``; mapping
``contracts/fhir/administrative-message.md``; the FHIR message is built and read by
:mod:`services.messaging.administrative_message`. The business key is (takecare, eventId, 1).

The subject and text are free text: patient data, carried and never logged. Both ways it
carries ``consentBasis``: inbound the basis TakeCare holds (it must cover
``administrative-message`` and the municipality, else 422); outbound the basis Treserva's
writer recorded, read back from the message's Consent.
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
    StaffAtUnit,
    consent_basis_doc,
    staff_doc,
)
from services.messaging.administrative_message import (
    AdministrativeMessage,
    administrative_message_bundle,
    read_administrative_message,
)
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import message_id_in
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, OutboundFamily

STAY_PATH = "encounterId"


class TakeCareAdministrativeMessage(NativeEvent):
    event_id: str = Field(alias="eventId")
    sent_at: AwareDatetime = Field(alias="sentAt")
    patient: Patient
    encounter_id: str = Field(alias="encounterId")
    subject: str = Field(repr=False)  # free text: patient data
    text: str = Field(repr=False)  # free text: patient data
    sender: StaffAtUnit
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def stay(self) -> tuple[str, str]:
        return STAY_PATH, self.encounter_id

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.ADMINISTRATIVE_MESSAGE

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def administrative_message(
        self, regional_reserve_oid: str | None = None
    ) -> AdministrativeMessage:
        return AdministrativeMessage(
            stay_id=self.encounter_id,
            sent_at=self.sent_at,
            subject=self.subject,
            text=self.text,
            patient=self.patient.info(regional_reserve_oid),
            writer=self.sender.member(),
            basis=self.consent_basis.basis(),
        )


def to_bundle(
    event: TakeCareAdministrativeMessage, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return administrative_message_bundle(
        event.administrative_message(regional_reserve_oid),
        key=event.business_key(),
        source=System.TAKECARE,
        now=now,
    )


INBOUND = InboundFamily(
    family="administrative-message",
    route="administrative-messages",
    schema="takecare/administrative-message.schema.json",
    model=TakeCareAdministrativeMessage,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: someone in the municipality wrote to the hospital unit -------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    message = read_administrative_message(doc)
    return {
        "eventId": message_id_in(doc),
        "sentAt": message.sent_at.isoformat(),
        "patient": Patient.of(message.patient).model_dump(by_alias=True, exclude_none=True),
        "encounterId": message.stay_id,
        "subject": message.subject,
        "text": message.text,
        "sender": staff_doc(message.writer),
        "consentBasis": consent_basis_doc(message.basis),
    }


OUTBOUND = OutboundFamily(
    family="administrative-message",
    events=(EventCode.ADMINISTRATIVE_MESSAGE,),
    path="/api/v1/administrative-messages",
    schema="takecare/administrative-message.schema.json",
    to_native=to_native,
)
