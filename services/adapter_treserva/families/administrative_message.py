"""The administrative message (administrativt meddelande) between Treserva and the broker, both
ways: someone at the municipal unit writes to the hospital unit about a stay (``INBOUND``), and
someone at the hospital writes to the municipal unit (``OUTBOUND``). Contract
``contracts/treserva/administrative-message.schema.json``; mapping
``contracts/fhir/administrative-message.md``; the FHIR message is built and read by
:mod:`services.messaging.administrative_message`. The business key is (treserva, meddelandeId,
1).

``amne`` and ``text`` are free text: patient data, carried and never logged. Both ways it
carries ``samtyckesgrund``: inbound the basis Treserva holds (it must cover
``administrative-message`` and the hospital, else 422); outbound the basis the hospital's
writer recorded, read back from the message's Consent. ``mottagandeEnhet`` is set by the
broker on delivery and refused from Treserva.
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
from services.messaging.administrative_message import (
    AdministrativeMessage,
    administrative_message_bundle,
    read_administrative_message,
)
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import message_id_in
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, OutboundFamily


class TreservaAdministrativeMessage(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    skickat: AwareDatetime
    brukare: Brukare
    vardtillfalle_id: str = Field(alias="vardtillfalleId")
    amne: str = Field(repr=False)  # free text: patient data
    text: str = Field(repr=False)  # free text: patient data
    avsandare: PersonVidEnhet  # who wrote it (avsändare)
    samtyckesgrund: Samtyckesgrund
    # the receiving unit: set by the broker on delivery only (issue 20), refused from Treserva
    mottagande_enhet: None = Field(default=None, alias="mottagandeEnhet")

    def consent_block(self) -> Samtyckesgrund:
        return self.samtyckesgrund

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.meddelande_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.ADMINISTRATIVE_MESSAGE

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def administrative_message(
        self, regional_reserve_oid: str | None = None
    ) -> AdministrativeMessage:
        return AdministrativeMessage(
            stay_id=self.vardtillfalle_id,
            sent_at=self.skickat,
            subject=self.amne,
            text=self.text,
            patient=self.brukare.info(regional_reserve_oid),
            writer=self.avsandare.member(),
            basis=self.samtyckesgrund.basis(),
        )


def to_bundle(
    event: TreservaAdministrativeMessage, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return administrative_message_bundle(
        event.administrative_message(regional_reserve_oid),
        key=event.business_key(),
        source=System.TRESERVA,
        now=now,
    )


INBOUND = InboundFamily(
    family="administrative-message",
    route="administrativa-meddelanden",
    schema="treserva/administrative-message.schema.json",
    model=TreservaAdministrativeMessage,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: someone at the hospital wrote to the municipal unit ----------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    message = read_administrative_message(doc)
    return {
        "meddelandeId": message_id_in(doc),
        "skickat": message.sent_at.isoformat(),
        "brukare": brukare(message.patient),
        "vardtillfalleId": message.stay_id,
        "amne": message.subject,
        "text": message.text,
        "avsandare": person_vid_enhet(message.writer),
        "samtyckesgrund": samtyckesgrund(message.basis),
    }


OUTBOUND = OutboundFamily(
    family="administrative-message",
    events=(EventCode.ADMINISTRATIVE_MESSAGE,),
    path="/api/v1/administrativa-meddelanden",
    schema="treserva/administrative-message.schema.json",
    to_native=to_native,
)
