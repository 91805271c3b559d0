"""The municipality's message that it can receive the patient (kan ta emot), from a date, as a
FHIR R4 message, built from and read into the neutral :class:`ReadyToReceive` (pure: no I/O,
no clock). Mapping: ``contracts/fhir/ready-to-receive.md``.

::

    Bundle (message)
     ├── MessageHeader     event ready-to-receive, focus Encounter and EpisodeOfCare, sender
     │                     the municipal unit; extension answers-message when it answers one
     ├── Encounter         the hospital stay (TakeCare's encounter id)
     ├── Patient
     ├── Organization      the municipal unit that will receive the patient (HSA-id)
     ├── EpisodeOfCare     status planned: the municipality's care from period.start, the date
     ├── Consent           the basis it is shared on (services.messaging.consent), named
     │                     in MessageHeader.focus after the Encounter and the EpisodeOfCare
     └── EpisodeOfCare     the case (services.messaging.case), named last in focus
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.admission_answer import (
    read_answered,
    read_stay_id,
    stay_encounter,
    with_answered,
)
from services.messaging.case import stay_case_id
from services.messaging.consent import ConsentBasis, consent_of, read_consent
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import (
    CareUnit,
    PatientInfo,
    TranslationError,
    maybe_day,
    message_bundle,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    refs,
    resolve,
)


@dataclass(frozen=True, slots=True)
class ReadyToReceive:
    stay_id: str  # TakeCare's encounter id of the stay
    from_date: date  # the day the municipality can receive the patient
    patient: PatientInfo
    unit: CareUnit  # the municipal unit that will receive them
    basis: ConsentBasis  # the consent or legal basis it is shared on
    answers_message_id: str | None = None  # e.g. the ready-for-discharge notice answered


def ready_to_receive_bundle(
    message: ReadyToReceive, *, key: BusinessKey, source: System, now: datetime
) -> Bundle:
    ref = refs(key)
    episode: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "status": "planned",
        "patient": {"reference": ref("patient")},
        "managingOrganization": {"reference": ref("organization")},
        "period": {"start": message.from_date.isoformat()},
    }
    bundle = message_bundle(
        key=key,
        case_id=stay_case_id(message.stay_id),
        event=EventCode.READY_TO_RECEIVE,
        source=source,
        now=now,
        focus=["encounter", "episode", "consent"],
        sender="organization",
        resources=[
            ("encounter", stay_encounter(message.stay_id, ref("patient"))),
            ("patient", patient_resource(message.patient)),
            ("organization", organization_resource(message.unit)),
            ("episode", episode),
            ("consent", consent_of(message.basis, ref)),
        ],
    )
    return with_answered(bundle, message.answers_message_id)


def read_ready_to_receive(doc: dict[str, Any]) -> ReadyToReceive:
    """What the message says; TranslationError naming the element (never a value)."""
    header = one(doc, "MessageHeader")
    encounter = resolve(doc, header, "focus.0", "Encounter")
    episode = resolve(doc, header, "focus.1", "EpisodeOfCare")
    from_date = maybe_day(episode, "period.start")
    if from_date is None:
        raise TranslationError("EpisodeOfCare.period.start is missing")
    return ReadyToReceive(
        stay_id=read_stay_id(encounter),
        from_date=from_date,
        patient=read_patient(resolve(doc, encounter, "subject")),
        unit=read_unit(resolve(doc, header, "sender")),
        basis=read_consent(doc),
        answers_message_id=read_answered(header),
    )
