"""SIP update (samordnad individuell plan) between TakeCare's SIP module and the broker, both
ways: TakeCare's invitation, created, updated and completed SIP in (``INBOUND``), Treserva's
changes of the SIP out (``OUTBOUND``). Contract ``contracts/takecare/sip-update.schema.json``;
mapping ``contracts/fhir/sip-update.md``; the FHIR message itself is built and read by
:mod:`services.messaging.sip`.

The business key is (takecare, sipId, version): every change TakeCare makes raises the
version, so the router can tell an older version arriving late and mark it superseded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, model_validator

from services.adapter_takecare.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    ConsentBasisBlock,
    Patient,
    Unit,
    consent_basis_doc,
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


class SipConsent(NativeModel):
    given: bool
    recorded_at: AwareDatetime = Field(alias="recordedAt")
    note: str | None = None


class SipMeeting(NativeModel):
    start: AwareDatetime
    end: AwareDatetime | None = None
    location: str | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> SipMeeting:
        if self.end is not None and self.end < self.start:
            raise ValueError("the meeting ends before it starts")
        return self


class SipParticipant(NativeModel):
    role: str
    name: str | None = None
    unit: Unit | None = None
    hsa_id: str | None = Field(default=None, alias="hsaId")
    responsible_for: str | None = Field(default=None, alias="responsibleFor")


class SipActivity(NativeModel):
    activity_id: str = Field(alias="activityId")
    description: str
    responsible: str
    unit: Unit | None = None
    status: str
    due: date | None = None


class TakeCareSipUpdate(NativeEvent):
    event_id: str = Field(alias="eventId")
    sip_id: str = Field(alias="sipId")
    version: int
    stage: str
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent: SipConsent
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    coordinating_unit: Unit = Field(alias="coordinatingUnit")
    meeting: SipMeeting | None = None
    goals: tuple[str, ...] = ()
    participants: tuple[SipParticipant, ...]
    activities: tuple[SipActivity, ...]
    note: str | None = None
    superseded_by: None = Field(default=None, alias="supersededBy")  # broker only: refused
    # the case id the broker delivered (services.messaging.case), echoed back: this document
    # names no stay, so it joins the stay's case by it
    case_id: str | None = Field(default=None, alias="caseId")

    @model_validator(mode="after")
    def _activity_ids_unique(self) -> TakeCareSipUpdate:
        ids = [a.activity_id for a in self.activities]
        if len(set(ids)) != len(ids):
            raise ValueError("activityId must be unique within the SIP")
        return self

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.sip_id, self.version)

    def event_code(self) -> EventCode:
        return STAGE_EVENTS[self.stage]

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def sip(self, regional_reserve_oid: str | None = None) -> Sip:
        meeting = self.meeting
        return Sip(
            sip_id=self.sip_id,
            version=self.version,
            stage=self.stage,
            occurred_at=self.occurred_at,
            patient=self.patient.info(regional_reserve_oid),
            consent=Consent(self.consent.given, self.consent.recorded_at, self.consent.note),
            coordinating_unit=self.coordinating_unit.info(),
            participants=tuple(
                Participant(
                    role=p.role,
                    name=p.name,
                    unit=_info(p.unit),
                    hsa_id=p.hsa_id,
                    responsible_for=p.responsible_for,
                )
                for p in self.participants
            ),
            activities=tuple(
                Activity(
                    activity_id=a.activity_id,
                    description=a.description,
                    responsible=a.responsible,
                    status=a.status,
                    unit=_info(a.unit),
                    due=a.due,
                )
                for a in self.activities
            ),
            goals=self.goals,
            meeting=None
            if meeting is None
            else Meeting(start=meeting.start, end=meeting.end, location=meeting.location),
            note=self.note,
            basis=self.consent_basis.basis(),
        )


def _info(unit: Unit | None) -> CareUnit | None:
    return None if unit is None else unit.info()


def to_bundle(
    event: TakeCareSipUpdate, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    return sip_bundle(
        event.sip(regional_reserve_oid),
        key=event.business_key(),
        source=System.TAKECARE,
        now=now,
        case_id=event.case_id,
    )


INBOUND = InboundFamily(
    family="sip-update",
    route="sip-updates",
    schema="takecare/sip-update.schema.json",
    model=TakeCareSipUpdate,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- outbound: a SIP changed in Treserva, delivered to TakeCare -------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    sip = read_sip(doc)
    native: dict[str, Any] = {
        "eventId": message_id_in(doc),
        "sipId": sip.sip_id,
        "version": sip.version,
        "stage": sip.stage,
        "occurredAt": sip.occurred_at.isoformat(),
        "patient": Patient.of(sip.patient).model_dump(by_alias=True, exclude_none=True),
        "consent": _drop_none(
            {
                "given": sip.consent.given,
                "recordedAt": sip.consent.recorded_at.isoformat(),
                "note": sip.consent.note,
            }
        ),
        "coordinatingUnit": _unit(sip.coordinating_unit),
    }
    if sip.basis is not None:
        native["consentBasis"] = consent_basis_doc(sip.basis)
    if sip.meeting is not None:
        native["meeting"] = _drop_none(
            {
                "start": sip.meeting.start.isoformat(),
                "end": None if sip.meeting.end is None else sip.meeting.end.isoformat(),
                "location": sip.meeting.location,
            }
        )
    if sip.goals:
        native["goals"] = list(sip.goals)
    native["participants"] = [
        _drop_none(
            {
                "role": p.role,
                "name": p.name,
                "unit": None if p.unit is None else _unit(p.unit),
                "hsaId": p.hsa_id,
                "responsibleFor": p.responsible_for,
            }
        )
        for p in sip.participants
    ]
    native["activities"] = [
        _drop_none(
            {
                "activityId": a.activity_id,
                "description": a.description,
                "responsible": a.responsible,
                "unit": None if a.unit is None else _unit(a.unit),
                "status": a.status,
                "due": None if a.due is None else a.due.isoformat(),
            }
        )
        for a in sip.activities
    ]
    if sip.note is not None:
        native["note"] = sip.note
    return native


def _unit(unit: CareUnit) -> dict[str, str]:
    return {"hsaId": unit.hsa_id, "name": unit.name}


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


OUTBOUND = OutboundFamily(
    family="sip-update",
    events=tuple(STAGE_EVENTS.values()),
    path="/api/v1/sip-updates",
    schema="takecare/sip-update.schema.json",
    to_native=to_native,
)
