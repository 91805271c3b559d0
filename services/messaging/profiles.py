"""Which profile each resource of a message declares in ``meta.profile``, and the message
shapes the MessageDefinitions state (focus resources, their number).

The profiles are generated into ``contracts/fhir/`` from these tables (``sandbox/conformance``);
:func:`declare_profiles` stamps them on a message where it is built
(:func:`services.messaging.fhir_parts.message_bundle`,
:func:`services.messaging.envelope.response_message`), so no family names a profile itself.
It also types every HSA-id of an Organization, Practitioner or PractitionerRole as ``PRN``
(provider number), as HL7 Sweden's base profiles require. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.vocabulary import (
    BASE_URL,
    EPISODE_KIND_SYSTEM,
    IDENTIFIER_TYPE_SYSTEM,
)

PROVIDER_NUMBER = {"system": IDENTIFIER_TYPE_SYSTEM, "code": "PRN", "display": "Provider number"}
CASE_KIND = "care-transition-case"

# resource type → profile id; one profile per type where the rules do not differ by family
RESOURCE_PROFILES: dict[str, str] = {
    "Bundle": "carebridge-message",
    "CarePlan": "carebridge-sip-careplan",
    "CareTeam": "carebridge-careteam",
    "Communication": "carebridge-communication",
    "Consent": "carebridge-consent",
    "DeviceRequest": "carebridge-devicerequest",
    "Encounter": "carebridge-encounter",
    "EpisodeOfCare": "carebridge-episodeofcare",
    "Goal": "carebridge-goal",
    "List": "carebridge-medication-list",
    "MedicationStatement": "carebridge-medicationstatement",
    "Observation": "carebridge-observation",
    "OperationOutcome": "carebridge-operationoutcome",
    "Organization": "carebridge-organization",
    "Patient": "carebridge-patient",
    "Practitioner": "carebridge-practitioner",
    "PractitionerRole": "carebridge-practitionerrole",
    "Provenance": "carebridge-cancellation",
    "RelatedPerson": "carebridge-relatedperson",
    "ServiceRequest": "carebridge-servicerequest",
}
CASE_PROFILE = "carebridge-case"  # the case's EpisodeOfCare (services.messaging.case)
HSA_TYPED = frozenset({"Organization", "Practitioner", "PractitionerRole"})


def profile_url(profile_id: str) -> str:
    return f"{BASE_URL}/StructureDefinition/{profile_id}"


def header_profile(event: str) -> str:
    """The MessageHeader profile of one event: its event code fixed."""
    return f"carebridge-messageheader-{event}"


def message_definition_url(event: str) -> str:
    return f"{BASE_URL}/MessageDefinition/{event}"


@dataclass(frozen=True, slots=True)
class Focus:
    """A resource ``MessageHeader.focus`` names, in order, and how many of it."""

    type: str
    min: int
    max: int
    profile: str | None = None  # default: RESOURCE_PROFILES[type]

    @property
    def profile_id(self) -> str:
        return self.profile or RESOURCE_PROFILES[self.type]


_CASE = Focus("EpisodeOfCare", 0, 1, CASE_PROFILE)  # the case, last, where there is one
_CONSENT = Focus("Consent", 1, 1)
_STAY = (Focus("Encounter", 1, 1), _CONSENT, _CASE)
EVENT_FOCUS: dict[str, tuple[Focus, ...]] = {
    "admission-notice": _STAY,
    "admission-notice-updated": _STAY,
    "admission-notice-cancelled": _STAY,
    "ready-for-discharge": _STAY,
    "ready-for-discharge-withdrawn": _STAY,
    "discharge-notice": _STAY,
    "consent-withdrawn": _STAY,
    "process-interrupted": _STAY,
    "transfer": _STAY,
    "patient-deceased": _STAY,
    "medication-list": (Focus("List", 1, 1), _CONSENT, _CASE),
    "sip-invitation": (Focus("CarePlan", 1, 1), _CONSENT, _CASE),
    "sip-created": (Focus("CarePlan", 1, 1), _CONSENT, _CASE),
    "sip-updated": (Focus("CarePlan", 1, 1), _CONSENT, _CASE),
    "sip-completed": (Focus("CarePlan", 1, 1), _CONSENT, _CASE),
    "admission-answer": (
        Focus("Encounter", 1, 1),
        Focus("PractitionerRole", 0, 1),
        _CONSENT,
        _CASE,
    ),
    "ready-to-receive": (
        Focus("Encounter", 1, 1),
        Focus("EpisodeOfCare", 1, 1),
        _CONSENT,
        _CASE,
    ),
    "read-receipt": (Focus("Communication", 1, 1), _CONSENT, _CASE),
    "administrative-message": (Focus("Communication", 1, 1), _CONSENT, _CASE),
    "message-cancelled": (Focus("Provenance", 1, 1), _CASE),
    "delivery-outcome": (),
    "receipt": (),
}
ANSWERS = frozenset({"admission-answer", "ready-to-receive"})
"""Events whose header may name the business message they answer (extension answers-message)."""
RESPONSES = ("receipt", "delivery-outcome")
"""The technical responses every business message may get; they get none themselves."""


def is_case(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "EpisodeOfCare" and any(
        c.get("system") == EPISODE_KIND_SYSTEM and c.get("code") == CASE_KIND
        for t in resource.get("type") or ()
        if isinstance(t, dict)
        for c in t.get("coding") or ()
        if isinstance(c, dict)
    )


def profile_of(resource: dict[str, Any], event: str) -> str | None:
    kind = resource.get("resourceType")
    if kind == "MessageHeader":
        return header_profile(event)
    if is_case(resource):
        return CASE_PROFILE
    return RESOURCE_PROFILES.get(kind) if isinstance(kind, str) else None


def declare_profiles(bundle: dict[str, Any], event: str) -> dict[str, Any]:
    """``bundle`` with ``meta.profile`` on itself and every resource in it, and HSA-ids
    typed PRN; new dicts where anything changes (the builders' dicts are left alone)."""
    entries = [
        {**e, "resource": _conform(e["resource"], event)}
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        else e
        for e in bundle.get("entry") or ()
    ]
    return _with_profile({**bundle, "entry": entries}, profile_of(bundle, event))


def _conform(resource: dict[str, Any], event: str) -> dict[str, Any]:
    if resource.get("resourceType") in HSA_TYPED and isinstance(resource.get("identifier"), list):
        resource = {**resource, "identifier": [_typed(i) for i in resource["identifier"]]}
    return _with_profile(resource, profile_of(resource, event))


def _typed(identifier: Any) -> Any:
    if not isinstance(identifier, dict) or identifier.get("system") != HSA_ID_SYSTEM:
        return identifier
    if "type" in identifier:
        return identifier
    return {**identifier, "type": {"coding": [PROVIDER_NUMBER]}}


def _with_profile(resource: dict[str, Any], profile_id: str | None) -> dict[str, Any]:
    if profile_id is None:
        return resource
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    url = profile_url(profile_id)
    profiles = [p for p in (meta or {}).get("profile") or () if p != url]
    return {**resource, "meta": {**(meta or {}), "profile": [*profiles, url]}}
