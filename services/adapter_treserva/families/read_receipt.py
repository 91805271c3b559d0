"""The read receipt (läskvittens) between Treserva and the broker, both ways: a person in home
care read a message TakeCare sent (``INBOUND``), and a person at the hospital read one Treserva
sent (``OUTBOUND``). Contract ``contracts/treserva/read-receipt.schema.json``; mapping
``contracts/fhir/read-receipt.md``; the FHIR message is built and read by
:mod:`services.messaging.read_receipt`.

Not the kvittens (``receipt``, ``POST /treserva/v1/kvittenser``): that says Treserva holds a
record the broker delivered and settles the delivery; this says who read a message, and when,
and is routed to the journal that sent it. The business key is (treserva, meddelandeId, 1).

Both ways it carries ``samtyckesgrund``: a read receipt names the patient, so it is shared on
a basis like every message of the process (:mod:`services.messaging.read_receipt`). Inbound
it is the basis Treserva (the reader's side) holds, refused (422) without one that covers
``read-receipt`` and TakeCare; outbound it is the basis TakeCare's reader recorded, read back
from the message's Consent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field

from services.adapter_treserva.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Brukare,
    PersonVidEnhet,
    Samtyckesgrund,
    brukare,
    person_vid_enhet,
    samtyckesgrund,
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


class TreservaReadReceipt(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    last_meddelande_id: str = Field(alias="lastMeddelandeId")
    last_tidpunkt: AwareDatetime = Field(alias="lastTidpunkt")
    brukare: Brukare
    lasare: PersonVidEnhet  # who read it (läsare)
    samtyckesgrund: Samtyckesgrund
    # the receiving unit: set by the broker on delivery only (issue 20), refused from Treserva
    mottagande_enhet: None = Field(default=None, alias="mottagandeEnhet")
    # the case id the broker delivered (services.messaging.case), echoed back: this document
    # names no stay, so it joins the stay's case by it
    arende_id: str | None = Field(default=None, alias="arendeId")

    def consent_block(self) -> Samtyckesgrund:
        return self.samtyckesgrund

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.meddelande_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.READ_RECEIPT

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def read_receipt(self, regional_reserve_oid: str | None = None) -> ReadReceipt:
        return ReadReceipt(
            read_message_id=self.last_meddelande_id,
            read_at=self.last_tidpunkt,
            patient=self.brukare.info(regional_reserve_oid),
            reader=self.lasare.member(),
            basis=self.samtyckesgrund.basis(),
        )


def to_bundle(
    event: TreservaReadReceipt, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return read_receipt_bundle(
        event.read_receipt(regional_reserve_oid),
        key=event.business_key(),
        source=System.TRESERVA,
        now=now,
        case_id=event.arende_id,
    )


INBOUND = InboundFamily(
    family="read-receipt",
    route="laskvittenser",
    schema="treserva/read-receipt.schema.json",
    model=TreservaReadReceipt,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: someone at the hospital read a message Treserva sent -----------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    receipt = read_read_receipt(doc)
    return {
        "meddelandeId": message_id_in(doc),
        "lastMeddelandeId": receipt.read_message_id,
        "lastTidpunkt": receipt.read_at.isoformat(),
        "brukare": brukare(receipt.patient),
        "lasare": person_vid_enhet(receipt.reader),
        "samtyckesgrund": samtyckesgrund(receipt.basis),
    }


OUTBOUND = OutboundFamily(
    family="read-receipt",
    events=(EventCode.READ_RECEIPT,),
    path="/api/v1/laskvittenser",
    schema="treserva/read-receipt.schema.json",
    to_native=to_native,
)
