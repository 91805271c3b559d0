"""Consent withdrawal (återkallat samtycke) from TakeCare: the patient withdrew the consent
that covered a stay. Contract ``contracts/takecare/consent-withdrawal.schema.json``; mapping
``contracts/fhir/consent-withdrawal.md``.

The receivers of the stay are told by a message of its own; after it the adapter refuses
every later document of the stay (``services.messaging.withdrawals``). It carries as little
as it can: the stay, the patient's identifier and name (never an address), and the Consent.

Bundle layout::

    Bundle (type message, identifier = business key)
     ├── MessageHeader   event consent-withdrawn, focus Encounter, Consent
     ├── Encounter       the stay the withdrawal is for
     ├── Patient         personnummer / samordningsnummer / reservnummer, name
     ├── Consent         status inactive, provision.period.end = when it was withdrawn
     ├── Organization    the ward (HSA-id)
     └── EpisodeOfCare   the case (services.messaging.case), named last in focus
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from fhir.resources.R4B.bundle import Bundle

from services.adapter_takecare.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
)
from services.adapter_takecare.stay_event import StayEvent
from services.messaging.case import stay_case_id
from services.messaging.consent import consent_of
from services.messaging.envelope import EventCode, System
from services.messaging.fhir_parts import (
    Ref,
    message_bundle,
    organization_resource,
    patient_resource,
    refs,
)
from services.messaging.native import InboundFamily
from services.messaging.vocabulary import TAKECARE_ENCOUNTER_SYSTEM


class TakeCareConsentWithdrawal(StayEvent):
    """Nothing but the stay: the withdrawn basis is its consentBasis (withdrawnAt set)."""

    EVENT: ClassVar[EventCode] = EventCode.CONSENT_WITHDRAWN


def to_bundle(
    event: TakeCareConsentWithdrawal, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    patient = replace(event.patient.info(regional_reserve_oid), address=None)
    return message_bundle(
        key=key,
        case_id=stay_case_id(event.encounter.encounter_id),
        event=EventCode.CONSENT_WITHDRAWN,
        source=System.TAKECARE,
        now=now,
        focus=["encounter", "consent"],
        sender="organization",
        resources=[
            ("encounter", _encounter(event, ref)),
            ("patient", patient_resource(patient)),
            ("consent", consent_of(event.consent_basis.basis(), ref)),
            ("organization", organization_resource(event.encounter.unit.info())),
        ],
    )


def _encounter(event: TakeCareConsentWithdrawal, ref: Ref) -> dict[str, Any]:
    return {
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
        "subject": {"reference": ref("patient")},
        "period": {"start": event.encounter.admitted_at.isoformat()},
        "serviceProvider": {"reference": ref("organization")},
    }


INBOUND = InboundFamily(
    family="consent-withdrawal",
    route="consent-withdrawals",
    schema="takecare/consent-withdrawal.schema.json",
    model=TakeCareConsentWithdrawal,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)
