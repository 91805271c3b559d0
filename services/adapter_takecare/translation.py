"""Pure translation of a TakeCare admission event into a FHIR R4 message Bundle.

``to_bundle`` does no I/O and reads no clock: the caller passes ``now``. The message id is
derived from the business key, so translating the same event twice gives the same message.

Bundle layout (see contracts/fhir/admission-notice.md)::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event admission-notice, source TakeCare, sender ward, focus Encounter
     ├── Encounter       inpatient stay: admitted at, reason, expected discharge (extension)
     ├── Patient         personnummer/samordningsnummer, name, registered address
     ├── Organization    the admitting ward (HSA-id)
     └── Observation ×n  housing situation, social situation, care-needs assessment
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.adapter_takecare.admission import TakeCareAdmission
from services.messaging.envelope import (
    BUSINESS_KEY_SYSTEM,
    EVENT_DISPLAY,
    EVENT_SYSTEM,
    EXPECTED_DISCHARGE_URL,
    OBSERVATION_SYSTEM,
    BusinessKey,
    EventCode,
    System,
    entry_uuid,
    message_id_for,
)
from services.messaging.identifiers import HSA_ID_SYSTEM

TAKECARE_ENCOUNTER_SYSTEM = "urn:carebridge:takecare:encounter-id"
SECURITY_LABEL_SYSTEM = "https://carebridge.example.se/fhir/CodeSystem/security-label"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

_OBSERVATIONS = (
    ("housing_situation", "housing-situation", "Boendesituation"),
    ("social_situation", "social-situation", "Social situation"),
    ("care_needs_assessment", "care-needs-assessment", "Nulägesbedömning"),
)


def business_key(event: TakeCareAdmission) -> BusinessKey:
    return BusinessKey(System.TAKECARE.value, event.event_id, event.version)


def to_bundle(event: TakeCareAdmission, *, now: datetime) -> Bundle:
    key = business_key(event)
    message_id = message_id_for(key)
    urls = {
        role: entry_uuid(message_id, role)
        for role in ("header", "encounter", "patient", "organization")
    }

    observations = [
        _observation(message_id, code, display, value, event, urls)
        for field, code, display, value in (
            (f, c, d, getattr(event, f)) for f, c, d in _OBSERVATIONS
        )
        if value
    ]
    entries: list[dict[str, Any]] = [
        {"fullUrl": urls["header"], "resource": _header(message_id, urls)},
        {"fullUrl": urls["encounter"], "resource": _encounter(event, urls)},
        {"fullUrl": urls["patient"], "resource": _patient(event)},
        {"fullUrl": urls["organization"], "resource": _organization(event)},
        *observations,
    ]
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": message_id,
            "identifier": {"system": BUSINESS_KEY_SYSTEM, "value": str(key)},
            "type": "message",
            "timestamp": now.isoformat(),
            "entry": entries,
        }
    )


def _header(message_id: str, urls: dict[str, str]) -> dict[str, Any]:
    event = EventCode.ADMISSION_NOTICE
    return {
        "resourceType": "MessageHeader",
        "id": message_id,
        "eventCoding": {
            "system": EVENT_SYSTEM,
            "code": event.value,
            "display": EVENT_DISPLAY[event],
        },
        "source": {"name": System.TAKECARE.display, "endpoint": System.TAKECARE.endpoint},
        "sender": {"reference": urls["organization"]},
        "focus": [{"reference": urls["encounter"]}],
    }


def _encounter(event: TakeCareAdmission, urls: dict[str, str]) -> dict[str, Any]:
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [
            {"system": TAKECARE_ENCOUNTER_SYSTEM, "value": event.encounter.encounter_id}
        ],
        "status": "in-progress",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": urls["patient"]},
        "period": {"start": event.encounter.admitted_at.isoformat()},
        "reasonCode": [{"text": event.admission_reason}],
        "serviceProvider": {"reference": urls["organization"]},
    }
    if event.expected_discharge_at is not None:
        encounter["extension"] = [
            {
                "url": EXPECTED_DISCHARGE_URL,
                "valueDateTime": event.expected_discharge_at.isoformat(),
            }
        ]
    return encounter


def _patient(event: TakeCareAdmission) -> dict[str, Any]:
    p = event.patient
    ident = p.identifier
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": ident.system, "value": ident.value}],
        "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
    }
    if p.protected_identity:
        # Skyddad folkbokföring: the address never leaves the hospital side.
        patient["meta"] = {
            "security": [
                {
                    "system": SECURITY_LABEL_SYSTEM,
                    "code": "skyddadFolkbokforing",
                    "display": "Skyddad folkbokföring",
                },
                {"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"},
            ]
        }
    elif p.registered_address is not None:
        a = p.registered_address
        patient["address"] = [
            {
                "use": "home",
                "type": "both",
                "line": [a.street_address],
                "postalCode": a.postal_code,
                "city": a.city,
                "country": "SE",
            }
        ]
    return patient


def _organization(event: TakeCareAdmission) -> dict[str, Any]:
    unit = event.encounter.unit
    return {
        "resourceType": "Organization",
        "identifier": [{"system": HSA_ID_SYSTEM, "value": unit.hsa_id}],
        "name": unit.name,
    }


def _observation(
    message_id: str,
    code: str,
    display: str,
    value: str,
    event: TakeCareAdmission,
    urls: dict[str, str],
) -> dict[str, Any]:
    return {
        "fullUrl": entry_uuid(message_id, code),
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {
                "coding": [{"system": OBSERVATION_SYSTEM, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": urls["patient"]},
            "encounter": {"reference": urls["encounter"]},
            "effectiveDateTime": event.occurred_at.isoformat(),
            "valueString": value,
        },
    }
