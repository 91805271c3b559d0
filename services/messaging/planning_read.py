"""Reading the planning information at discharge (planeringsunderlag) back out of a FHIR
message: the receiving side of :mod:`services.messaging.planning`. Pure. A broken message is a
:class:`TranslationError` that names the element, never the value found there.

Skyddad folkbokföring: phones of the patient, next of kin and legal representatives that
arrive for a protected patient are ignored (the hospital side never sends them).
"""

from __future__ import annotations

from typing import Any

from services.messaging import vocabulary as vocab
from services.messaging.fhir_parts import (
    TranslationError,
    arr,
    boolean,
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
from services.messaging.planning import (
    ADL_ACTIVITIES,
    ADL_LEVELS,
    KINSHIP_DISPLAY,
    LEGAL_ROLES,
    NEXT_OF_KIN,
    PERMANENT_CARE_CONTACT,
    AssistiveDevice,
    CareContact,
    FunctionalStatus,
    Interpreter,
    LegalRepresentative,
    NextOfKin,
    PlanningInformation,
)
from services.messaging.prescription import Prescriber

KINSHIPS = {k: k for k in KINSHIP_DISPLAY}


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
        kinship=known(KINSHIPS, kinship, "RelatedPerson.relationship"),
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
