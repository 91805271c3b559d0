"""The municipality's answer to an admission notice (svar på inskrivningsmeddelande), from
Treserva to the broker (``INBOUND``): the services the brukare has today (hemtjänst,
hemsjukvård, särskilt boende, …) and whom the ward calls, in answer to the notice Treserva
received. Contract ``contracts/treserva/admission-answer.schema.json``; mapping
``contracts/fhir/admission-answer.md``; the FHIR message is built by
:mod:`services.messaging.admission_answer`.

The business key is (treserva, meddelandeId, 1): an answer is not a versioned document. Like
every document it carries ``samtyckesgrund``, the basis it is shared on
(:mod:`services.messaging.consent`); the intake refuses it (422) without one that covers the
family and TakeCare.
"""

from __future__ import annotations

from datetime import date, datetime

from fhir.resources.R4B.bundle import Bundle
from pydantic import Field, model_validator

from services.adapter_treserva.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Brukare,
    Enhet,
    Samtyckesgrund,
)
from services.messaging.admission_answer import (
    AdmissionAnswer,
    ContactPerson,
    MunicipalService,
    answer_bundle,
)
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel


class Insats(NativeModel):
    """One municipal service (insats) the brukare has today."""

    insats: str  # a code of services.messaging.admission_answer.MUNICIPAL_SERVICES
    sedan: date | None = None


class Kontaktperson(NativeModel):
    namn: str
    roll: str
    telefon: str
    hsa_id: str | None = Field(default=None, alias="hsaId")


class TreservaAdmissionAnswer(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    inskrivningsmeddelande_id: str = Field(alias="inskrivningsmeddelandeId")
    vardtillfalle_id: str = Field(alias="vardtillfalleId")
    brukare: Brukare
    enhet: Enhet
    insatser: tuple[Insats, ...]
    kontaktperson: Kontaktperson
    samtyckesgrund: Samtyckesgrund

    @model_validator(mode="after")
    def _insats_en_gang(self) -> TreservaAdmissionAnswer:
        koder = [i.insats for i in self.insatser]
        if len(set(koder)) != len(koder):
            raise ValueError("varje insats får förekomma en gång")
        return self

    def consent_block(self) -> Samtyckesgrund:
        return self.samtyckesgrund

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.meddelande_id, 1)

    def event_code(self) -> EventCode:
        return EventCode.ADMISSION_ANSWER

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def answer(self, regional_reserve_oid: str | None = None) -> AdmissionAnswer:
        k = self.kontaktperson
        return AdmissionAnswer(
            answers_message_id=self.inskrivningsmeddelande_id,
            stay_id=self.vardtillfalle_id,
            patient=self.brukare.info(regional_reserve_oid),
            unit=self.enhet.info(),
            services=tuple(MunicipalService(i.insats, i.sedan) for i in self.insatser),
            contact=ContactPerson(name=k.namn, role=k.roll, phone=k.telefon, hsa_id=k.hsa_id),
            basis=self.samtyckesgrund.basis(),
        )


def to_bundle(
    event: TreservaAdmissionAnswer, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return answer_bundle(
        event.answer(regional_reserve_oid),
        key=event.business_key(),
        source=System.TRESERVA,
        now=now,
    )


INBOUND = InboundFamily(
    family="admission-answer",
    route="svar-inskrivningsmeddelanden",
    schema="treserva/admission-answer.schema.json",
    model=TreservaAdmissionAnswer,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
