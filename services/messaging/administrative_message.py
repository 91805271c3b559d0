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
    instant,
    message_bundle,
    one,
    patient_resource,
    read_patient,
    refs,
    resolve,
    text,
)
from services.messaging.staff_member import StaffMember, read_staff_member, staff_resources
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"


Writer = StaffMember  # who wrote it, for which unit


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
            *staff_resources(message.writer, ref, role="writer"),
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
    return AdministrativeMessage(
        stay_id=text(communication, "encounter.identifier.value"),
        sent_at=instant(communication, "sent"),
        subject=text(communication, "topic.text"),
        text=text(communication, "payload.0.contentString"),
        patient=read_patient(resolve(doc, communication, "subject")),
        writer=read_staff_member(doc, communication, "sender", who="the writer"),
        basis=read_consent(doc),
    )
