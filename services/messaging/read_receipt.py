"""The read receipt (läskvittens) as a FHIR R4 message: a person read a message, and when. Built
from and read into the neutral :class:`ReadReceipt` both adapters translate their native
documents to (pure: no I/O, no clock). Mapping: ``contracts/fhir/read-receipt.md``.

::

    Bundle (message)
     ├── MessageHeader     event read-receipt, focus the Communication, sender the reader's unit
     ├── Communication     status completed; about: the read message's id (urn:uuid);
     │                     sent: when it was read; sender: the reader (PractitionerRole)
     ├── Patient           whose message was read: the receiver files the receipt with them
     ├── Organization      the reader's unit (HSA-id)
     ├── Practitioner      the reader: name and HSA-id
     ├── PractitionerRole  the reader at the unit
     ├── Consent           the basis the reader's side holds for the patient
     │                     (services.messaging.consent), named in MessageHeader.focus after
     │                     the Communication
     └── EpisodeOfCare     the case (services.messaging.case), named last in focus; only
                           when the journal echoed the case id (arendeId / caseId)

A read receipt carries little health data, but it names the patient and says that a unit on
the other side of the region/municipality line holds a message about them: it is a message of
the care transition like any other, and the secrecy rule (OSL 25 and 26 kap.) knows no
exception for it. So it carries the full basis, required as everywhere else: the basis the
reader's journal holds (its own record of the patient's consent or legal basis), which must
cover the family ``read-receipt`` and the journal it goes back to.

Not the technical receipt (kvittens, :mod:`services.messaging.receipts`): that is a response
message (``MessageHeader.response``) on the results topic saying the journal *holds* the
record, and it settles a delivery. A read receipt says a *person* read it; it is an ordinary
message with a delivery, a receipt and retries of its own, so it carries no
``MessageHeader.response`` (the router would take it for a technical result).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.consent import ConsentBasis, consent_of, read_consent
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import (
    PatientInfo,
    TranslationError,
    arr,
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
from services.messaging.vocabulary import URI_SYSTEM

Reader = StaffMember  # who read it, at which unit


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    read_message_id: str  # the broker's message id of the message read (a UUID)
    read_at: datetime
    patient: PatientInfo
    reader: Reader
    basis: ConsentBasis  # the basis the reader's side holds


def read_receipt_bundle(
    receipt: ReadReceipt,
    *,
    key: BusinessKey,
    source: System,
    now: datetime,
    case_id: str | None = None,
) -> Bundle:
    """``case_id``: the stay's case the journal echoed (services.messaging.case), if any."""
    ref = refs(key)
    return message_bundle(
        case_id=case_id,
        key=key,
        event=EventCode.READ_RECEIPT,
        source=source,
        now=now,
        focus=["communication", "consent"],
        sender="organization",
        resources=[
            (
                "communication",
                {
                    "resourceType": "Communication",
                    "status": "completed",
                    "subject": {"reference": ref("patient")},
                    "about": [
                        {
                            "identifier": {
                                "system": URI_SYSTEM,
                                "value": f"urn:uuid:{receipt.read_message_id}",
                            }
                        }
                    ],
                    "sent": receipt.read_at.isoformat(),
                    "sender": {"reference": ref("reader")},
                },
            ),
            ("patient", patient_resource(receipt.patient)),
            *staff_resources(receipt.reader, ref, role="reader"),
            ("consent", consent_of(receipt.basis, ref)),
        ],
    )


def read_read_receipt(doc: dict[str, Any]) -> ReadReceipt:
    """The read receipt a message carries; TranslationError naming the element, never a
    value."""
    header = one(doc, "MessageHeader")
    communication = resolve(doc, header, "focus.0", "Communication")
    about = next(
        (
            text(communication, f"about.{i}.identifier.value")
            for i, ref in enumerate(arr(communication, "about"))
            if isinstance(ref.get("identifier"), dict)
            and ref["identifier"].get("system") == URI_SYSTEM
        ),
        None,
    )
    if about is None or not about.startswith("urn:uuid:"):
        raise TranslationError("Communication.about lacks the read message's urn:uuid")
    return ReadReceipt(
        read_message_id=about.removeprefix("urn:uuid:"),
        read_at=instant(communication, "sent"),
        patient=read_patient(resolve(doc, communication, "subject")),
        reader=read_staff_member(doc, communication, "sender", who="the reader"),
        basis=read_consent(doc),
    )
