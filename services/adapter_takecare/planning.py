"""TakeCare's planning information at discharge (``planningInformation`` in the
ready-for-discharge event): the native models and how they become the broker's
:class:`PlanningInformation`. Contract ``contracts/takecare/discharge-readiness.schema.json``
(``$defs``); mapping ``contracts/fhir/discharge-readiness.md``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.messaging.native import NativeModel
from services.messaging.planning import (
    AdlActivity,
    AdlLevel,
    AssistiveDevice,
    CareContact,
    FunctionalStatus,
    Interpreter,
    LegalRepresentative,
    LegalRole,
    NextOfKin,
    PlanningInformation,
)
from services.messaging.prescription import Prescriber

Kinship = Literal[
    "spouse",
    "domestic-partner",
    "child",
    "daughter",
    "son",
    "parent",
    "sibling",
    "grandchild",
    "other-relative",
    "friend",
    "neighbour",
]
# TakeCare's kinship → v3 RoleCode
KINSHIP_ROLE_CODE: dict[Kinship, str] = {
    "spouse": "SPS",
    "domestic-partner": "DOMPART",
    "child": "CHILD",
    "daughter": "DAU",
    "son": "SON",
    "parent": "PRN",
    "sibling": "SIB",
    "grandchild": "GRNDCHILD",
    "other-relative": "FAMMEMB",
    "friend": "FRND",
    "neighbour": "NBOR",
}


class Clinician(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    name: str


class AdlStatus(NativeModel):
    activity: AdlActivity
    level: AdlLevel
    note: str | None = None


class Device(NativeModel):
    iso_code: str = Field(alias="isoCode")
    name: str
    prescribed_by: Clinician | None = Field(default=None, alias="prescribedBy")


class Relative(NativeModel):
    name: str
    relationship: Kinship
    phone: str | None = None


class Representative(NativeModel):
    role: LegalRole
    name: str
    phone: str | None = None


class PermanentCareContact(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    name: str
    phone: str | None = None


class InterpreterNeed(NativeModel):
    language: str
    needed: bool


class Planning(NativeModel):
    functional_status: tuple[AdlStatus, ...] = Field(default=(), alias="functionalStatus")
    assistive_devices: tuple[Device, ...] = Field(default=(), alias="assistiveDevices")
    next_of_kin: tuple[Relative, ...] = Field(default=(), alias="nextOfKin")
    legal_representatives: tuple[Representative, ...] = Field(
        default=(), alias="legalRepresentatives"
    )
    permanent_care_contact: PermanentCareContact | None = Field(
        default=None, alias="permanentCareContact"
    )
    interpreter: InterpreterNeed | None = None
    patient_phone: str | None = Field(default=None, alias="patientPhone")

    def info(self) -> PlanningInformation:
        contact = self.permanent_care_contact
        return PlanningInformation(
            functional_status=tuple(
                FunctionalStatus(s.activity, s.level, s.note) for s in self.functional_status
            ),
            devices=tuple(
                AssistiveDevice(
                    d.iso_code,
                    d.name,
                    None
                    if d.prescribed_by is None
                    else Prescriber(d.prescribed_by.hsa_id, d.prescribed_by.name),
                )
                for d in self.assistive_devices
            ),
            next_of_kin=tuple(
                NextOfKin(k.name, KINSHIP_ROLE_CODE[k.relationship], k.phone)
                for k in self.next_of_kin
            ),
            legal_representatives=tuple(
                LegalRepresentative(r.role, r.name, r.phone) for r in self.legal_representatives
            ),
            care_contact=None
            if contact is None
            else CareContact(contact.hsa_id, contact.name, contact.phone),
            interpreter=None
            if self.interpreter is None
            else Interpreter(self.interpreter.language, self.interpreter.needed),
            patient_phone=self.patient_phone,
        )
