"""The read receipt (läskvittens) between TakeCare and the broker, both ways: a person at the
hospital read a message Treserva sent (``INBOUND``), and a person in home care read one
TakeCare sent (``OUTBOUND``). Contract ``contracts/takecare/read-receipt.schema.json``; mapping
``contracts/fhir/read-receipt.md``; the FHIR message is built and read by
:mod:`services.messaging.read_receipt`.

Not the receipt (kvittens, ``POST /takecare/v1/receipts``): that says TakeCare holds a record
the broker delivered and settles the delivery; this says who read a message, and when, and is
routed to the journal that sent it. The business key is (takecare, eventId, 1).

Both ways it carries ``consentBasis``: a read receipt names the patient, so it is shared on a
basis like every message of the process (:mod:`services.messaging.read_receipt`). Inbound it
is the basis TakeCare (the reader's side) holds, refused (422) without one that covers
``read-receipt`` and the municipality; outbound it is the basis Treserva's reader recorded,
read back from the message's Consent.
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
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import message_id_in
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, OutboundFamily
from services.messaging.read_receipt import (
    ReadReceipt,
    read_read_receipt,
    read_receipt_bundle,
)


class TakeCareReadReceipt(NativeEvent):
    event_id: str = Field(alias="eventId")
    read_message_id: str = Field(alias="readMessageId")
    read_at: AwareDatetime = Field(alias="readAt")
    patient: Patient
    reader: StaffAtUnit
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    # the case id the broker delivered (services.messaging.case), echoed back: this document
    # names no stay, so it joins the stay's case by it
    case_id: str | None = Field(default=None, alias="caseId")

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.event_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.READ_RECEIPT

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def read_receipt(self, regional_reserve_oid: str | None = None) -> ReadReceipt:
        return ReadReceipt(
            read_message_id=self.read_message_id,
            read_at=self.read_at,
            patient=self.patient.info(regional_reserve_oid),
            reader=self.reader.member(),
            basis=self.consent_basis.basis(),
        )


def to_bundle(
    event: TakeCareReadReceipt, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return read_receipt_bundle(
        event.read_receipt(regional_reserve_oid),
        key=event.business_key(),
        source=System.TAKECARE,
        now=now,
        case_id=event.case_id,
    )


INBOUND = InboundFamily(
    family="read-receipt",
    route="read-receipts",
    schema="takecare/read-receipt.schema.json",
    model=TakeCareReadReceipt,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: someone in home care read a message TakeCare sent --------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    receipt = read_read_receipt(doc)
    return {
        "eventId": message_id_in(doc),
        "readMessageId": receipt.read_message_id,
        "readAt": receipt.read_at.isoformat(),
        "patient": Patient.of(receipt.patient).model_dump(by_alias=True, exclude_none=True),
        "reader": staff_doc(receipt.reader),
        "consentBasis": consent_basis_doc(receipt.basis),
    }


OUTBOUND = OutboundFamily(
    family="read-receipt",
    events=(EventCode.READ_RECEIPT,),
    path="/api/v1/read-receipts",
    schema="takecare/read-receipt.schema.json",
    to_native=to_native,
)
