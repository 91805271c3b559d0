"""The cancellation (makulering) between TakeCare and the broker, both ways: TakeCare cancels a
message it sent (an admission notice, a SIP, a medication list, …: ``INBOUND``), and
Treserva cancels one of its own, delivered to TakeCare (``OUTBOUND``). Contract
``contracts/takecare/message-cancelled.schema.json``; mapping
``contracts/fhir/message-cancelled.md``; the FHIR message is built and read by
:mod:`services.messaging.cancellation`. The business key is (takecare, eventId, 1).

Pushed by TakeCare, ``cancellation.eventId`` and ``cancellation.version`` are TakeCare's own
event id and version of the message it cancels (the business key it was accepted under);
the adapter refuses (422) one it never accepted from TakeCare for this patient. Delivered to
TakeCare, ``cancellation.eventId`` is the id TakeCare got the cancelled message under: the
broker's message id. No ``consentBasis``: a cancellation shares no health data and goes
only where the cancelled message went (:mod:`services.messaging.cancellation`).
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
    Patient,
    StaffAtUnit,
    staff_doc,
)
from services.messaging.cancellation import (
    Cancellation,
    cancellation_bundle,
    read_cancellation,
)
from services.messaging.case import stay_case_id
from services.messaging.envelope import BusinessKey, EventCode, System, message_id_for
from services.messaging.fhir_parts import message_id_in
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel, OutboundFamily

CANCELLED_PATH = "cancellation.eventId"


class CancellationBlock(NativeModel):
    event_id: str = Field(alias="eventId")  # the cancelled message's, as TakeCare knows it
    version: int = 1
    reason: str = Field(repr=False)  # free text: carried, never logged
    cancelled_at: AwareDatetime = Field(alias="cancelledAt")
    cancelled_by: StaffAtUnit = Field(alias="cancelledBy")


class TakeCareCancellation(NativeEvent):
    event_id: str = Field(alias="eventId")
    patient: Patient
    cancellation: CancellationBlock
    # the stay, when the cancelled message was about one; or the case id the broker
    # delivered (services.messaging.case), echoed back
    encounter_id: str | None = Field(default=None, alias="encounterId")
    case_id: str | None = Field(default=None, alias="caseId")

    def cancels(self) -> tuple[str, BusinessKey]:
        c = self.cancellation
        return CANCELLED_PATH, BusinessKey(System.TAKECARE.value, c.event_id, c.version)

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.MESSAGE_CANCELLED

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def as_cancellation(self, regional_reserve_oid: str | None = None) -> Cancellation:
        c = self.cancellation
        return Cancellation(
            cancelled_message_id=message_id_for(self.cancels()[1]),
            cancelled_at=c.cancelled_at,
            reason=c.reason,
            patient=replace(self.patient.info(regional_reserve_oid), address=None),  # never sent on
            cancelled_by=c.cancelled_by.member(),
        )


def to_bundle(
    event: TakeCareCancellation, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return cancellation_bundle(
        event.as_cancellation(regional_reserve_oid),
        key=event.business_key(),
        source=System.TAKECARE,
        now=now,
        case_id=event.case_id or stay_case_id(event.encounter_id),
    )


INBOUND = InboundFamily(
    family="message-cancelled",
    route="cancellations",
    schema="takecare/message-cancelled.schema.json",
    model=TakeCareCancellation,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: Treserva cancelled a message it sent to TakeCare --------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    cancellation = read_cancellation(doc)
    patient = Patient.of(cancellation.patient).model_dump(by_alias=True, exclude_none=True)
    return {
        "eventId": message_id_in(doc),
        "patient": patient,
        "cancellation": {
            "eventId": cancellation.cancelled_message_id,
            "reason": cancellation.reason,
            "cancelledAt": cancellation.cancelled_at.isoformat(),
            "cancelledBy": staff_doc(cancellation.cancelled_by),
        },
    }


OUTBOUND = OutboundFamily(
    family="message-cancelled",
    events=(EventCode.MESSAGE_CANCELLED,),
    path="/api/v1/cancellations",
    schema="takecare/message-cancelled.schema.json",
    to_native=to_native,
)
