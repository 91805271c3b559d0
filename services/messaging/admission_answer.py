"""The municipality's answer to an admission notice (svar på inskrivningsmeddelande) as a FHIR
R4 message, built from and read into the neutral :class:`AdmissionAnswer` that both adapters
translate their native documents to (pure: no I/O, no clock). Mapping:
``contracts/fhir/admission-answer.md``.

::

    Bundle (message)
     ├── MessageHeader     event admission-answer, focus Encounter and the contact
     │                     (PractitionerRole), sender the municipal unit; extension
     │                     answers-message: the admission notice's message id
     ├── Encounter         the hospital stay answered (TakeCare's encounter id)
     ├── Patient
     ├── Organization      the answering municipal unit (HSA-id)
     ├── EpisodeOfCare ×n  each current municipal service (local CodeSystem municipal-service)
     ├── Practitioner      the contact person: name, HSA-id when known
     ├── PractitionerRole  the contact's role and work phone at the unit
     ├── Consent           the basis it is shared on (services.messaging.consent), named
     │                     in MessageHeader.focus after the Encounter and the contact
     └── EpisodeOfCare     the case (services.messaging.case), named last in focus

The answer does not use ``MessageHeader.response``: in this broker that marks a technical
result (delivery outcome, receipt) that settles a delivery on the results topic, while an
answer is a business message with a delivery and a receipt of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.case import case_episodes, stay_case_id
from services.messaging.consent import ConsentBasis, consent_of, read_consent
from services.messaging.envelope import (
    BusinessKey,
    EventCode,
    FhirMessage,
    System,
    validated_message,
)
from services.messaging.fhir_parts import (
    CareUnit,
    PatientInfo,
    TranslationError,
    arr,
    code,
    coded,
    extension,
    hsa_id,
    maybe_day,
    maybe_obj,
    message_bundle,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    refs,
    resolve,
    resources,
    text,
)
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.vocabulary import (
    ANSWERS_MESSAGE_URL,
    MUNICIPAL_SERVICE_SYSTEM,
    TAKECARE_ENCOUNTER_SYSTEM,
    URI_SYSTEM,
)

# The closed code list of municipal services (insatser) an answer names; the same codes in
# both native contracts.
MUNICIPAL_SERVICES = {
    "hemtjanst": "Hemtjänst",
    "hemsjukvard": "Hemsjukvård",
    "sarskilt-boende": "Särskilt boende",
    "korttidsboende": "Korttidsboende",
    "dagverksamhet": "Dagverksamhet",
    "trygghetslarm": "Trygghetslarm",
}


@dataclass(frozen=True, slots=True)
class MunicipalService:
    code: str  # a key of MUNICIPAL_SERVICES
    since: date | None = None


@dataclass(frozen=True, slots=True)
class ContactPerson:
    name: str
    role: str  # free text: biståndshandläggare, sjuksköterska, …
    phone: str
    hsa_id: str | None = None


@dataclass(frozen=True, slots=True)
class AdmissionAnswer:
    answers_message_id: str  # the broker's message id of the admission notice (a UUID)
    stay_id: str  # TakeCare's encounter id of the stay
    patient: PatientInfo
    unit: CareUnit  # the answering municipal unit
    services: tuple[MunicipalService, ...]
    contact: ContactPerson
    basis: ConsentBasis  # the consent or legal basis it is shared on


def answer_bundle(
    answer: AdmissionAnswer, *, key: BusinessKey, source: System, now: datetime
) -> Bundle:
    ref = refs(key)
    episodes = [
        (
            f"service-{i}",
            _episode(service, answer, ref("patient"), ref("organization")),
        )
        for i, service in enumerate(answer.services)
    ]
    contact = answer.contact
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "name": [{"text": contact.name}],
    }
    if contact.hsa_id is not None:
        practitioner["identifier"] = [{"system": HSA_ID_SYSTEM, "value": contact.hsa_id}]
    bundle = message_bundle(
        key=key,
        case_id=stay_case_id(answer.stay_id),
        event=EventCode.ADMISSION_ANSWER,
        source=source,
        now=now,
        focus=["encounter", "contact", "consent"],
        sender="organization",
        resources=[
            ("encounter", stay_encounter(answer.stay_id, ref("patient"))),
            ("patient", patient_resource(answer.patient)),
            ("organization", organization_resource(answer.unit)),
            *episodes,
            ("practitioner", practitioner),
            (
                "contact",
                {
                    "resourceType": "PractitionerRole",
                    "active": True,
                    "practitioner": {"reference": ref("practitioner")},
                    "organization": {"reference": ref("organization")},
                    "code": [{"text": contact.role}],
                    "telecom": [{"system": "phone", "value": contact.phone, "use": "work"}],
                },
            ),
            ("consent", consent_of(answer.basis, ref)),
        ],
    )
    return with_answered(bundle, answer.answers_message_id)


def stay_encounter(stay_id: str, patient: str) -> dict[str, Any]:
    """The hospital stay a municipal message is about, by TakeCare's encounter id."""
    return {
        "resourceType": "Encounter",
        "identifier": [{"system": TAKECARE_ENCOUNTER_SYSTEM, "value": stay_id}],
        "status": "in-progress",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": patient},
    }


def read_stay_id(encounter: dict[str, Any]) -> str:
    for i, ident in enumerate(arr(encounter, "identifier")):
        if ident.get("system") == TAKECARE_ENCOUNTER_SYSTEM:
            return text(encounter, f"identifier.{i}.value")
    raise TranslationError("Encounter has no TakeCare encounter id")


def with_answered(bundle: Bundle, message_id: str | None) -> Bundle:
    """The message with the header's answers-message extension naming ``message_id`` (as
    is when None), validated again as a whole (:func:`message_bundle` builds no header
    extensions of its own)."""
    if message_id is None:
        return bundle
    if not isinstance(bundle, FhirMessage) or bundle._document is None:  # pragma: no cover
        raise TranslationError("message document missing")
    document = bundle._document
    document["entry"][0]["resource"]["extension"] = [
        {
            "url": ANSWERS_MESSAGE_URL,
            "valueIdentifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{message_id}"},
        }
    ]
    return validated_message(document)


def read_answered(header: dict[str, Any]) -> str | None:
    """The message id the answers-message extension names; None without one."""
    answered = extension(header, ANSWERS_MESSAGE_URL)
    if answered is None:
        return None
    value = text(answered, "valueIdentifier.value")
    if not value.startswith("urn:uuid:"):
        raise TranslationError("MessageHeader answers-message is not a urn:uuid")
    return value.removeprefix("urn:uuid:")


def _episode(
    service: MunicipalService, answer: AdmissionAnswer, patient: str, unit: str
) -> dict[str, Any]:
    episode: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [code(MUNICIPAL_SERVICE_SYSTEM, service.code, MUNICIPAL_SERVICES[service.code])],
        "patient": {"reference": patient},
        "managingOrganization": {"reference": unit},
    }
    if service.since is not None:
        episode["period"] = {"start": service.since.isoformat()}
    return episode


def read_answer(doc: dict[str, Any]) -> AdmissionAnswer:
    """The answer a message carries; TranslationError naming the element (never a value)."""
    header = one(doc, "MessageHeader")
    answers = read_answered(header)
    if answers is None:
        raise TranslationError("MessageHeader lacks extension answers-message")
    encounter = resolve(doc, header, "focus.0", "Encounter")
    role = resolve(doc, header, "focus.1", "PractitionerRole")
    practitioner = resolve(doc, role, "practitioner", "Practitioner")
    stay = read_stay_id(encounter)
    phone = next((t for t in arr(role, "telecom") if t.get("system") == "phone"), None)
    if phone is None:
        raise TranslationError("PractitionerRole has no phone")
    services = tuple(
        MunicipalService(code=_service_code(episode), since=maybe_day(episode, "period.start"))
        for episode in resources(doc, "EpisodeOfCare")
        if episode not in case_episodes(doc)  # the case (services.messaging.case) is no service
    )
    return AdmissionAnswer(
        answers_message_id=answers,
        stay_id=stay,
        patient=read_patient(resolve(doc, encounter, "subject")),
        unit=read_unit(resolve(doc, header, "sender")),
        services=services,
        contact=ContactPerson(
            name=text(practitioner, "name.0.text"),
            role=text(role, "code.0.text"),
            phone=text(phone, "value"),
            hsa_id=hsa_id(practitioner),
        ),
        basis=read_consent(doc),
    )


def _service_code(episode: dict[str, Any]) -> str:
    found = coded(maybe_obj(episode, "type.0"), MUNICIPAL_SERVICE_SYSTEM)
    if found is None or found not in MUNICIPAL_SERVICES:
        raise TranslationError("EpisodeOfCare.type is missing or not a known code")
    return found
