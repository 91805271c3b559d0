"""Pure FHIR R4 building blocks both adapters share: the patient, the care unit, the message
Bundle around them, and the readers that take them apart again on the receiving side.

Translators build plain dicts and call :func:`message_bundle` once, which validates the whole
Bundle with the R4B models. Readers work on the JSON form (``dict``) because a message is
validated once, at the edge that built it, and not again at every hop.

Exceptions::

    TranslationError      a message lacks what the receiver needs: retrying cannot help (fatal)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.envelope import (
    BASE_URL,
    BUSINESS_KEY_SYSTEM,
    EVENT_DISPLAY,
    EVENT_SYSTEM,
    BusinessKey,
    EventCode,
    System,
    entry_uuid,
    message_id_for,
)
from services.messaging.families import destinations
from services.messaging.identifiers import (
    HSA_ID_SYSTEM,
    InvalidIdentifier,
    PatientIdentifier,
    identifier_from_fhir,
)

SECURITY_LABEL_SYSTEM = f"{BASE_URL}/CodeSystem/security-label"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PROTECTED_IDENTITY = "skyddadFolkbokforing"


class TranslationError(ValueError):
    """The message lacks what the receiver needs; retrying cannot help (fatal)."""


@dataclass(frozen=True, slots=True)
class Address:
    street: str
    postal_code: str
    city: str


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """Who the message is about, as both journals need it."""

    identifier: PatientIdentifier
    family_name: str
    given_name: str
    address: Address | None
    protected: bool  # skyddad folkbokföring: the address never leaves the hospital side


@dataclass(frozen=True, slots=True)
class CareUnit:
    hsa_id: str
    name: str


Ref = Callable[[str], str]


def refs(key: BusinessKey) -> Ref:
    """``ref(role)`` is the stable fullUrl of the resource playing ``role`` in the message."""
    message_id = message_id_for(key)
    return lambda role: entry_uuid(message_id, role)


def message_bundle(
    *,
    key: BusinessKey,
    event: EventCode,
    source: System,
    now: datetime,
    focus: Iterable[str],
    resources: Iterable[tuple[str, dict[str, Any]]],
    sender: str | None = None,
) -> Bundle:
    """A FHIR message: MessageHeader first, then ``resources`` as (role, resource) in order.

    The message id and every fullUrl derive from the business key, so building the same
    event twice gives the same message. Destinations come from the family catalogue.
    """
    message_id = message_id_for(key)
    ref = refs(key)
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": message_id,
        "eventCoding": {
            "system": EVENT_SYSTEM,
            "code": event.value,
            "display": EVENT_DISPLAY[event],
        },
        "destination": [
            {"name": dest.display, "endpoint": dest.endpoint}
            for dest in destinations(event.value, source.value)
        ],
        "source": {"name": source.display, "endpoint": source.endpoint},
        "focus": [{"reference": ref(role)} for role in focus],
    }
    if sender is not None:
        header["sender"] = {"reference": ref(sender)}
    entries = [{"fullUrl": ref("header"), "resource": header}]
    entries += [{"fullUrl": ref(role), "resource": resource} for role, resource in resources]
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


# --- building --------------------------------------------------------------------------------


def patient_resource(patient: PatientInfo) -> dict[str, Any]:
    ident = patient.identifier
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": ident.system, "value": ident.value}],
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
    }
    if patient.protected:
        # Skyddad folkbokföring: the address is never put into a message.
        resource["meta"] = {
            "security": [
                {
                    "system": SECURITY_LABEL_SYSTEM,
                    "code": PROTECTED_IDENTITY,
                    "display": "Skyddad folkbokföring",
                },
                {"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"},
            ]
        }
    elif patient.address is not None:
        a = patient.address
        resource["address"] = [
            {
                "use": "home",
                "type": "both",
                "line": [a.street],
                "postalCode": a.postal_code,
                "city": a.city,
                "country": "SE",
            }
        ]
    return resource


def organization_resource(unit: CareUnit) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": HSA_ID_SYSTEM, "value": unit.hsa_id}],
        "name": unit.name,
    }


def code(system: str, value: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": value, "display": display}], "text": display}


# --- reading ---------------------------------------------------------------------------------


def resources(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in doc.get("entry", [])
        if isinstance(e, dict) and e.get("resource", {}).get("resourceType") == kind
    ]


def one(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources(doc, kind)
    if len(found) != 1:
        raise TranslationError(f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def resolve(doc: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    url = (reference or {}).get("reference")
    for entry in doc.get("entry", []):
        if entry.get("fullUrl") == url:
            resource: dict[str, Any] = entry["resource"]
            return resource
    raise TranslationError("a reference points outside the message")


def extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((x for x in resource.get("extension", []) if x.get("url") == url), None)


def coded(concept: dict[str, Any] | None, system: str) -> str | None:
    for coding in (concept or {}).get("coding", []):
        if coding.get("system") == system:
            value: str = coding["code"]
            return value
    return None


def is_protected(patient: dict[str, Any]) -> bool:
    return any(
        label.get("code") == PROTECTED_IDENTITY
        for label in patient.get("meta", {}).get("security", [])
    )


def read_patient(resource: dict[str, Any]) -> PatientInfo:
    try:
        ident = resource["identifier"][0]
        identifier = identifier_from_fhir(ident["system"], ident["value"])
        name = resource["name"][0]
        protected = is_protected(resource)
        address = None
        if resource.get("address") and not protected:
            a = resource["address"][0]
            address = Address(", ".join(a["line"]), a["postalCode"], a["city"])
        return PatientInfo(
            identifier=identifier,
            family_name=name["family"],
            given_name=" ".join(name.get("given", [])),
            address=address,
            protected=protected,
        )
    except (KeyError, IndexError, InvalidIdentifier) as exc:
        raise TranslationError(f"patient incomplete: {type(exc).__name__}") from None


def read_unit(resource: dict[str, Any]) -> CareUnit:
    try:
        hsa = next(i["value"] for i in resource["identifier"] if i["system"] == HSA_ID_SYSTEM)
        return CareUnit(hsa_id=hsa, name=resource["name"])
    except (KeyError, StopIteration) as exc:
        raise TranslationError(f"organization incomplete: {type(exc).__name__}") from None
