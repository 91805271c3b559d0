"""Makulering (the cancellation) between Treserva and the broker, both ways: Treserva cancels a
message it sent (its answer to an admission notice, kan ta emot, a medication list, …:
``INBOUND``), and TakeCare cancels one of its own, delivered to Treserva (``OUTBOUND``).
Contract ``contracts/treserva/message-cancelled.schema.json``; mapping
``contracts/fhir/message-cancelled.md``; the FHIR message is built and read by
:mod:`services.messaging.cancellation`. The business key is (treserva, meddelandeId, 1).

From Treserva, ``makulering.meddelandeId`` and ``makulering.version`` are Treserva's own id
and version of the message it cancels (the business key it was accepted under); the adapter
refuses (422) one it never accepted from Treserva for this brukare. Delivered to Treserva,
``makulering.meddelandeId`` is the id Treserva got the cancelled message under: the broker's
message id. No ``samtyckesgrund``: a makulering shares no health data and goes only where
the cancelled message went (:mod:`services.messaging.cancellation`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field

from services.adapter_treserva.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Brukare,
    PersonVidEnhet,
    brukare,
    person_vid_enhet,
)
from services.messaging.cancellation import (
    Cancellation,
    cancellation_bundle,
    read_cancellation,
)
from services.messaging.envelope import BusinessKey, EventCode, System, message_id_for
from services.messaging.fhir_parts import message_id_in
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel, OutboundFamily

CANCELLED_PATH = "makulering.meddelandeId"


class Makulering(NativeModel):
    meddelande_id: str = Field(alias="meddelandeId")  # det makulerade, som Treserva känner det
    version: int = 1
    makuleringsorsak: str = Field(repr=False)  # free text: carried, never logged
    makulerad: AwareDatetime
    makulerad_av: PersonVidEnhet = Field(alias="makuleradAv")


class TreservaCancellation(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    brukare: Brukare
    makulering: Makulering
    # the receiving unit: set by the broker on delivery only (issue 20), refused from Treserva
    mottagande_enhet: None = Field(default=None, alias="mottagandeEnhet")
    # the case id the broker delivered (services.messaging.case), echoed back
    arende_id: str | None = Field(default=None, alias="arendeId")

    def cancels(self) -> tuple[str, BusinessKey]:
        m = self.makulering
        return CANCELLED_PATH, BusinessKey(System.TRESERVA.value, m.meddelande_id, m.version)

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.meddelande_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.MESSAGE_CANCELLED

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def as_cancellation(self, regional_reserve_oid: str | None = None) -> Cancellation:
        m = self.makulering
        return Cancellation(
            cancelled_message_id=message_id_for(self.cancels()[1]),
            cancelled_at=m.makulerad,
            reason=m.makuleringsorsak,
            patient=replace(self.brukare.info(regional_reserve_oid), address=None),  # never sent on
            cancelled_by=m.makulerad_av.member(),
        )


def to_bundle(
    event: TreservaCancellation, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return cancellation_bundle(
        event.as_cancellation(regional_reserve_oid),
        key=event.business_key(),
        source=System.TRESERVA,
        now=now,
        case_id=event.arende_id,
    )


INBOUND = InboundFamily(
    family="message-cancelled",
    route="makuleringar",
    schema="treserva/message-cancelled.schema.json",
    model=TreservaCancellation,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: TakeCare cancelled a message it sent to Treserva --------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    cancellation = read_cancellation(doc)
    return {
        "meddelandeId": message_id_in(doc),
        "brukare": brukare(cancellation.patient),
        "makulering": {
            "meddelandeId": cancellation.cancelled_message_id,
            "makuleringsorsak": cancellation.reason,
            "makulerad": cancellation.cancelled_at.isoformat(),
            "makuleradAv": person_vid_enhet(cancellation.cancelled_by),
        },
    }


OUTBOUND = OutboundFamily(
    family="message-cancelled",
    events=(EventCode.MESSAGE_CANCELLED,),
    path="/api/v1/makuleringar",
    schema="treserva/message-cancelled.schema.json",
    to_native=to_native,
)
