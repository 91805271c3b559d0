"""SIP update (samordnad individuell plan) between Treserva and the broker, both ways: social
services' changes of the SIP (their activities, responsible parties, status) in
(``INBOUND``), TakeCare's invitation, created, updated and completed SIP out (``OUTBOUND``).
Contract ``contracts/treserva/sip-update.schema.json``; mapping ``contracts/fhir/sip-update.md``;
the FHIR message itself is built and read by :mod:`services.messaging.sip`.

The business key is (treserva, sipId, version): every change Treserva makes raises the version,
so the router can tell an older version arriving late and mark it superseded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, model_validator

from services.adapter_treserva.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Brukare,
    Enhet,
    Samtyckesgrund,
    brukare,
    enhet,
    samtyckesgrund,
)
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import CareUnit, message_id_in
from services.messaging.identifiers import PatientIdentifier
from services.messaging.native import InboundFamily, NativeEvent, NativeModel, OutboundFamily
from services.messaging.sip import (
    STAGE_EVENTS,
    Activity,
    Consent,
    Meeting,
    Participant,
    Sip,
    read_sip,
    sip_bundle,
)

STEG = {  # Treserva steg → the neutral SIP stage
    "kallelse": "invitation",
    "upprattad": "created",
    "uppdaterad": "updated",
    "avslutad": "completed",
}
ROLL = {  # Treserva roll → the neutral SIP role (SIP_ROLE_SYSTEM code)
    "patient": "patient",
    "narstaende": "relative",
    "sjukhus": "hospital",
    "primarvard": "primary-care",
    "hemsjukvard": "home-care",
    "hemtjanst": "home-help",
    "rehabilitering": "rehabilitation",
    "annan": "other",
}
STATUS = {  # Treserva aktivitetsstatus → the neutral activity status
    "planerad": "planned",
    "pagaende": "in-progress",
    "klar": "done",
    "avbruten": "cancelled",
}
_STEG_BACK = {v: k for k, v in STEG.items()}
_ROLL_BACK = {v: k for k, v in ROLL.items()}
_STATUS_BACK = {v: k for k, v in STATUS.items()}


class Samtycke(NativeModel):
    lamnat: bool
    registrerat: AwareDatetime
    notering: str | None = None


class Mote(NativeModel):
    start: AwareDatetime
    slut: AwareDatetime | None = None
    plats: str | None = None

    @model_validator(mode="after")
    def _slutar_efter_start(self) -> Mote:
        if self.slut is not None and self.slut < self.start:
            raise ValueError("mötet slutar före start")
        return self


class Deltagare(NativeModel):
    roll: str
    namn: str | None = None
    enhet: Enhet | None = None
    hsa_id: str | None = Field(default=None, alias="hsaId")
    ansvar_for: str | None = Field(default=None, alias="ansvarFor")


class Aktivitet(NativeModel):
    aktivitet_id: str = Field(alias="aktivitetId")
    beskrivning: str
    ansvarig: str
    enhet: Enhet | None = None
    status: str
    senast: date | None = None


class TreservaSipUpdate(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    sip_id: str = Field(alias="sipId")
    version: int
    steg: str
    tidpunkt: AwareDatetime
    brukare: Brukare
    samtycke: Samtycke
    samtyckesgrund: Samtyckesgrund
    samordnande_enhet: Enhet = Field(alias="samordnandeEnhet")
    mote: Mote | None = None
    mal: tuple[str, ...] = ()
    deltagare: tuple[Deltagare, ...]
    aktiviteter: tuple[Aktivitet, ...]
    notering: str | None = None
    ersatt_av: None = Field(default=None, alias="ersattAv")  # set by the broker only: refused
    # the receiving unit: set by the broker on delivery only (issue 20), refused from Treserva
    mottagande_enhet: None = Field(default=None, alias="mottagandeEnhet")
    # the case id the broker delivered (services.messaging.case), echoed back: this document
    # names no stay, so it joins the stay's case by it
    arende_id: str | None = Field(default=None, alias="arendeId")

    @model_validator(mode="after")
    def _aktivitet_id_unika(self) -> TreservaSipUpdate:
        ids = [a.aktivitet_id for a in self.aktiviteter]
        if len(set(ids)) != len(ids):
            raise ValueError("aktivitetId måste vara unikt inom SIP:en")
        return self

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.sip_id, self.version)

    def event_code(self) -> EventCode:
        return STAGE_EVENTS[STEG[self.steg]]

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def consent_block(self) -> Samtyckesgrund:
        return self.samtyckesgrund

    def sip(self, regional_reserve_oid: str | None = None) -> Sip:
        mote = self.mote
        return Sip(
            sip_id=self.sip_id,
            version=self.version,
            stage=STEG[self.steg],
            occurred_at=self.tidpunkt,
            patient=self.brukare.info(regional_reserve_oid),
            consent=Consent(
                self.samtycke.lamnat, self.samtycke.registrerat, self.samtycke.notering
            ),
            coordinating_unit=self.samordnande_enhet.info(),
            participants=tuple(
                Participant(
                    role=ROLL[d.roll],
                    name=d.namn,
                    unit=_info(d.enhet),
                    hsa_id=d.hsa_id,
                    responsible_for=d.ansvar_for,
                )
                for d in self.deltagare
            ),
            activities=tuple(
                Activity(
                    activity_id=a.aktivitet_id,
                    description=a.beskrivning,
                    responsible=ROLL[a.ansvarig],
                    status=STATUS[a.status],
                    unit=_info(a.enhet),
                    due=a.senast,
                )
                for a in self.aktiviteter
            ),
            goals=self.mal,
            meeting=None if mote is None else Meeting(mote.start, mote.slut, mote.plats),
            note=self.notering,
            basis=self.samtyckesgrund.basis(),
        )


def _info(unit: Enhet | None) -> CareUnit | None:
    return None if unit is None else unit.info()


def to_bundle(
    event: TreservaSipUpdate, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return sip_bundle(
        event.sip(regional_reserve_oid),
        key=event.business_key(),
        source=System.TRESERVA,
        now=now,
        case_id=event.arende_id,
    )


INBOUND = InboundFamily(
    family="sip-update",
    route="sip",
    schema="treserva/sip-update.schema.json",
    model=TreservaSipUpdate,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: a SIP changed in TakeCare, delivered to Treserva -------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    sip = read_sip(doc)
    native: dict[str, Any] = {
        "meddelandeId": message_id_in(doc),
        "sipId": sip.sip_id,
        "version": sip.version,
        "steg": _STEG_BACK[sip.stage],
        "tidpunkt": sip.occurred_at.isoformat(),
        "brukare": brukare(sip.patient),
        "samtycke": _drop_none(
            {
                "lamnat": sip.consent.given,
                "registrerat": sip.consent.recorded_at.isoformat(),
                "notering": sip.consent.note,
            }
        ),
        "samordnandeEnhet": enhet(sip.coordinating_unit),
    }
    if sip.basis is not None:
        native["samtyckesgrund"] = samtyckesgrund(sip.basis)
    if sip.meeting is not None:
        native["mote"] = _drop_none(
            {
                "start": sip.meeting.start.isoformat(),
                "slut": None if sip.meeting.end is None else sip.meeting.end.isoformat(),
                "plats": sip.meeting.location,
            }
        )
    if sip.goals:
        native["mal"] = list(sip.goals)
    native["deltagare"] = [
        _drop_none(
            {
                "roll": _ROLL_BACK[p.role],
                "namn": p.name,
                "enhet": None if p.unit is None else enhet(p.unit),
                "hsaId": p.hsa_id,
                "ansvarFor": p.responsible_for,
            }
        )
        for p in sip.participants
    ]
    native["aktiviteter"] = [
        _drop_none(
            {
                "aktivitetId": a.activity_id,
                "beskrivning": a.description,
                "ansvarig": _ROLL_BACK[a.responsible],
                "enhet": None if a.unit is None else enhet(a.unit),
                "status": _STATUS_BACK[a.status],
                "senast": None if a.due is None else a.due.isoformat(),
            }
        )
        for a in sip.activities
    ]
    if sip.note is not None:
        native["notering"] = sip.note
    return native


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


OUTBOUND = OutboundFamily(
    family="sip-update",
    events=tuple(STAGE_EVENTS.values()),
    path="/api/v1/sip",
    schema="treserva/sip-update.schema.json",
    to_native=to_native,
)
