"""Planning information at discharge (planeringsunderlag) as FHIR R4: what the municipality
needs to plan home care once the hospital has judged the patient ready for discharge
(utskrivningsklar). The neutral model and its FHIR building, pure; reading it back is
:mod:`services.messaging.planning_read`. Used by the discharge-readiness family of both
adapters; mapping ``contracts/fhir/discharge-readiness.md``.

- function and ADL status (funktionsstatus): one ``Observation`` per activity, coded in the
  local ``adl-activity`` system, the level as ``valueCodeableConcept`` (``adl-level``);
- assistive devices (hjälpmedel): one ``DeviceRequest`` per device, coded ISO 9999, requester
  the prescriber (förskrivare) as a ``Practitioner`` by personal HSA-id (type PRN);
- next of kin (anhörig) and legal representatives (god man, förvaltare): ``RelatedPerson``
  with v3 RoleCode ``NOK`` plus the kinship, or the local ``legal-representative`` code;
- the fast vårdkontakt (the patient's named permanent care contact): a ``CareTeam`` whose
  participant is a ``Practitioner`` by HSA-id, with a work phone;
- the need for an interpreter: ``Patient.communication`` (language, preferred) and HL7's
  ``patient-interpreterRequired`` extension; the patient's own phone: ``Patient.telecom``.

Skyddad folkbokföring: like the address, the patient's phone and the phones of next of kin
and representatives never leave the hospital side. The builder leaves them out and the
reader ignores any that arrive for a protected patient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from services.messaging import vocabulary as vocab
from services.messaging.fhir_parts import (
    code,
)
from services.messaging.prescription import Prescriber, practitioner_resource

AdlActivity = Literal["eating", "dressing", "toileting", "mobility", "hygiene"]
AdlLevel = Literal["independent", "needs-some-help", "needs-full-help"]
LegalRole = Literal["god-man", "forvaltare"]
ADL_ACTIVITIES: dict[str, AdlActivity] = {a: a for a in get_args(AdlActivity)}
ADL_LEVELS: dict[str, AdlLevel] = {lv: lv for lv in get_args(AdlLevel)}
LEGAL_ROLES: dict[str, LegalRole] = {r: r for r in get_args(LegalRole)}
ADL_ACTIVITY_DISPLAY: dict[AdlActivity, str] = {
    "eating": "Äta och dricka",
    "dressing": "Klä sig",
    "toileting": "Toalettbesök",
    "mobility": "Förflyttning",
    "hygiene": "Personlig hygien",
}
ADL_LEVEL_DISPLAY: dict[AdlLevel, str] = {
    "independent": "Klarar själv",
    "needs-some-help": "Behöver delvis hjälp",
    "needs-full-help": "Behöver hjälp helt",
}
LEGAL_ROLE_DISPLAY: dict[LegalRole, str] = {"god-man": "God man", "forvaltare": "Förvaltare"}
# Kinship of a next of kin: v3 RoleCode (PersonalRelationshipRoleType) → display.
KINSHIP_DISPLAY = {
    "SPS": "spouse",
    "DOMPART": "domestic partner",
    "CHILD": "child",
    "DAU": "daughter",
    "SON": "son",
    "PRN": "parent",
    "SIB": "sibling",
    "GRNDCHILD": "grandchild",
    "FAMMEMB": "family member",
    "FRND": "friend",
    "NBOR": "neighbor",
}
NEXT_OF_KIN = "NOK"
PERMANENT_CARE_CONTACT = "fast-vardkontakt"


@dataclass(frozen=True, slots=True)
class FunctionalStatus:
    """How much help the patient needs with one activity of daily living (ADL)."""

    activity: AdlActivity
    level: AdlLevel
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AssistiveDevice:
    """A hjälpmedel by ISO 9999 code (class, subclass or division: 2, 4 or 6 digits)."""

    iso_code: str
    name: str
    prescriber: Prescriber | None = None


@dataclass(frozen=True, slots=True)
class NextOfKin:
    """An anhörig; ``kinship`` is a v3 RoleCode (:data:`KINSHIP_DISPLAY`)."""

    name: str
    kinship: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class LegalRepresentative:
    """A god man or förvaltare appointed for the patient."""

    role: LegalRole
    name: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class CareContact:
    """The fast vårdkontakt: the patient's named permanent care contact, by personal HSA-id."""

    hsa_id: str
    name: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Interpreter:
    language: str  # BCP 47, e.g. "ar", "fa", "sv"
    needed: bool


@dataclass(frozen=True, slots=True)
class PlanningInformation:
    functional_status: tuple[FunctionalStatus, ...] = ()
    devices: tuple[AssistiveDevice, ...] = ()
    next_of_kin: tuple[NextOfKin, ...] = ()
    legal_representatives: tuple[LegalRepresentative, ...] = ()
    care_contact: CareContact | None = None
    interpreter: Interpreter | None = None
    patient_phone: str | None = None

    def without_contact_details(self) -> PlanningInformation:
        """What may leave the hospital for a protected identity: no phone of the patient's
        own or of the people close to them (they lead to where the patient lives)."""
        return PlanningInformation(
            functional_status=self.functional_status,
            devices=self.devices,
            next_of_kin=tuple(NextOfKin(k.name, k.kinship) for k in self.next_of_kin),
            legal_representatives=tuple(
                LegalRepresentative(r.role, r.name) for r in self.legal_representatives
            ),
            care_contact=self.care_contact,
            interpreter=self.interpreter,
        )

    def is_empty(self) -> bool:
        return self == PlanningInformation()


Ref = Callable[[str], str]


# --- building --------------------------------------------------------------------------------


def _phone(phone: str | None, use: str | None = None) -> dict[str, Any]:
    """``telecom`` with one phone; ``use`` only where the journal says which (work)."""
    if phone is None:
        return {}
    point = {"system": "phone", "value": phone} | ({} if use is None else {"use": use})
    return {"telecom": [point]}


def patient_parts(planning: PlanningInformation, *, protected: bool) -> dict[str, Any]:
    """Elements to merge into the Patient: interpreter, language, and (never for a protected
    identity) the patient's own phone."""
    parts: dict[str, Any] = {}
    if planning.interpreter is not None:
        i = planning.interpreter
        parts["extension"] = [{"url": vocab.INTERPRETER_REQUIRED_URL, "valueBoolean": i.needed}]
        coding = {"system": vocab.BCP47_SYSTEM, "code": i.language}
        parts["communication"] = [{"language": {"coding": [coding]}, "preferred": True}]
    if not protected:
        parts |= _phone(planning.patient_phone)
    return parts


def planning_resources(
    planning: PlanningInformation, ref: Ref, *, protected: bool, effective: str
) -> list[tuple[str, dict[str, Any]]]:
    """(role, resource) for every part of ``planning`` but the Patient's own elements."""
    if protected:
        planning = planning.without_contact_details()
    subject = {"reference": ref("patient")}
    out: list[tuple[str, dict[str, Any]]] = []
    for i, status in enumerate(planning.functional_status):
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": code(
                vocab.ADL_ACTIVITY_SYSTEM, status.activity, ADL_ACTIVITY_DISPLAY[status.activity]
            ),
            "subject": subject,
            "encounter": {"reference": ref("encounter")},
            "effectiveDateTime": effective,
            "valueCodeableConcept": code(
                vocab.ADL_LEVEL_SYSTEM, status.level, ADL_LEVEL_DISPLAY[status.level]
            ),
        }
        if status.note is not None:
            observation["note"] = [{"text": status.note}]
        out.append((f"adl-{i}", observation))
    for i, device in enumerate(planning.devices):
        request: dict[str, Any] = {
            "resourceType": "DeviceRequest",
            "status": "active",
            "intent": "order",
            "codeCodeableConcept": code(vocab.ISO_9999_SYSTEM, device.iso_code, device.name),
            "subject": subject,
            "encounter": {"reference": ref("encounter")},
        }
        if device.prescriber is not None:
            request["requester"] = {"reference": ref(f"device-prescriber-{i}")}
        out.append((f"device-{i}", request))
        if device.prescriber is not None:
            out.append((f"device-prescriber-{i}", practitioner_resource(device.prescriber)))
    for i, kin in enumerate(planning.next_of_kin):
        relationship = [
            code(vocab.ROLE_CODE_SYSTEM, NEXT_OF_KIN, "next of kin"),
            code(vocab.ROLE_CODE_SYSTEM, kin.kinship, KINSHIP_DISPLAY[kin.kinship]),
        ]
        out.append((f"next-of-kin-{i}", _related(subject, relationship, kin.name, kin.phone)))
    for i, rep in enumerate(planning.legal_representatives):
        concept = code(vocab.LEGAL_REPRESENTATIVE_SYSTEM, rep.role, LEGAL_ROLE_DISPLAY[rep.role])
        out.append((f"legal-representative-{i}", _related(subject, [concept], rep.name, rep.phone)))
    contact = planning.care_contact
    if contact is not None:
        role = code(vocab.CARE_TEAM_ROLE_SYSTEM, PERMANENT_CARE_CONTACT, "Fast vårdkontakt")
        team = {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": subject,
            "participant": [{"role": [role], "member": {"reference": ref("care-contact")}}],
        }
        practitioner = practitioner_resource(Prescriber(contact.hsa_id, contact.name))
        out.append(("care-team", team))
        out.append(("care-contact", practitioner | _phone(contact.phone, "work")))
    return out


def _related(
    subject: dict[str, str], relationship: list[dict[str, Any]], name: str, phone: str | None
) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "patient": subject,
        "relationship": relationship,
        "name": [{"text": name}],
    } | _phone(phone)
