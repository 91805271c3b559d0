"""Pure FHIR R4 building blocks both adapters share: the patient, the care unit, the message
Bundle around them, and the readers that take them apart again on the receiving side.

Translators build plain dicts and call :func:`message_bundle` once, which validates the whole
Bundle with the R4B models. Readers work on the JSON form (``dict``) because a message is
validated once, at the edge that built it, and not again at every hop.

Exceptions::

    TranslationError      a message lacks what the receiver needs: retrying cannot help (fatal)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle

from services.messaging.case import case_episode
from services.messaging.envelope import (
    BUSINESS_KEY_SYSTEM,
    EVENT_DISPLAY,
    EVENT_SYSTEM,
    BusinessKey,
    EventCode,
    System,
    entry_uuid,
    fhir_instant,
    header_url,
    message_id_for,
    placeholder_bundle_id,
    validated_message,
)
from services.messaging.families import destinations
from services.messaging.identifiers import (
    HSA_ID_SYSTEM,
    InvalidIdentifier,
    PatientIdentifier,
    identifier_from_fhir,
)
from services.messaging.profiles import declare_profiles
from services.messaging.vocabulary import KOMMUNKOD_SYSTEM as KOMMUNKOD_SYSTEM
from services.messaging.vocabulary import MUNICIPALITY_EXTENSION as MUNICIPALITY_EXTENSION
from services.messaging.vocabulary import SECURITY_LABEL_SYSTEM as SECURITY_LABEL_SYSTEM

CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PROTECTED_IDENTITY = "skyddadFolkbokforing"
# Addressing by unit (issue 20): the patient's municipality of residence (folkbokföringskommun)
# as SCB's four-digit kommunkod, an extension rather than Patient.address.district because a
# protected identity's address never leaves the hospital while its municipality must still
# be addressed; the listed vårdcentral is Patient.generalPractitioner by HSA-id.
CASE_ROLE = "case"  # the role (fullUrl) of the case's EpisodeOfCare in a message
HEADER_ROLE = "header"  # the MessageHeader's role: its fullUrl is urn:uuid:<message id>


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
    # where the broker addresses the patient's notices (issue 20), not who the patient is:
    # left out of equality, since a journal that does not keep them (Treserva's brukare)
    # still hands back the same patient
    municipality: str | None = field(default=None, compare=False)  # kommunkod, 4 digits
    listed_unit_hsa: str | None = field(default=None, compare=False)  # listed vårdcentral


@dataclass(frozen=True, slots=True)
class CareUnit:
    hsa_id: str
    name: str


Ref = Callable[[str], str]


def refs(key: BusinessKey) -> Ref:
    """``ref(role)`` is the stable fullUrl of the resource playing ``role`` in the message:
    the header's is ``urn:uuid:<its id>`` (the message id), any other's a UUIDv5 of the
    message id and the role."""
    message_id = message_id_for(key)
    return lambda role: (
        header_url(message_id) if role == HEADER_ROLE else entry_uuid(message_id, role)
    )


def message_bundle(
    *,
    key: BusinessKey,
    event: EventCode,
    source: System,
    now: datetime,
    focus: Iterable[str],
    resources: Iterable[tuple[str, dict[str, Any]]],
    sender: str | None = None,
    case_id: str | None = None,
) -> Bundle:
    """A FHIR message: MessageHeader first, then ``resources`` as (role, resource) in order.

    The message id and every fullUrl derive from the business key, so building the same
    event twice gives the same message. Destinations come from the family catalogue.

    Identity rule: an entry whose resource has an id has the fullUrl ``urn:uuid:<that id>``.
    The MessageHeader is the one resource with an id (the message id); the others have
    none, and their fullUrls are UUIDv5s of (message id, role) (``TranslationError`` if a
    resource brings an id that disagrees with its fullUrl). ``Bundle.id`` is a placeholder
    (:func:`~services.messaging.envelope.placeholder_bundle_id`) that every send replaces.

    ``case_id`` (``services.messaging.case``) adds the case's EpisodeOfCare last, names it
    last in ``MessageHeader.focus`` (readers find their resources by focus position, so it
    never moves them) and in ``Encounter.episodeOfCare`` of every Encounter.
    """
    message_id = message_id_for(key)
    ref = refs(key)
    resources = list(resources)
    focus = list(focus)
    if case_id is not None:
        resources, focus = _with_case(case_id, resources, focus, ref)
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
    entries = [{"fullUrl": ref(HEADER_ROLE), "resource": header}]
    entries += [{"fullUrl": ref(role), "resource": resource} for role, resource in resources]
    _check_identity(entries)
    return validated_message(
        declare_profiles(
            {
                "resourceType": "Bundle",
                "id": placeholder_bundle_id(message_id),
                "identifier": {"system": BUSINESS_KEY_SYSTEM, "value": str(key)},
                "type": "message",
                "timestamp": fhir_instant(now),
                "entry": entries,
            },
            event.value,
        )
    )


def _check_identity(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        own = entry["resource"].get("id")
        if own is not None and entry["fullUrl"] != f"urn:uuid:{own}":
            kind = entry["resource"].get("resourceType")
            raise TranslationError(f"the {kind}'s fullUrl must be urn:uuid:<its id>")


def _with_case(
    case_id: str, found: list[tuple[str, dict[str, Any]]], focus: list[str], ref: Ref
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    patient = next((role for role, r in found if r.get("resourceType") == "Patient"), None)
    if patient is None:
        raise TranslationError("a message with a case id needs its Patient")
    linked = [
        (
            role,
            {**r, "episodeOfCare": [*r.get("episodeOfCare", []), {"reference": ref(CASE_ROLE)}]}
            if r.get("resourceType") == "Encounter"
            else r,
        )
        for role, r in found
    ]
    return [*linked, (CASE_ROLE, case_episode(case_id, ref(patient)))], [*focus, CASE_ROLE]


# --- building --------------------------------------------------------------------------------


def patient_resource(patient: PatientInfo) -> dict[str, Any]:
    """The Patient; a regional reserve number must carry its region by now (the system
    raises :class:`InvalidIdentifier` otherwise: it is never labelled national)."""
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
    if patient.municipality is not None:
        resource["extension"] = [
            {
                "url": MUNICIPALITY_EXTENSION,
                "valueCoding": {"system": KOMMUNKOD_SYSTEM, "code": patient.municipality},
            }
        ]
    if patient.listed_unit_hsa is not None:
        resource["generalPractitioner"] = [
            {
                "type": "Organization",
                "identifier": {"system": HSA_ID_SYSTEM, "value": patient.listed_unit_hsa},
            }
        ]
    return resource


def stamp_receiver(bundle: dict[str, Any], system: System, unit_hsa: str) -> None:
    """Set ``MessageHeader.destination.receiver`` of ``system``'s destination to the receiving
    unit (an Organization by its HSA-id), in place; a header that names no destination for
    ``system`` gets one. Done by the adapter that delivers, from the signed delivery command's
    receiver-unit header: the router forwards the Bundle as the source signed it."""
    headers = resources(bundle, "MessageHeader")
    if not headers:
        raise TranslationError("the message has no MessageHeader")
    receiver = {
        "type": "Organization",
        "identifier": {"system": HSA_ID_SYSTEM, "value": unit_hsa},
    }
    targets = [d for d in arr(headers[0], "destination") if d.get("endpoint") == system.endpoint]
    if not targets:
        targets = [{"name": system.display, "endpoint": system.endpoint}]
        headers[0].setdefault("destination", []).extend(targets)
    for target in targets:
        target["receiver"] = receiver


def municipality_of(patient: dict[str, Any]) -> str | None:
    """The kommunkod of the patient's municipality of residence, if the Patient carries it."""
    found = extension(patient, MUNICIPALITY_EXTENSION)
    if found is None:
        return None
    if maybe_text(found, "valueCoding.system") != KOMMUNKOD_SYSTEM:
        raise TranslationError("Patient.extension municipality-of-residence must be a kommunkod")
    return text(found, "valueCoding.code")


def listed_unit_of(patient: dict[str, Any]) -> str | None:
    """The HSA-id of the patient's listed vårdcentral (Patient.generalPractitioner)."""
    for i, gp in enumerate(arr(patient, "generalPractitioner")):
        if maybe_text(gp, "identifier.system") == HSA_ID_SYSTEM:
            return text(patient, f"generalPractitioner.{i}.identifier.value")
    return None


def organization_resource(unit: CareUnit) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": HSA_ID_SYSTEM, "value": unit.hsa_id}],
        "name": unit.name,
    }


def code(system: str, value: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": value, "display": display}], "text": display}


# --- reading ---------------------------------------------------------------------------------
#
# A message was validated where it was built, but the readers must still refuse one that was
# changed on its way (a dict where a list belongs, a number where a string belongs, a key
# gone) with a TranslationError, never an AttributeError or TypeError from deep inside a
# translator. So every read of the JSON form goes through the typed accessors below. A path
# is dotted from the node given ("period.start", "name.0.family"; a number indexes an array)
# and an error names the resource type, the path and what was expected: never the value
# found, which may be a personnummer, a name or free text.

# The resource types a message may hold: only these are named in an error, because a
# changed resourceType could hold anything.
RESOURCE_TYPES = frozenset(
    {
        "Bundle",
        "CarePlan",
        "CareTeam",
        "DeviceRequest",
        "Communication",
        "Encounter",
        "EpisodeOfCare",
        "Goal",
        "List",
        "MedicationStatement",
        "MessageHeader",
        "Observation",
        "OperationOutcome",
        "Organization",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "RelatedPerson",
        "ServiceRequest",
    }
)

T = TypeVar("T")


def where(node: Any, path: str = "") -> str:
    """``Encounter.period.start``: the element's place, for an error message."""
    kind = node.get("resourceType") if isinstance(node, dict) else None
    label = kind if isinstance(kind, str) and kind in RESOURCE_TYPES else "element"
    return f"{label}.{path}" if path else label


def _wrong(node: Any, path: str, expected: str) -> TranslationError:
    return TranslationError(f"{where(node, path)} must be {expected}")


def _missing(node: Any, path: str) -> TranslationError:
    return TranslationError(f"{where(node, path)} is missing")


def _get(node: Any, path: str) -> Any:
    """The value at ``path`` under ``node``; None when it or a step on the way is absent
    (FHIR has no nulls, so a JSON null is absent too)."""
    here = node
    steps = path.split(".")
    for i, step in enumerate(steps):
        if here is None:
            return None
        if step.isdigit():
            if not isinstance(here, list):
                raise _wrong(node, ".".join(steps[:i]), "an array")
            here = here[int(step)] if int(step) < len(here) else None
        else:
            if not isinstance(here, dict):
                raise _wrong(node, ".".join(steps[:i]), "an object")
            here = here.get(step)
    return here


def _required(maybe: Callable[[Any, str], T | None]) -> Callable[[Any, str], T]:
    """The reader of ``maybe``'s kind that refuses an absent value."""

    def read(node: Any, path: str) -> T:
        found = maybe(node, path)
        if found is None:
            raise _missing(node, path)
        return found

    return read


def maybe_obj(node: Any, path: str) -> dict[str, Any] | None:
    found = _get(node, path)
    if found is None or isinstance(found, dict):
        return found
    raise _wrong(node, path, "an object")


def arr(node: Any, path: str) -> list[dict[str, Any]]:
    """The objects of the array at ``path``; an absent array is empty."""
    found = _get(node, path)
    if found is None:
        return []
    if not isinstance(found, list):
        raise _wrong(node, path, "an array")
    for i, item in enumerate(found):
        if not isinstance(item, dict):
            raise _wrong(node, f"{path}.{i}", "an object")
    return found


def texts(node: Any, path: str) -> list[str]:
    """The strings of the array at ``path``; an absent array is empty."""
    found = _get(node, path)
    if found is None:
        return []
    if not isinstance(found, list):
        raise _wrong(node, path, "an array")
    for i, item in enumerate(found):
        if not isinstance(item, str):
            raise _wrong(node, f"{path}.{i}", "a string")
    return found


def maybe_text(node: Any, path: str) -> str | None:
    found = _get(node, path)
    if found is None or isinstance(found, str):
        return found
    raise _wrong(node, path, "a string")


def maybe_integer(node: Any, path: str) -> int | None:
    found = _get(node, path)
    if found is None:
        return None
    if isinstance(found, int) and not isinstance(found, bool):  # bool is an int to Python
        return found
    raise _wrong(node, path, "an integer")


def number(node: Any, path: str) -> int | float:
    found = _get(node, path)
    if found is None:
        raise _missing(node, path)
    if isinstance(found, int | float) and not isinstance(found, bool) and math.isfinite(found):
        return found
    raise _wrong(node, path, "a finite number")


def maybe_boolean(node: Any, path: str) -> bool | None:
    found = _get(node, path)
    if found is None or isinstance(found, bool):
        return found
    raise _wrong(node, path, "a boolean")


def maybe_instant(node: Any, path: str) -> datetime | None:
    """A FHIR dateTime with a time and a time zone, as both journals need one."""
    found = maybe_text(node, path)
    if found is None:
        return None
    try:
        parsed = datetime.fromisoformat(found)
    except ValueError:  # its message quotes the value
        raise _wrong(node, path, "a date-time") from None
    if parsed.tzinfo is None:
        raise _wrong(node, path, "a date-time with a time zone")
    return parsed


def maybe_day(node: Any, path: str) -> date | None:
    """The calendar date of a FHIR date or dateTime."""
    found = maybe_text(node, path)
    if found is None:
        return None
    try:
        return date.fromisoformat(found[:10])
    except ValueError:  # its message quotes the value
        raise _wrong(node, path, "a date") from None


# The required readers: a missing value is a TranslationError naming its place.
obj = _required(maybe_obj)
text = _required(maybe_text)
integer = _required(maybe_integer)
boolean = _required(maybe_boolean)
instant = _required(maybe_instant)


def known(table: Mapping[str, T], key: str | None, what: str) -> T:
    """``table[key]``, or a TranslationError naming ``what`` (never the key: it came from
    the message)."""
    if key is None or key not in table:
        raise TranslationError(f"{what} is missing or not a known code")
    return table[key]


def resources(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = (maybe_obj(e, "resource") for e in arr(doc, "entry"))
    return [r for r in found if r is not None and r.get("resourceType") == kind]


def one(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources(doc, kind)
    if len(found) != 1:
        raise TranslationError(f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def message_id_in(doc: dict[str, Any]) -> str:
    """The message id of the message ``doc``: its MessageHeader's id. Never ``Bundle.id``,
    which names one send of the message and changes with every one."""
    return text(one(doc, "MessageHeader"), "id")


def resolve(doc: dict[str, Any], node: Any, path: str, kind: str | None = None) -> dict[str, Any]:
    """The resource the Reference at ``path`` under ``node`` points to, in this message; if
    ``kind`` is given, it must be a resource of that type."""
    url = text(node, f"{path}.reference")
    for entry in arr(doc, "entry"):
        if entry.get("fullUrl") == url:
            resource = obj(entry, "resource")
            if kind is not None and resource.get("resourceType") != kind:
                raise TranslationError(f"{where(node, path)} does not point to a {kind}")
            return resource
    raise TranslationError(f"{where(node, path)} points outside the message")


def extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((x for x in arr(resource, "extension") if x.get("url") == url), None)


def required_extension(resource: dict[str, Any], url: str) -> dict[str, Any]:
    found = extension(resource, url)
    if found is None:
        raise TranslationError(f"{where(resource)} lacks extension {url.rsplit('/', 1)[-1]}")
    return found


def coded(concept: dict[str, Any] | None, system: str) -> str | None:
    """The code from ``system`` in a CodeableConcept; None when it has none."""
    for coding in arr(concept, "coding"):
        if coding.get("system") == system:
            return text(coding, "code")
    return None


def is_protected(patient: dict[str, Any]) -> bool:
    return any(label.get("code") == PROTECTED_IDENTITY for label in arr(patient, "meta.security"))


def read_patient(resource: dict[str, Any]) -> PatientInfo:
    if resource.get("resourceType") != "Patient":
        raise TranslationError("patient reference does not point to a Patient")
    ident = obj(resource, "identifier.0")
    try:
        identifier = identifier_from_fhir(text(ident, "system"), text(ident, "value"))
    except InvalidIdentifier:  # its message names no value either, but stay terse
        raise TranslationError("Patient.identifier.0 is not a valid identifier") from None
    protected = is_protected(resource)
    address = None
    if not protected and maybe_obj(resource, "address.0") is not None:
        lines = texts(resource, "address.0.line")
        if not lines:
            raise _missing(resource, "address.0.line")
        address = Address(
            ", ".join(lines),
            text(resource, "address.0.postalCode"),
            text(resource, "address.0.city"),
        )
    return PatientInfo(
        identifier=identifier,
        family_name=text(resource, "name.0.family"),
        given_name=" ".join(texts(resource, "name.0.given")),
        address=address,
        protected=protected,
        municipality=municipality_of(resource),
        listed_unit_hsa=listed_unit_of(resource),
    )


def hsa_id(resource: dict[str, Any]) -> str | None:
    """The HSA-id among a resource's identifiers."""
    for i, ident in enumerate(arr(resource, "identifier")):
        if ident.get("system") == HSA_ID_SYSTEM:
            return text(resource, f"identifier.{i}.value")
    return None


def read_unit(resource: dict[str, Any]) -> CareUnit:
    if resource.get("resourceType") != "Organization":
        raise TranslationError("unit reference does not point to an Organization")
    hsa = hsa_id(resource)
    if hsa is None:
        raise TranslationError("Organization has no HSA-id")
    return CareUnit(hsa_id=hsa, name=text(resource, "name"))
