"""The cancellation (makulering) as a FHIR R4 message: a journal cancels a message it sent
earlier, of any family. Built from and read into the neutral :class:`Cancellation` both
adapters translate their native documents to (pure: no I/O, no clock). Mapping:
``contracts/fhir/message-cancelled.md``.

::

    Bundle (message)
     ├── MessageHeader   event message-cancelled, focus the Provenance, sender the unit
     ├── Provenance      target: the cancelled message's id (urn:ietf:rfc:3986, urn:uuid:…);
     │                   recorded: when it was cancelled; activity v3-DataOperation NULLIFY;
     │                   reason: the reason as text; agent.who the person (PractitionerRole)
     ├── Patient         whose message it was (identifier and name, never an address)
     ├── Organization    the cancelling unit (HSA-id)
     ├── Practitioner    who cancelled: name and HSA-id
     ├── PractitionerRole  the person at the unit
     └── EpisodeOfCare   the case (services.messaging.case), named last in focus, when known

No Consent: a cancellation shares no health data. It names the patient (the receiver must
file it with the message it cancels) and a message the receiver was sent on that message's
own basis, and the router sends it to exactly the receivers of that message
(:mod:`services.router.routing.cancels`), never to anyone else. So the family needs no basis
of its own (``Family.needs_consent`` false), and a withdrawal of consent for the stay never
stops it: cancelling what was sent is what one may have to do after a withdrawal.

The reason is free text: carried, never logged, never named in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

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
from services.messaging.vocabulary import DATA_OPERATION_SYSTEM, NULLIFY, URI_SYSTEM

FAMILY = "message-cancelled"
ACTIVITY = {"coding": [{"system": DATA_OPERATION_SYSTEM, "code": NULLIFY, "display": "nullify"}]}


Canceller = StaffMember  # who cancelled it, at which unit


@dataclass(frozen=True, slots=True)
class Cancellation:
    cancelled_message_id: str  # the broker's message id of the message cancelled (a UUID)
    cancelled_at: datetime
    reason: str  # free text: carried, never logged
    patient: PatientInfo
    cancelled_by: Canceller


def cancellation_bundle(
    cancellation: Cancellation,
    *,
    key: BusinessKey,
    source: System,
    now: datetime,
    case_id: str | None = None,
) -> Bundle:
    """``case_id``: the stay's case (services.messaging.case), if the sender named it."""
    ref = refs(key)
    return message_bundle(
        case_id=case_id,
        key=key,
        event=EventCode.MESSAGE_CANCELLED,
        source=source,
        now=now,
        focus=["provenance"],
        sender="organization",
        resources=[
            (
                "provenance",
                {
                    "resourceType": "Provenance",
                    "target": [
                        {
                            "identifier": {
                                "system": URI_SYSTEM,
                                "value": f"urn:uuid:{cancellation.cancelled_message_id}",
                            }
                        }
                    ],
                    "recorded": cancellation.cancelled_at.isoformat(),
                    "activity": ACTIVITY,
                    "reason": [{"text": cancellation.reason}],
                    "agent": [
                        {
                            "who": {"reference": ref("canceller")},
                            "onBehalfOf": {"reference": ref("organization")},
                        }
                    ],
                },
            ),
            ("patient", patient_resource(replace(cancellation.patient, address=None))),
            *staff_resources(cancellation.cancelled_by, ref, role="canceller"),
        ],
    )


def cancelled_message_id(doc: dict[str, Any]) -> str:
    """The id of the message a cancellation cancels (its Provenance's target);
    TranslationError naming the element, never a value."""
    provenance = resolve(doc, one(doc, "MessageHeader"), "focus.0", "Provenance")
    found = next(
        (
            text(target, "identifier.value")
            for target in arr(provenance, "target")
            if isinstance(target.get("identifier"), dict)
            and target["identifier"].get("system") == URI_SYSTEM
        ),
        None,
    )
    if found is None or not found.startswith("urn:uuid:"):
        raise TranslationError("Provenance.target lacks the cancelled message's urn:uuid")
    return found.removeprefix("urn:uuid:")


def read_cancellation(doc: dict[str, Any]) -> Cancellation:
    """The cancellation a message carries; TranslationError naming the element."""
    header = one(doc, "MessageHeader")
    provenance = resolve(doc, header, "focus.0", "Provenance")
    return Cancellation(
        cancelled_message_id=cancelled_message_id(doc),
        cancelled_at=instant(provenance, "recorded"),
        reason=text(provenance, "reason.0.text"),
        patient=read_patient(one(doc, "Patient")),
        cancelled_by=read_staff_member(
            doc, provenance, "agent.0.who", who="the person who cancelled"
        ),
    )
