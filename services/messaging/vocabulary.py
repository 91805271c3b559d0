"""This project's own FHIR vocabulary: the CodeSystems, extensions and identifier systems
(NamingSystems) both adapters use to write and to read the messages, declared once here.

National systems (personnummer, HSA-id, NPL, ATC, SNOMED CT, HL7 Sweden's security labels)
are used wherever one exists; these fill the gaps. Every project URL is a declaration below,
under the canonical base (:mod:`services.messaging.canonical`), and the generator
(``sandbox/conformance``) writes a conformance resource for each into ``contracts/fhir/``: a
CodeSystem and ValueSet, an extension StructureDefinition, a NamingSystem. A URL used in code
is one of these constants, so it cannot be used without being declared (tests/unit/
test_conformance.py checks every URL in the goldens against the generated resources).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.messaging.canonical import CANONICAL_BASE

BASE_URL = CANONICAL_BASE
_CS = f"{BASE_URL}/CodeSystem"
_SD = f"{BASE_URL}/StructureDefinition"
_NS = f"{BASE_URL}/NamingSystem"


@dataclass(frozen=True, slots=True)
class CodeSystemDecl:
    """A project CodeSystem; its concepts are the code's own lists (the generator reads
    them, see ``sandbox/conformance/concepts.py``). ``complete=False``: a national list the
    project does not copy (SCB's kommunkod); published as a fragment of the codes it uses."""

    id: str
    title: str
    description: str
    complete: bool = True

    @property
    def url(self) -> str:
        return f"{_CS}/{self.id}"

    @property
    def value_set(self) -> str:
        return f"{BASE_URL}/ValueSet/{self.id}"


@dataclass(frozen=True, slots=True)
class ExtensionPart:
    """A sub-extension of a complex extension: its url (a bare name) and value types."""

    name: str
    types: tuple[str, ...]
    description: str
    min: int = 0
    target: str | None = None  # Reference: the target resource type
    binding: str | None = None  # Coding / CodeableConcept: a project CodeSystem id


@dataclass(frozen=True, slots=True)
class ExtensionDecl:
    """A project extension: where it may appear (element contexts) and its value types, or
    its parts when it is complex."""

    id: str
    title: str
    description: str
    contexts: tuple[str, ...]
    types: tuple[str, ...] = ()
    parts: tuple[ExtensionPart, ...] = ()
    binding: str | None = None  # a project CodeSystem id (required binding of its ValueSet)

    @property
    def url(self) -> str:
        return f"{_SD}/{self.id}"


@dataclass(frozen=True, slots=True)
class NamingSystemDecl:
    """A project identifier system (NamingSystem, kind identifier)."""

    id: str
    title: str
    description: str

    @property
    def url(self) -> str:
        return f"{_NS}/{self.id}"


CODE_SYSTEMS: dict[str, CodeSystemDecl] = {}
EXTENSIONS: dict[str, ExtensionDecl] = {}
NAMING_SYSTEMS: dict[str, NamingSystemDecl] = {}


def code_system(id: str, title: str, description: str, *, complete: bool = True) -> str:
    CODE_SYSTEMS[id] = CodeSystemDecl(id, title, description, complete)
    return CODE_SYSTEMS[id].url


def extension(
    id: str,
    title: str,
    description: str,
    contexts: tuple[str, ...],
    types: tuple[str, ...] = (),
    *,
    parts: tuple[ExtensionPart, ...] = (),
    binding: str | None = None,
) -> str:
    EXTENSIONS[id] = ExtensionDecl(id, title, description, contexts, types, parts, binding)
    return EXTENSIONS[id].url


def naming_system(id: str, title: str, description: str) -> str:
    NAMING_SYSTEMS[id] = NamingSystemDecl(id, title, description)
    return NAMING_SYSTEMS[id].url


# --- national systems ---------------------------------------------------------------------
NPL_ID_SYSTEM = "urn:oid:1.2.752.129.2.1.5.1"  # NPL-id: medicinal product
NPL_PACK_ID_SYSTEM = "urn:oid:1.2.752.129.2.1.5.2"  # NPL pack id
ATC_SYSTEM = "http://www.whocc.no/atc"
SNOMED_SYSTEM = "http://snomed.info/sct"
SNOMED_SE_VERSION = "http://snomed.info/sct/45991000052106"
UCUM_SYSTEM = "http://unitsofmeasure.org"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"  # PRN: provider number
ORGANISATION_NUMBER_SYSTEM = "urn:oid:2.5.4.97"  # organisationsnummer (SEBaseOrganization, XX)
# HL7 Sweden's base profiles (http://hl7.se/fhir/ig/base): security labels of the Swedish
# authorities, code skyddadFolkbokforing (Skatteverket) and sekretessmarkering (OSL 22:1)
SE_BASE = "http://hl7.se/fhir/ig/base"
SECURITY_LABEL_SYSTEM = f"{SE_BASE}/CodeSystem/SecurityLabel"
SECURITY_LABEL_VALUE_SET = f"{SE_BASE}/ValueSet/SecurityLabelVS"

# --- the message envelope -------------------------------------------------------------------
EVENT_SYSTEM = code_system(
    "care-transition-event",
    "Care transition events",
    "MessageHeader.eventCoding of every carebridge message: one code per event of Lag "
    "2017:612's care transition, and the technical delivery outcome and receipt.",
)
BUSINESS_KEY_SYSTEM = naming_system(
    "business-key",
    "Message business key",
    "Bundle.identifier: source system|source event or document id|version. The message id "
    "is a UUIDv5 of it; the receiver dedupes on it.",
)
# A receipt's evidence, on MessageHeader.response
RECEIVER_RECORD_ID_URL = extension(
    "receiver-record-id",
    "Receiver record id",
    "The receiving journal's own id of the record it stored (at most 64 characters).",
    ("MessageHeader.response",),
    ("string",),
)
RECEIVER_RECORDED_AT_URL = extension(
    "receiver-recorded-at",
    "Receiver recorded at",
    "When the receiving journal stored the record.",
    ("MessageHeader.response",),
    ("instant",),
)
# MessageHeader: the message this one answers (urn:ietf:rfc:3986, urn:uuid:<message id>). Not
# MessageHeader.response: the router reserves that for technical results.
ANSWERS_MESSAGE_URL = extension(
    "answers-message",
    "Answers message",
    "The business message this one answers (Identifier urn:ietf:rfc:3986 | urn:uuid:<id>); "
    "MessageHeader.response is kept for technical results.",
    ("MessageHeader",),
    ("Identifier",),
)
URI_SYSTEM = "urn:ietf:rfc:3986"  # Identifier.system of a message id written urn:uuid:<id>
SUPERSEDED_TAG_SYSTEM = code_system(
    "delivery-tag",
    "Delivery tags",
    "Bundle.meta.tag of a delivered message: superseded, a plain code (the MessageHeader's "
    "superseded-by extension names the newer message).",
)
# MessageHeader of an older version of a versioned document (SIP, medication list) delivered
# after a newer one: the newer message, as answers-message names a message. Never a
# Coding.display: a display is for people, and no id belongs in one.
SUPERSEDED_BY_URL = extension(
    "superseded-by",
    "Superseded by",
    "An older version of a versioned document delivered after a newer one: the newer "
    "message (Identifier urn:ietf:rfc:3986 | urn:uuid:<its message id>). The journal files "
    "this one and never applies it over the newer one.",
    ("MessageHeader",),
    ("Identifier",),
)

# --- the case (ärende) and the patient ----------------------------------------------------------
CASE_ID_SYSTEM = naming_system(
    "case-id",
    "Case id (ärende-id)",
    "The case of one hospital stay: a UUIDv5 of takecare|<encounter id>.",
)
EPISODE_KIND_SYSTEM = code_system(
    "episode-kind",
    "EpisodeOfCare kinds",
    "EpisodeOfCare.type that tells the case's EpisodeOfCare from those that describe care.",
)
MUNICIPALITY_EXTENSION = extension(
    "municipality-of-residence",
    "Municipality of residence (folkbokföringskommun)",
    "The patient's municipality of residence as SCB's four-digit kommunkod; kept apart from "
    "the address, which a protected identity never sends.",
    ("Patient",),
    ("Coding",),
    binding="kommunkod",
)
KOMMUNKOD_SYSTEM = code_system(
    "kommunkod",
    "Kommunkod",
    "SCB's four-digit municipality codes (kommunkod). The list is SCB's and is not copied: "
    "this CodeSystem is a fragment, the municipalities of the sandbox regions' unit directories.",
    complete=False,
)

# --- identifier systems of the source journals --------------------------------------------
TAKECARE_ENCOUNTER_SYSTEM = naming_system(
    "takecare-encounter-id", "TakeCare encounter id", "TakeCare's id of a hospital stay."
)
TAKECARE_MEDICATION_LIST_SYSTEM = naming_system(
    "takecare-medication-list-id",
    "TakeCare medication list id",
    "TakeCare's id of a medication list document.",
)
TRESERVA_MEDICATION_LIST_SYSTEM = naming_system(
    "treserva-medication-list-id",
    "Treserva medication list id",
    "Treserva's id of a medication list document.",
)
SIP_ID_SYSTEM = naming_system(  # the SIP lives in TakeCare's SIP module
    "sip-id", "SIP id", "The id of a SIP (samordnad individuell plan) in TakeCare's SIP module."
)

# --- CodeSystems --------------------------------------------------------------------------
OBSERVATION_SYSTEM = code_system(
    "care-transition-observation",
    "Care transition observations",
    "Observation.code of the information a notice carries (reason, status, needs).",
)
DISCHARGE_DESTINATION_SYSTEM = code_system(
    "discharge-destination",
    "Discharge destinations",
    "Encounter.hospitalization.dischargeDisposition: where the patient goes.",
)
MEDICATION_LIST_CONTEXT_SYSTEM = code_system(
    "medication-list-context",
    "Medication list contexts",
    "List.code: at which point of the stay a medication list was made.",
)
ADMINISTERED_BY_SYSTEM = code_system(
    "medication-administered-by",
    "Medication administered by",
    "Who gives the patient the medicine (extension administered-by).",
)
CARE_PLAN_CATEGORY_SYSTEM = code_system(
    "care-plan-category", "Care plan categories", "CarePlan.category: sip."
)
SIP_ROLE_SYSTEM = code_system(
    "sip-role", "SIP roles", "The part a participant or a responsible unit plays in a SIP."
)
MEDICATION_LINE_CHANGE_SYSTEM = code_system(
    "medication-line-change",
    "Medication line changes",
    "How a medication line changed since the last list (extension medication-line-change).",
)
CONSENT_BASIS_SYSTEM = code_system(
    "consent-basis",
    "Consent basis",
    "Consent.policyRule: the legal basis on which information is shared (samtycke, "
    "menprövning, nödsituation).",
)
UNIT_KIND_SYSTEM = code_system(
    "unit-kind",
    "Unit kinds",
    "Consent.provision.actor.role: the kind of unit a recipient is.",
)
MESSAGE_FAMILY_SYSTEM = code_system(
    "message-family",
    "Message families",
    "Consent.provision.class: the message families a consent covers.",
)
MUNICIPAL_SERVICE_SYSTEM = code_system(
    "municipal-service",
    "Municipal services",
    "EpisodeOfCare.type of the municipality's services (hemtjänst, hemsjukvård, ...).",
)
PROCESS_INTERRUPTION_REASON_SYSTEM = code_system(
    "process-interruption-reason",
    "Process interruption reasons",
    "Why the discharge process was interrupted (extension process-interrupted).",
)

# --- planning information at discharge (planeringsunderlag, discharge-readiness family) ------
ISO_9999_SYSTEM = "urn:iso:std:iso:9999"  # assistive products (hjälpmedel)
BCP47_SYSTEM = "urn:ietf:bcp:47"  # Patient.communication.language
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"  # NOK, SPS, DAU, …
ADL_ACTIVITY_SYSTEM = code_system(
    "adl-activity", "ADL activities", "Observation.code of a status of daily living (ADL)."
)
ADL_LEVEL_SYSTEM = code_system(
    "adl-level", "ADL levels", "Observation.valueCodeableConcept: how much help the patient needs."
)
LEGAL_REPRESENTATIVE_SYSTEM = code_system(
    "legal-representative",
    "Legal representatives",
    "RelatedPerson.relationship of a legal representative (god man, förvaltare).",
)
CARE_TEAM_ROLE_SYSTEM = code_system(
    "care-team-role", "Care team roles", "CareTeam.participant.role: fast vårdkontakt."
)
# Patient: valueBoolean, HL7's core extension (the patient needs an interpreter)
INTERPRETER_REQUIRED_URL = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"

# --- extensions ---------------------------------------------------------------------------
EXPECTED_DISCHARGE_URL = extension(
    "expected-discharge",
    "Expected discharge",
    "When the hospital expects to discharge the patient (beräknad utskrivning).",
    ("Encounter",),
    ("dateTime",),
)
CANCELLATION_REASON_URL = extension(
    "cancellation-reason",
    "Cancellation reason",
    "Why an admission notice was cancelled (makulerat).",
    ("Encounter",),
    ("string",),
)
READY_FOR_DISCHARGE_URL = extension(
    "ready-for-discharge",
    "Ready for discharge",
    "When the patient was judged ready for discharge (utskrivningsklar).",
    ("Encounter",),
    ("dateTime",),
)
WITHDRAWAL_REASON_URL = extension(
    "withdrawal-reason",
    "Withdrawal reason",
    "Why ready-for-discharge was withdrawn (återtag).",
    ("Encounter",),
    ("string",),
)
ADMINISTERED_BY_URL = extension(
    "administered-by",
    "Administered by",
    "Who gives the patient the medicine.",
    ("MedicationStatement",),
    ("CodeableConcept",),
    binding="medication-administered-by",
)
SIP_CONSENT_URL = extension(
    "sip-consent",
    "SIP consent",
    "The patient's consent to the SIP: given, when it was recorded, and a note.",
    ("CarePlan",),
    parts=(
        ExtensionPart("given", ("boolean",), "Whether the patient consented.", min=1),
        ExtensionPart("recordedAt", ("dateTime",), "When the consent was recorded."),
        ExtensionPart("note", ("string",), "A note on the consent."),
    ),
)
SIP_MEETING_URL = extension(
    "sip-meeting",
    "SIP meeting",
    "When the SIP meeting is held.",
    ("CarePlan",),
    ("Period", "dateTime"),
)
DOCUMENT_VERSION_URL = extension(
    "document-version",
    "Document version",
    "The version of a versioned document (SIP, medication list).",
    ("List", "CarePlan"),
    ("positiveInt",),
)
MEDICATION_STRENGTH_URL = extension(
    "medication-strength",
    "Medication strength",
    "The strength of the medicine as the journal wrote it, on medicationCodeableConcept.",
    ("CodeableConcept",),
    ("string",),
)
MEDICATION_FORM_URL = extension(
    "medication-form",
    "Medication form",
    "The dose form of the medicine as the journal wrote it, on medicationCodeableConcept.",
    ("CodeableConcept",),
    ("string",),
)
DOSE_DISPENSED_URL = extension(
    "dose-dispensed",
    "Dose dispensed",
    "Whether the medicine is dose dispensed (dosdispensering).",
    ("MedicationStatement",),
    ("boolean",),
)
MEDICATION_LINE_CHANGE_URL = extension(
    "medication-line-change",
    "Medication line change",
    "How the line changed since the last list, and why.",
    ("MedicationStatement",),
    parts=(
        ExtensionPart(
            "type", ("Coding",), "The kind of change.", min=1, binding="medication-line-change"
        ),
        ExtensionPart("reason", ("string",), "Why it changed."),
    ),
)

# --- SIP -----------------------------------------------------------------------------------
SIP_ACTIVITY_ID_URL = extension(
    "sip-activity-id",
    "SIP activity id",
    "The SIP's own id of an activity.",
    ("CarePlan.activity",),
    ("string",),
)
SIP_RESPONSIBLE_ROLE_URL = extension(
    "sip-responsible-role",
    "SIP responsible role",
    "The SIP role responsible for an activity.",
    ("CarePlan.activity.detail",),
    ("CodeableConcept",),
    binding="sip-role",
)
SIP_MEETING_LOCATION_URL = extension(
    "sip-meeting-location",
    "SIP meeting location",
    "Where the SIP meeting is held.",
    ("CarePlan",),
    ("string",),
)

# --- the whole process (issue 20) -----------------------------------------------------------
PROCESS_INTERRUPTED_URL = extension(
    "process-interrupted",
    "Process interrupted",
    "The discharge process was interrupted (avbrott): why, when, and a free-text note.",
    ("Encounter",),
    parts=(
        ExtensionPart(
            "reason",
            ("Coding",),
            "Why it was interrupted.",
            min=1,
            binding="process-interruption-reason",
        ),
        ExtensionPart("at", ("dateTime",), "When it was interrupted.", min=1),
        ExtensionPart("note", ("string",), "Free text (patient data, never logged)."),
    ),
)
TRANSFER_URL = extension(
    "transfer",
    "Transfer (förflyttning)",
    "The patient moved to another ward or hospital: the unit left and when; "
    "Encounter.serviceProvider is the new unit.",
    ("Encounter",),
    parts=(
        ExtensionPart(
            "from", ("Reference",), "The unit the patient left.", min=1, target="Organization"
        ),
        ExtensionPart("at", ("dateTime",), "When the patient moved.", min=1),
    ),
)
# Provenance.activity of a cancellation (makulering): the message is nullified, as if never sent
DATA_OPERATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
NULLIFY = "NULLIFY"
