"""The administrative message (administrativt meddelande) as a FHIR R4 message: free text about
a stay between the hospital unit and the municipal unit, both ways. Built from and read into the
neutral :class:`AdministrativeMessage` both adapters translate their native documents to
(pure: no I/O, no clock). Mapping: ``contracts/fhir/administrative-message.md``.

::

    Bundle (message)
     ├── MessageHeader     event administrative-message, focus the Communication, sender the
     │                     writer's unit
     ├── Communication     status completed, category notification; topic.text: the subject;
     │                     payload.contentString: the text; encounter: the stay (TakeCare's
     │                     id, a logical reference); sent; sender: the writer (PractitionerRole)
     ├── Patient           whom the message is about
     ├── Organization      the writer's unit (HSA-id)
     ├── Practitioner      the writer: name and HSA-id
     ├── PractitionerRole  the writer at the unit
     └── Consent           the basis the writer's side holds (services.messaging.consent)

The subject and the text are free text written about a patient: patient data. They are carried
and never logged, and no error names them (every reader below names the element only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.case import stay_case_id
from services.messaging.consent import ConsentBasis, consent_of, read_consent
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import (
    PatientInfo,
    TranslationError,
    hsa_id,
    instant,
    message_bundle,
    one,
    patient_resource,
    read_patient,
    refs,
    resolve,
    text,
)
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"


@dataclass(frozen=True, slots=True)
class Writer:
    name: str
    hsa_id: str  # the person's own HSA-id
    unit_hsa_id: str  # the unit they write for


@dataclass(frozen=True, slots=True)
class AdministrativeMessage:
    stay_id: str  # TakeCare's id of the stay the message is about
    sent_at: datetime
    subject: str  # free text: patient data
    text: str  # free text: patient data
    patient: PatientInfo
    writer: Writer
    basis: ConsentBasis  # the basis the writer's side holds

    def __repr__(self) -> str:  # never the free text or the patient, e.g. in a traceback
        return f"AdministrativeMessage(stay_id=..., sent_at={self.sent_at.isoformat()})"


def administrative_message_bundle(
    message: AdministrativeMessage, *, key: BusinessKey, source: System, now: datetime
) -> Bundle:
    ref = refs(key)
    writer = message.writer
    return message_bundle(
        key=key,
        event=EventCode.ADMINISTRATIVE_MESSAGE,
        source=source,
        now=now,
        focus=["communication", "consent"],
        case_id=stay_case_id(message.stay_id),
        sender="organization",
        resources=[
            (
                "communication",
                {
                    "resourceType": "Communication",
                    "status": "completed",
                    "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "notification"}]}],
                    "subject": {"reference": ref("patient")},
                    "topic": {"text": message.subject},
                    "encounter": {
                        "type": "Encounter",
                        "identifier": {
                            "system": TAKECARE_ENCOUNTER_SYSTEM,
                            "value": message.stay_id,
                        },
                    },
                    "sent": message.sent_at.isoformat(),
                    "sender": {"reference": ref("writer")},
                    "payload": [{"contentString": message.text}],
                },
            ),
            ("patient", patient_resource(message.patient)),
            (
                "organization",
                {
                    "resourceType": "Organization",
                    "identifier": [{"system": HSA_ID_SYSTEM, "value": writer.unit_hsa_id}],
                },
            ),
            (
                "practitioner",
                {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": HSA_ID_SYSTEM, "value": writer.hsa_id}],
                    "name": [{"text": writer.name}],
                },
            ),
            (
                "writer",
                {
                    "resourceType": "PractitionerRole",
                    "practitioner": {"reference": ref("practitioner")},
                    "organization": {"reference": ref("organization")},
                },
            ),
            ("consent", consent_of(message.basis, ref)),
        ],
    )


def read_administrative_message(doc: dict[str, Any]) -> AdministrativeMessage:
    """The administrative message a FHIR message carries; TranslationError naming the
    element, never a value."""
    header = one(doc, "MessageHeader")
    communication = resolve(doc, header, "focus.0", "Communication")
    if text(communication, "encounter.identifier.system") != TAKECARE_ENCOUNTER_SYSTEM:
        raise TranslationError("Communication.encounter must name TakeCare's stay id")
    role = resolve(doc, communication, "sender", "PractitionerRole")
    practitioner = resolve(doc, role, "practitioner", "Practitioner")
    unit = resolve(doc, role, "organization", "Organization")
    person_hsa, unit_hsa = hsa_id(practitioner), hsa_id(unit)
    if person_hsa is None or unit_hsa is None:
        raise TranslationError("the writer or their unit has no HSA-id")
    return AdministrativeMessage(
        stay_id=text(communication, "encounter.identifier.value"),
        sent_at=instant(communication, "sent"),
        subject=text(communication, "topic.text"),
        text=text(communication, "payload.0.contentString"),
        patient=read_patient(resolve(doc, communication, "subject")),
        writer=Writer(
            name=text(practitioner, "name.0.text"), hsa_id=person_hsa, unit_hsa_id=unit_hsa
        ),
        basis=read_consent(doc),
    )
