"""Resource profiles: differentials on FHIR R4 core, one per resource type the broker sends
(:data:`services.messaging.profiles.RESOURCE_PROFILES`), the case's EpisodeOfCare, and one
MessageHeader profile per event with its event code fixed.

HL7 Sweden's base-profile rules are restated here rather than inherited (the SE base package is
not available to the offline validator): the identifier systems of personnummer,
samordningsnummer and the national reserve number, HSA-id typed PRN, the organisation number
typed XX (``contracts/fhir/README.md``, "Swedish base-profile rules")."""

from __future__ import annotations

from typing import Any

from sandbox.conformance.common import (
    CORE,
    FHIR_VERSION,
    element,
    extension_slice,
    identifier_slice,
    metadata,
    system_slicing,
    url_slicing,
)
from services.messaging import profiles as p
from services.messaging import vocabulary as v
from services.messaging.envelope import EVENT_DISPLAY, EventCode
from services.messaging.fhir_parts import CONFIDENTIALITY_SYSTEM
from services.messaging.identifiers import (
    HSA_ID_SYSTEM,
    NATIONAL_RESERVE_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
)

PRN = {"system": v.IDENTIFIER_TYPE_SYSTEM, "code": "PRN"}
XX = {"system": v.IDENTIFIER_TYPE_SYSTEM, "code": "XX"}


def _ref(*targets: str) -> list[dict[str, Any]]:
    return [{"code": "Reference", "targetProfile": [f"{CORE}/{t}" for t in targets]}]


def _extensions(path: str, *slices: tuple[str, str]) -> list[dict[str, Any]]:
    return [url_slicing(f"{path}.extension")] + [
        extension_slice(f"{path}.extension", name, url) for name, url in slices
    ]


def _hsa(path: str, *, organisation_number: bool = False, min: int = 0) -> list[dict[str, Any]]:
    """Identifiers sliced as HL7 Sweden's base profiles slice them; a unit is always named by
    an identifier (its HSA-id), its name only when the sender gives one."""
    found = [system_slicing(f"{path}.identifier", "HL7 Sweden: by system")]
    if min:
        found[0]["min"] = min
    found += identifier_slice(
        f"{path}.identifier", "hsaid", HSA_ID_SYSTEM, short="HSA-id", type_coding=PRN
    )
    if organisation_number:
        found += identifier_slice(
            f"{path}.identifier",
            "organizationIdentifier",
            v.ORGANISATION_NUMBER_SYSTEM,
            short="Organisationsnummer",
            type_coding=XX,
        )
    return found


def _patient() -> list[dict[str, Any]]:
    ident = system_slicing(
        "Patient.identifier",
        "HL7 Sweden: personnummer, samordningsnummer, national reserve number; a region's own "
        "reserve number under urn:oid:<the region's OID> (open slicing)",
    )
    ident["min"] = 1
    return [
        *_extensions(
            "Patient",
            ("municipality", v.MUNICIPALITY_EXTENSION),
            ("interpreterRequired", v.INTERPRETER_REQUIRED_URL),
        ),
        ident,
        *identifier_slice(
            "Patient.identifier", "personnummer", PERSONNUMMER_SYSTEM, short="Personnummer"
        ),
        *identifier_slice(
            "Patient.identifier",
            "samordningsnummer",
            SAMORDNINGSNUMMER_SYSTEM,
            short="Samordningsnummer",
        ),
        *identifier_slice(
            "Patient.identifier",
            "nationelltReservnummer",
            NATIONAL_RESERVE_SYSTEM,
            short="Nationellt reservnummer",
        ),
        element("Patient.name", min=1),
    ]


def _encounter() -> list[dict[str, Any]]:
    return [
        *_extensions(
            "Encounter",
            ("expectedDischarge", v.EXPECTED_DISCHARGE_URL),
            ("cancellationReason", v.CANCELLATION_REASON_URL),
            ("readyForDischarge", v.READY_FOR_DISCHARGE_URL),
            ("withdrawalReason", v.WITHDRAWAL_REASON_URL),
            ("processInterrupted", v.PROCESS_INTERRUPTED_URL),
            ("transfer", v.TRANSFER_URL),
        ),
        system_slicing("Encounter.identifier", "by system"),
        *identifier_slice(
            "Encounter.identifier",
            "takecare",
            v.TAKECARE_ENCOUNTER_SYSTEM,
            short="TakeCare's encounter id",
        ),
        element("Encounter.subject", min=1, type=_ref("Patient")),
    ]


def _medication_list() -> list[dict[str, Any]]:
    return [
        *_extensions("List", ("documentVersion", v.DOCUMENT_VERSION_URL)),
        system_slicing("List.identifier", "by system"),
        *identifier_slice(
            "List.identifier",
            "takecare",
            v.TAKECARE_MEDICATION_LIST_SYSTEM,
            short="TakeCare's list id",
        ),
        *identifier_slice(
            "List.identifier",
            "treserva",
            v.TRESERVA_MEDICATION_LIST_SYSTEM,
            short="Treserva's list id",
        ),
        element("List.code", min=1, binding=_bound("medication-list-context")),
        element("List.subject", min=1, type=_ref("Patient")),
    ]


def _care_plan() -> list[dict[str, Any]]:
    return [
        *_extensions(
            "CarePlan",
            ("sipConsent", v.SIP_CONSENT_URL),
            ("sipMeeting", v.SIP_MEETING_URL),
            ("sipMeetingLocation", v.SIP_MEETING_LOCATION_URL),
            ("documentVersion", v.DOCUMENT_VERSION_URL),
        ),
        system_slicing("CarePlan.identifier", "by system"),
        *identifier_slice("CarePlan.identifier", "sip", v.SIP_ID_SYSTEM, short="The SIP's id"),
        element(
            "CarePlan.category",
            min=1,
            patternCodeableConcept={
                "coding": [{"system": v.CARE_PLAN_CATEGORY_SYSTEM, "code": "sip"}]
            },
        ),
        element("CarePlan.subject", type=_ref("Patient")),
        *_extensions("CarePlan.activity", ("sipActivityId", v.SIP_ACTIVITY_ID_URL)),
        *_extensions(
            "CarePlan.activity.detail", ("sipResponsibleRole", v.SIP_RESPONSIBLE_ROLE_URL)
        ),
    ]


def _bound(code_system_id: str, strength: str = "extensible") -> dict[str, str]:
    return {"strength": strength, "valueSet": v.CODE_SYSTEMS[code_system_id].value_set}


def _case() -> list[dict[str, Any]]:
    ident = system_slicing("EpisodeOfCare.identifier", "by system")
    ident["min"] = 1
    return [
        ident,
        *identifier_slice(
            "EpisodeOfCare.identifier", "caseId", v.CASE_ID_SYSTEM, short="The case id (ärende-id)"
        ),
        element(
            "EpisodeOfCare.type",
            min=1,
            patternCodeableConcept={
                "coding": [{"system": v.EPISODE_KIND_SYSTEM, "code": p.CASE_KIND}]
            },
        ),
        element("EpisodeOfCare.patient", type=_ref("Patient")),
    ]


DIFFERENTIALS: dict[str, Any] = {
    "carebridge-message": lambda: [
        element("Bundle.identifier.system", fixedUri=v.BUSINESS_KEY_SYSTEM),
        element("Bundle.type", fixedCode="message"),
        element("Bundle.timestamp", min=1),
        element("Bundle.entry", min=1),
        element("Bundle.entry.fullUrl", min=1),
        element("Bundle.entry.resource", min=1),
    ],
    "carebridge-patient": _patient,
    "carebridge-organization": lambda: _hsa("Organization", organisation_number=True, min=1),
    "carebridge-practitioner": lambda: _hsa("Practitioner"),
    "carebridge-practitionerrole": lambda: _hsa("PractitionerRole"),
    "carebridge-encounter": _encounter,
    "carebridge-medication-list": _medication_list,
    "carebridge-medicationstatement": lambda: [
        *_extensions(
            "MedicationStatement",
            ("administeredBy", v.ADMINISTERED_BY_URL),
            ("doseDispensed", v.DOSE_DISPENSED_URL),
            ("lineChange", v.MEDICATION_LINE_CHANGE_URL),
        ),
        element("MedicationStatement.subject", type=_ref("Patient")),
    ],
    "carebridge-sip-careplan": _care_plan,
    "carebridge-consent": lambda: [
        element("Consent.patient", min=1, type=_ref("Patient")),
        element("Consent.policyRule", min=1, binding=_bound("consent-basis")),
        element("Consent.provision", min=1),
        element("Consent.provision.class", binding=_bound("message-family")),
    ],
    "carebridge-episodeofcare": lambda: [
        element("EpisodeOfCare.patient", type=_ref("Patient")),
    ],
    "carebridge-case": _case,
    "carebridge-observation": lambda: [
        element("Observation.subject", min=1, type=_ref("Patient")),
    ],
    "carebridge-communication": lambda: [
        element("Communication.subject", min=1, type=_ref("Patient")),
    ],
    "carebridge-cancellation": lambda: [
        element("Provenance.target", min=1, max="1"),
        element("Provenance.target.identifier", min=1),
        element("Provenance.target.identifier.system", min=1, fixedUri="urn:ietf:rfc:3986"),
        element("Provenance.target.identifier.value", min=1),
        # a differential lists its elements in the base resource's order: reason, then activity
        element("Provenance.reason", min=1, max="1"),
        element(
            "Provenance.activity",
            min=1,
            patternCodeableConcept={
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                        "code": "NULLIFY",
                    }
                ]
            },
        ),
        element("Provenance.agent", max="1"),
        # the canceller as a PractitionerRole: the role carries the HSA-id and the unit
        element("Provenance.agent.who", type=_ref("PractitionerRole")),
        element("Provenance.agent.onBehalfOf", type=_ref("Organization")),
    ],
    "carebridge-careteam": lambda: [element("CareTeam.subject", type=_ref("Patient"))],
    "carebridge-goal": lambda: [element("Goal.subject", type=_ref("Patient"))],
    "carebridge-devicerequest": lambda: [
        element("DeviceRequest.subject", type=_ref("Patient")),
    ],
    "carebridge-relatedperson": lambda: [
        element("RelatedPerson.patient", type=_ref("Patient")),
    ],
    "carebridge-servicerequest": lambda: [
        element("ServiceRequest.subject", type=_ref("Patient")),
    ],
    "carebridge-operationoutcome": lambda: [
        element(
            "OperationOutcome.issue.diagnostics",
            short="What failed, never patient data",
        ),
    ],
}

TITLES = {
    "carebridge-cancellation": (
        "Provenance",
        "carebridge cancellation (makulering)",
        "Who cancelled which earlier message, when and why: the target is the cancelled "
        "message's id (urn:uuid), the activity v3-DataOperation NULLIFY.",
    ),
    "carebridge-message": (
        "Bundle",
        "carebridge message",
        "A FHIR message: MessageHeader first, "
        "its id the message id, Bundle.identifier the business key.",
    ),
    "carebridge-case": (
        "EpisodeOfCare",
        "Case (ärende)",
        "The case of one hospital stay: "
        "every message of the stay names it last in MessageHeader.focus.",
    ),
}


# Invariants a profile adds on its root element. R4's validator only warns about a urn:uuid
# reference no entry of the Bundle has (Bundle_BUNDLE_Not_Local); a message whose parts do not
# all travel with it cannot be processed, so carebridge-message makes it an error.
ROOT_CONSTRAINTS: dict[str, list[dict[str, Any]]] = {
    # The identifier slicing stays open (a region's reserve numbers are urn:oid:<its OID>, a
    # setting), so what it leaves open is closed here: HL7 Sweden's systems or an OID.
    "carebridge-patient": [
        {
            "key": "cb-pat-1",
            "severity": "error",
            "human": "Every identifier is a personnummer, samordningsnummer or national reserve "
            "number (HL7 Sweden's systems), or a region's reserve number under urn:oid:",
            "expression": "identifier.all("
            f"system = '{PERSONNUMMER_SYSTEM}' or system = '{SAMORDNINGSNUMMER_SYSTEM}' "
            f"or system = '{NATIONAL_RESERVE_SYSTEM}' or system.startsWith('urn:oid:'))",
            "source": p.profile_url("carebridge-patient"),
        },
        {
            "key": "cb-pat-2",
            "severity": "error",
            "human": "Security labels come from HL7 Sweden's national set (SecurityLabel) or "
            "HL7's confidentiality codes, never a local code",
            "expression": "meta.security.all("
            f"system = '{v.SECURITY_LABEL_SYSTEM}' or system = '{CONFIDENTIALITY_SYSTEM}')",
            "source": p.profile_url("carebridge-patient"),
        },
    ],
    "carebridge-message": [
        {
            "key": "cb-msg-1",
            "severity": "error",
            "human": "Every urn:uuid reference resolves to an entry of the message (its fullUrl)",
            "expression": "entry.resource.descendants().ofType(Reference).reference"
            ".where(startsWith('urn:uuid:')).all($this in %resource.entry.fullUrl)",
            "source": p.profile_url("carebridge-message"),
        }
    ],
}


def _profile(
    profile_id: str, kind: str, title: str, description: str, differential: list[dict[str, Any]]
) -> dict[str, Any]:
    root = element(kind, short=title, definition=description)
    if profile_id in ROOT_CONSTRAINTS:
        root["constraint"] = ROOT_CONSTRAINTS[profile_id]
    return {
        **metadata("StructureDefinition", profile_id, title, description),
        "fhirVersion": FHIR_VERSION,
        "kind": "resource",
        "abstract": False,
        "type": kind,
        "baseDefinition": f"{CORE}/{kind}",
        "derivation": "constraint",
        "differential": {"element": [root, *differential]},
    }


def resource_profiles() -> list[dict[str, Any]]:
    kinds = {profile_id: kind for kind, profile_id in p.RESOURCE_PROFILES.items()}
    found = []
    for profile_id, build in DIFFERENTIALS.items():
        kind, title, description = TITLES.get(profile_id) or (
            kinds[profile_id],
            f"carebridge {kinds[profile_id]}",
            f"A {kinds[profile_id]} in a carebridge message.",
        )
        found.append(_profile(profile_id, kind, title, description, build()))
    return found


def header_profiles() -> list[dict[str, Any]]:
    found = []
    for event in EventCode:
        focus = p.EVENT_FOCUS[event.value]
        rules = [
            element(
                "MessageHeader.event[x]",
                type=[{"code": "Coding"}],
                patternCoding={"system": v.EVENT_SYSTEM, "code": event.value},
            ),
            element("MessageHeader.source.endpoint", short="urn:carebridge:system:<system>"),
        ]
        if event.value in p.ANSWERS:
            rules.insert(
                0,
                extension_slice("MessageHeader.extension", "answersMessage", v.ANSWERS_MESSAGE_URL),
            )
            rules.insert(0, url_slicing("MessageHeader.extension"))
        if event.value in p.RESPONSES:
            rules += [
                element("MessageHeader.response", min=1),
                *_extensions(
                    "MessageHeader.response",
                    ("receiverRecordId", v.RECEIVER_RECORD_ID_URL),
                    ("receiverRecordedAt", v.RECEIVER_RECORDED_AT_URL),
                ),
            ]
        else:
            rules.append(
                element(
                    "MessageHeader.focus",
                    min=sum(f.min for f in focus),
                    max=str(sum(f.max for f in focus)),
                    type=_ref(*dict.fromkeys(f.type for f in focus)),
                )
            )
        display = EVENT_DISPLAY[event]
        found.append(
            _profile(
                p.header_profile(event.value),
                "MessageHeader",
                f"MessageHeader: {display}",
                f"The MessageHeader of the event {event.value} ({display}).",
                rules,
            )
        )
    return found
