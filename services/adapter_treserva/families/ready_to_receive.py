"""The municipality's message that it can receive the patient (kan ta emot), from Treserva to
the broker (``INBOUND``): from which day home care and home help are ready to take the patient
home, for the stay the hospital notified. Contract
``contracts/treserva/ready-to-receive.schema.json``; mapping
``contracts/fhir/ready-to-receive.md``; the FHIR message is built by
:mod:`services.messaging.ready_to_receive`. The business key is (treserva, meddelandeId, 1).
Like every document it carries ``samtyckesgrund`` (:mod:`services.messaging.consent`); the
intake refuses it (422) without one that covers the family and TakeCare.
"""

from __future__ import annotations

from datetime import date, datetime

from fhir.resources.R4B.bundle import Bundle
from pydantic import Field

from services.adapter_treserva.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Brukare,
    Enhet,
    Samtyckesgrund,
)
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent
from services.messaging.ready_to_receive import ReadyToReceive, ready_to_receive_bundle


class TreservaReadyToReceive(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    vardtillfalle_id: str = Field(alias="vardtillfalleId")
    kan_ta_emot_fran: date = Field(alias="kanTaEmotFran")
    svar_pa_meddelande_id: str | None = Field(default=None, alias="svarPaMeddelandeId")
    brukare: Brukare
    enhet: Enhet
    samtyckesgrund: Samtyckesgrund

    def consent_block(self) -> Samtyckesgrund:
        return self.samtyckesgrund

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.meddelande_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.READY_TO_RECEIVE

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def ready_to_receive(self, regional_reserve_oid: str | None = None) -> ReadyToReceive:
        return ReadyToReceive(
            stay_id=self.vardtillfalle_id,
            from_date=self.kan_ta_emot_fran,
            patient=self.brukare.info(regional_reserve_oid),
            unit=self.enhet.info(),
            basis=self.samtyckesgrund.basis(),
            answers_message_id=self.svar_pa_meddelande_id,
        )


def to_bundle(
    event: TreservaReadyToReceive, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return ready_to_receive_bundle(
        event.ready_to_receive(regional_reserve_oid),
        key=event.business_key(),
        source=System.TRESERVA,
        now=now,
    )


INBOUND = InboundFamily(
    family="ready-to-receive",
    route="kan-ta-emot",
    schema="treserva/ready-to-receive.schema.json",
    model=TreservaReadyToReceive,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
