"""This project's own FHIR vocabulary: CodeSystems, extensions and identifier systems that both
adapters use to write and to read the messages. National systems (personnummer, HSA-id, NPL,
ATC, SNOMED CT) are used wherever one exists; these fill the gaps. Each is documented in
``contracts/fhir/``."""

from __future__ import annotations

from services.messaging.envelope import BASE_URL

_CS = f"{BASE_URL}/CodeSystem"
_SD = f"{BASE_URL}/StructureDefinition"

# --- national systems ---------------------------------------------------------------------
NPL_ID_SYSTEM = "urn:oid:1.2.752.129.2.1.5.1"  # NPL-id: medicinal product
NPL_PACK_ID_SYSTEM = "urn:oid:1.2.752.129.2.1.5.2"  # NPL pack id
ATC_SYSTEM = "http://www.whocc.no/atc"
SNOMED_SYSTEM = "http://snomed.info/sct"
SNOMED_SE_VERSION = "http://snomed.info/sct/45991000052106"
UCUM_SYSTEM = "http://unitsofmeasure.org"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"  # PRN: provider number

# --- identifier systems of the source journals --------------------------------------------
TAKECARE_ENCOUNTER_SYSTEM = "urn:carebridge:takecare:encounter-id"
TAKECARE_MEDICATION_LIST_SYSTEM = "urn:carebridge:takecare:medication-list-id"
TRESERVA_MEDICATION_LIST_SYSTEM = "urn:carebridge:treserva:medication-list-id"
SIP_ID_SYSTEM = "urn:carebridge:sip-id"  # the SIP lives in TakeCare's SIP module

# --- CodeSystems --------------------------------------------------------------------------
OBSERVATION_SYSTEM = f"{_CS}/care-transition-observation"
DISCHARGE_DESTINATION_SYSTEM = f"{_CS}/discharge-destination"
MEDICATION_LIST_CONTEXT_SYSTEM = f"{_CS}/medication-list-context"
ADMINISTERED_BY_SYSTEM = f"{_CS}/medication-administered-by"
CARE_PLAN_CATEGORY_SYSTEM = f"{_CS}/care-plan-category"  # code "sip"
SIP_ROLE_SYSTEM = f"{_CS}/sip-role"
MEDICATION_LINE_CHANGE_SYSTEM = f"{_CS}/medication-line-change"  # started, stopped, changed, …
CONSENT_BASIS_SYSTEM = f"{_CS}/consent-basis"  # samtycke, menprovning, nodsituation
UNIT_KIND_SYSTEM = f"{_CS}/unit-kind"  # hospital, primary-care, municipality
MUNICIPAL_SERVICE_SYSTEM = f"{_CS}/municipal-service"  # hemtjänst, hemsjukvård, …
SUPERSEDED_TAG_SYSTEM = f"{_CS}/delivery-tag"  # Bundle.meta.tag "superseded" (display: newer id)

# --- extensions ---------------------------------------------------------------------------
EXPECTED_DISCHARGE_URL = f"{_SD}/expected-discharge"  # Encounter: valueDateTime
CANCELLATION_REASON_URL = f"{_SD}/cancellation-reason"  # Encounter: valueString
READY_FOR_DISCHARGE_URL = f"{_SD}/ready-for-discharge"  # Encounter: valueDateTime
WITHDRAWAL_REASON_URL = f"{_SD}/withdrawal-reason"  # Encounter: valueString
ADMINISTERED_BY_URL = f"{_SD}/administered-by"  # MedicationStatement: valueCodeableConcept
SIP_CONSENT_URL = f"{_SD}/sip-consent"  # CarePlan: complex (given, recordedAt, note)
SIP_MEETING_URL = f"{_SD}/sip-meeting"  # CarePlan: valuePeriod / valueDateTime
DOCUMENT_VERSION_URL = f"{_SD}/document-version"  # List / CarePlan: valuePositiveInt
MEDICATION_STRENGTH_URL = f"{_SD}/medication-strength"  # MedicationStatement.medication[x]
MEDICATION_FORM_URL = f"{_SD}/medication-form"  # MedicationStatement.medication[x]
DOSE_DISPENSED_URL = f"{_SD}/dose-dispensed"  # MedicationStatement: valueBoolean (dosdispensering)
# MedicationStatement: complex, "type" valueCoding (MEDICATION_LINE_CHANGE_SYSTEM), "reason"
# valueString: how the line changed since the last list, and why
MEDICATION_LINE_CHANGE_URL = f"{_SD}/medication-line-change"

# --- SIP (appended by the sip-update family) -----------------------------------------------
SIP_ACTIVITY_ID_URL = f"{_SD}/sip-activity-id"  # CarePlan.activity: valueString, the SIP's own id
SIP_RESPONSIBLE_ROLE_URL = f"{_SD}/sip-responsible-role"  # CarePlan.activity.detail: SIP role
SIP_MEETING_LOCATION_URL = f"{_SD}/sip-meeting-location"  # CarePlan: valueString, where

# --- planning information at discharge (planeringsunderlag, discharge-readiness family) ------
ISO_9999_SYSTEM = "urn:iso:std:iso:9999"  # assistive products (hjälpmedel)
BCP47_SYSTEM = "urn:ietf:bcp:47"  # Patient.communication.language
ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"  # NOK, SPS, DAU, …
ADL_ACTIVITY_SYSTEM = f"{_CS}/adl-activity"  # eating, dressing, toileting, mobility, hygiene
ADL_LEVEL_SYSTEM = f"{_CS}/adl-level"  # independent, needs-some-help, needs-full-help
LEGAL_REPRESENTATIVE_SYSTEM = f"{_CS}/legal-representative"  # god-man, forvaltare
CARE_TEAM_ROLE_SYSTEM = f"{_CS}/care-team-role"  # fast-vardkontakt
# Patient: valueBoolean, HL7's core extension (the patient needs an interpreter)
INTERPRETER_REQUIRED_URL = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
# --- municipal answers (appended by the admission-answer family) ----------------------------
# MessageHeader: valueIdentifier (urn:ietf:rfc:3986, urn:uuid:<message id>), the message this
# one answers. Not MessageHeader.response: the router reserves that for technical results.
ANSWERS_MESSAGE_URL = f"{_SD}/answers-message"
# Provenance.activity of a cancellation (makulering): the message is nullified, as if never sent
DATA_OPERATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
NULLIFY = "NULLIFY"
URI_SYSTEM = "urn:ietf:rfc:3986"  # Identifier.system of a message id written urn:uuid:<id>
# --- the whole process (appended by the hospital's process families, issue 20) ------------
# Encounter: complex, "reason" valueCoding (PROCESS_INTERRUPTION_REASON_SYSTEM), "at"
# valueDateTime, "note" valueString (free text: patient data, never logged)
PROCESS_INTERRUPTED_URL = f"{_SD}/process-interrupted"
# condition-worsened, declined-municipal-services, other
PROCESS_INTERRUPTION_REASON_SYSTEM = f"{_CS}/process-interruption-reason"
# Encounter: complex, "from" valueReference (the Organization the patient left), "at"
# valueDateTime; Encounter.serviceProvider is the new unit, the receivers' contact from now on
TRANSFER_URL = f"{_SD}/transfer"
