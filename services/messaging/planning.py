"""Planning information at discharge (planeringsunderlag) as FHIR R4, both ways: what the
municipality needs to plan home care once the hospital has judged the patient ready for
discharge (utskrivningsklar). Pure. Used by the discharge-readiness family of both adapters;
mapping ``contracts/fhir/discharge-readiness.md``.

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
    TranslationError,
    arr,
    boolean,
    code,
    coded,
    extension,
    hsa_id,
    is_protected,
    known,
    maybe_obj,
    maybe_text,
    resolve,
    resources,
    text,
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


# --- reading ---------------------------------------------------------------------------------


def read_planning(doc: dict[str, Any], patient: dict[str, Any]) -> PlanningInformation:
    """The planning information in a message; ``patient`` is its Patient. Contact details of
    a protected patient are ignored even if a sender put them in."""
    found = PlanningInformation(
        functional_status=tuple(
            _read_status(o)
            for o in resources(doc, "Observation")
            if coded(maybe_obj(o, "code"), vocab.ADL_ACTIVITY_SYSTEM) is not None
        ),
        devices=tuple(_read_device(doc, r) for r in resources(doc, "DeviceRequest")),
        next_of_kin=tuple(_read_kin(r) for r in resources(doc, "RelatedPerson") if _is_kin(r)),
        legal_representatives=tuple(
            _read_representative(r) for r in resources(doc, "RelatedPerson") if not _is_kin(r)
        ),
        care_contact=_read_care_contact(doc),
        interpreter=_read_interpreter(patient),
        patient_phone=_read_phone(patient),
    )
    return found.without_contact_details() if is_protected(patient) else found


def _read_status(observation: dict[str, Any]) -> FunctionalStatus:
    what = "Observation (ADL)"
    activity = coded(maybe_obj(observation, "code"), vocab.ADL_ACTIVITY_SYSTEM)
    level = coded(maybe_obj(observation, "valueCodeableConcept"), vocab.ADL_LEVEL_SYSTEM)
    return FunctionalStatus(
        activity=known(ADL_ACTIVITIES, activity, f"{what}.code"),
        level=known(ADL_LEVELS, level, f"{what}.valueCodeableConcept"),
        note=maybe_text(observation, "note.0.text"),
    )


def _read_device(doc: dict[str, Any], request: dict[str, Any]) -> AssistiveDevice:
    concept = maybe_obj(request, "codeCodeableConcept")
    iso = coded(concept, vocab.ISO_9999_SYSTEM)
    if iso is None:
        raise TranslationError("DeviceRequest.codeCodeableConcept has no ISO 9999 code")
    prescriber = None
    if maybe_obj(request, "requester") is not None:
        practitioner = resolve(doc, request, "requester", "Practitioner")
        hsa = hsa_id(practitioner)
        if hsa is None:
            raise TranslationError("the device's prescriber (Practitioner) has no HSA-id")
        prescriber = Prescriber(hsa, text(practitioner, "name.0.text"))
    name = next(
        (
            text(concept, f"coding.{i}.display")
            for i, c in enumerate(arr(concept, "coding"))
            if c.get("system") == vocab.ISO_9999_SYSTEM
        ),
        None,
    )
    return AssistiveDevice(iso, name or text(concept, "text"), prescriber)


def _is_kin(related: dict[str, Any]) -> bool:
    return any(
        c.get("system") == vocab.ROLE_CODE_SYSTEM and c.get("code") == NEXT_OF_KIN
        for concept in arr(related, "relationship")
        for c in arr(concept, "coding")
    )


def _read_kin(related: dict[str, Any]) -> NextOfKin:
    kinship = next(
        (
            code_
            for concept in arr(related, "relationship")
            if (code_ := coded(concept, vocab.ROLE_CODE_SYSTEM)) not in (None, NEXT_OF_KIN)
        ),
        None,
    )
    return NextOfKin(
        name=text(related, "name.0.text"),
        kinship=known({k: k for k in KINSHIP_DISPLAY}, kinship, "RelatedPerson.relationship"),
        phone=_read_phone(related),
    )


def _read_representative(related: dict[str, Any]) -> LegalRepresentative:
    role = next(
        (
            found
            for concept in arr(related, "relationship")
            if (found := coded(concept, vocab.LEGAL_REPRESENTATIVE_SYSTEM)) is not None
        ),
        None,
    )
    return LegalRepresentative(
        role=known(LEGAL_ROLES, role, "RelatedPerson.relationship"),
        name=text(related, "name.0.text"),
        phone=_read_phone(related),
    )


def _read_care_contact(doc: dict[str, Any]) -> CareContact | None:
    for team in resources(doc, "CareTeam"):
        for i, participant in enumerate(arr(team, "participant")):
            roles = arr(participant, "role")
            if any(coded(r, vocab.CARE_TEAM_ROLE_SYSTEM) == PERMANENT_CARE_CONTACT for r in roles):
                member = resolve(doc, team, f"participant.{i}.member", "Practitioner")
                hsa = hsa_id(member)
                if hsa is None:
                    raise TranslationError("the fast vårdkontakt (Practitioner) has no HSA-id")
                return CareContact(hsa, text(member, "name.0.text"), _read_phone(member))
    return None


def _read_interpreter(patient: dict[str, Any]) -> Interpreter | None:
    found = extension(patient, vocab.INTERPRETER_REQUIRED_URL)
    if found is None:
        return None
    for i, _ in enumerate(arr(patient, "communication")):
        language = coded(maybe_obj(patient, f"communication.{i}.language"), vocab.BCP47_SYSTEM)
        if language is not None:
            return Interpreter(language, boolean(found, "valueBoolean"))
    raise TranslationError("Patient has patient-interpreterRequired but no language")


def _read_phone(resource: dict[str, Any]) -> str | None:
    for i, telecom in enumerate(arr(resource, "telecom")):
        if telecom.get("system") == "phone":
            return text(resource, f"telecom.{i}.value")
    return None
