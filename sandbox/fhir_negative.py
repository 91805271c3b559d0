"""The negative set: FHIR messages spoiled on purpose, each a real golden with one small,
documented mutation, which the FHIR validator must reject for the reason its file name states.

``contracts/fhir-negative/<NN>-<reason>.fhir.json`` is golden ``golden`` after ``mutate``;
``contracts/fhir-negative/expected.json`` maps each file name to the golden, the mutation in
words and what the validator must say: an issue of severity error whose message contains
``message`` and, when given, whose FHIRPath contains ``expression``. ``python -m
sandbox.contracts_cli --update`` re-makes both (:func:`check`); ``python -m
sandbox.fhir_validator_process`` (``make contracts``) validates them (:func:`verdicts`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOLDENS = ROOT / "contracts" / "fixtures"
NEGATIVE_DIR = ROOT / "contracts" / "fhir-negative"
EXPECTED = "expected.json"

Doc = dict[str, Any]
ADMISSION = "takecare/admission-notice/addressed-by-unit"
CANCELLATION = "takecare/message-cancelled/admission-notice-sent-in-error"
INTERRUPTED = "takecare/process-interrupted/worsened-personnummer"
PROTECTED = "takecare/admission-notice/protected-identity"
PLANNING = "takecare/discharge-readiness/ready-planning-information-full"


@dataclass(frozen=True, slots=True)
class Spoil:
    """One spoiled message: which golden, what was done to it, what the validator must say."""

    reason: str  # the file name's slug
    golden: str  # under contracts/fixtures, without .fhir.json
    mutation: str
    mutate: Callable[[Doc], None]
    message: str
    expression: str | None = None


def resource(doc: Doc, kind: str, nth: int = 0) -> Doc:
    """The ``nth`` entry resource of type ``kind``."""
    found = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == kind]
    return found[nth]  # type: ignore[no-any-return]


def entry(doc: Doc, kind: str) -> Doc:
    """The first entry whose resource is of type ``kind``."""
    found: list[Doc] = [e for e in doc["entry"] if e["resource"]["resourceType"] == kind]
    return found[0]


def _drop(kind: str, key: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        del resource(doc, kind)[key]

    return mutate


def _bundle(key: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        doc[key] = value

    return mutate


def _event_code(code: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        coding = resource(doc, "MessageHeader")["eventCoding"]
        coding["code"] = code
        coding.pop("display", None)

    return mutate


def _hsa_typed(code: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        identifier = resource(doc, "Organization")["identifier"][0]
        identifier["type"]["coding"][0].update(code=code, display="Organization identifier")

    return mutate


def _subject_to_organization(doc: Doc) -> None:
    resource(doc, "Encounter")["subject"] = {"reference": entry(doc, "Organization")["fullUrl"]}


def _broken_reference(doc: Doc) -> None:
    resource(doc, "Encounter")["subject"] = {
        "reference": "urn:uuid:00000000-0000-5000-8000-000000000000"
    }


def _unknown_extension(doc: Doc) -> None:
    resource(doc, "Patient")["extension"].append(
        {
            "url": "https://carebridge.se/fhir/StructureDefinition/no-such-extension",
            "valueString": "x",
        }
    )


def _municipality_twice(doc: Doc) -> None:
    extensions = resource(doc, "Patient")["extension"]
    extensions.append(copy.deepcopy(extensions[0]))


def _observation_value_number(doc: Doc) -> None:
    resource(doc, "Observation")["valueString"] = 42


def _period_start(value: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        resource(doc, "Encounter")["period"]["start"] = value

    return mutate


def _interruption_reason(doc: Doc) -> None:
    interrupted = resource(doc, "Encounter")["extension"][0]
    reason = next(x for x in interrupted["extension"] if x["url"] == "reason")
    reason["valueCoding"] = {
        "system": "https://carebridge.se/fhir/CodeSystem/process-interruption-reason",
        "code": "patient-moved-abroad",
    }


def _activity_update(doc: Doc) -> None:
    coding = resource(doc, "Provenance")["activity"]["coding"][0]
    coding.update(code="UPDATE", display="revise")


def _fullurl_disagrees(doc: Doc) -> None:
    header = entry(doc, "MessageHeader")
    header["fullUrl"] = "https://carebridge.se/fhir/MessageHeader/not-its-id"


def _drop_fullurl(doc: Doc) -> None:
    del entry(doc, "Observation")["fullUrl"]


def _personnummer_without_value(doc: Doc) -> None:
    del resource(doc, "Patient")["identifier"][0]["value"]


def _header_priority(doc: Doc) -> None:
    resource(doc, "MessageHeader")["priority"] = "high"


def _consent_status(doc: Doc) -> None:
    resource(doc, "Consent")["status"] = "withdrawn-by-fax"


def _observation_status(doc: Doc) -> None:
    resource(doc, "Observation")["status"] = "finished"


def _patient_identifier_system(doc: Doc) -> None:
    resource(doc, "Patient")["identifier"][0]["system"] = (
        "http://electronichealth.se/identifier/pnr"
    )


def _local_security_label(doc: Doc) -> None:
    label = resource(doc, "Patient")["meta"]["security"][0]
    label["system"] = "https://carebridge.se/fhir/CodeSystem/security-label"  # the old local one


def _language_not_bcp47(doc: Doc) -> None:
    language = resource(doc, "Patient")["communication"][0]["language"]["coding"][0]
    language["code"] = "finska"  # a Swedish word, not a BCP-47 tag (that is "fi")


SPOILS: tuple[Spoil, ...] = (
    Spoil(
        "bundle-identifier-wrong-system",
        ADMISSION,
        "Bundle.identifier.system business-key -> business-keys (a typo)",
        _bundle(
            "identifier",
            {"system": "https://carebridge.se/fhir/NamingSystem/business-keys", "value": "x|1"},
        ),
        "but is fixed to 'https://carebridge.se/fhir/NamingSystem/business-key'",
        "Bundle.identifier.system",
    ),
    Spoil(
        "messageheader-focus-missing",
        ADMISSION,
        "MessageHeader.focus removed",
        _drop("MessageHeader", "focus"),
        "MessageHeader.focus: minimum required = 2",
    ),
    Spoil(
        "event-code-outside-value-set",
        ADMISSION,
        "MessageHeader.eventCoding.code admission-notice -> admission-notis, not in the CodeSystem",
        _event_code("admission-notis"),
        "Unknown code 'https://carebridge.se/fhir/CodeSystem/care-transition-event#admission-notis'",
    ),
    Spoil(
        "broken-reference",
        ADMISSION,
        "Encounter.subject points at a urn:uuid no entry has",
        _broken_reference,
        "Constraint failed: cb-msg-1",
    ),
    Spoil(
        "messageheader-event-not-the-profiles",
        ADMISSION,
        "eventCoding discharge-notice (a real event) under the admission-notice header profile",
        _event_code("discharge-notice"),
        "Value is 'discharge-notice' but is fixed to 'admission-notice'",
    ),
    Spoil(
        "consent-policy-rule-missing",
        ADMISSION,
        "Consent.policyRule (the basis of consent, min 1 in carebridge-consent) removed",
        _drop("Consent", "policyRule"),
        "Consent.policyRule: minimum required = 1",
    ),
    Spoil(
        "hsaid-not-typed-prn",
        ADMISSION,
        "Organization's HSA-id identifier typed XX instead of PRN",
        _hsa_typed("XX"),
        "The pattern [system http://terminology.hl7.org/CodeSystem/v2-0203, code PRN",
        "Organization/null*/.identifier[0].type",
    ),
    Spoil(
        "bundle-type-not-message",
        ADMISSION,
        "Bundle.type message -> collection",
        _bundle("type", "collection"),
        "Value is 'collection' but is fixed to 'message'",
        "Bundle.type",
    ),
    Spoil(
        "fullurl-id-disagreement",
        ADMISSION,
        "the MessageHeader entry's fullUrl a RESTful URL whose id is not the resource's id",
        _fullurl_disagrees,
        "must end with the correct type and id",
    ),
    Spoil(
        "unknown-extension",
        ADMISSION,
        "Patient gets an extension whose URL no StructureDefinition defines",
        _unknown_extension,
        "StructureDefinition/no-such-extension could not be found",
    ),
    Spoil(
        "patient-name-missing",
        ADMISSION,
        "Patient.name removed: R4 allows it, only carebridge-patient (min 1) does not",
        _drop("Patient", "name"),
        "Patient.name: minimum required = 1, but only found 0 (from https://carebridge.se/fhir/StructureDefinition/carebridge-patient",
    ),
    Spoil(
        "municipality-over-max",
        ADMISSION,
        "Patient's municipality-of-residence extension twice (max 1)",
        _municipality_twice,
        "Patient.extension:municipality: max allowed = 1, but found 2",
    ),
    Spoil(
        "observation-value-wrong-datatype",
        ADMISSION,
        "Observation.valueString a JSON number",
        _observation_value_number,
        "the primitive value must be a string",
        "value[x]",
    ),
    Spoil(
        "interruption-reason-outside-required-value-set",
        INTERRUPTED,
        "process-interrupted's reason a code outside process-interruption-reason (bound required)",
        _interruption_reason,
        "was not found in the value set 'Process interruption reasons'",
    ),
    Spoil(
        "bad-date-format",
        ADMISSION,
        "Encounter.period.start '2026-11-20 08:40' (a space, no zone)",
        _period_start("2026-11-20 08:40"),
        "Not a valid date/time format: '2026-11-20 08:40'",
        "Encounter/null*/.period.start",
    ),
    Spoil(
        "messageheader-source-missing",
        ADMISSION,
        "MessageHeader.source removed (1..1 in R4)",
        _drop("MessageHeader", "source"),
        "MessageHeader.source: minimum required = 1",
    ),
    Spoil(
        "observation-status-outside-value-set",
        ADMISSION,
        "Observation.status final -> finished (R4's ObservationStatus is bound required)",
        _observation_status,
        "The value provided ('finished') was not found in the value set 'ObservationStatus'",
    ),
    Spoil(
        "encounter-subject-wrong-target",
        ADMISSION,
        "Encounter.subject points at the Organization entry (carebridge-encounter: Patient)",
        _subject_to_organization,
        "Found Organization, but expected one of ([Patient])",
        "Encounter/null*/.subject",
    ),
    Spoil(
        "cancellation-activity-not-nullify",
        CANCELLATION,
        "Provenance.activity v3-DataOperation NULLIFY -> UPDATE",
        _activity_update,
        "code NULLIFY",
        "Provenance/null*/.activity",
    ),
    Spoil(
        "bundle-timestamp-missing",
        ADMISSION,
        "Bundle.timestamp removed (min 1 in carebridge-message)",
        lambda doc: doc.pop("timestamp"),
        "Bundle.timestamp: minimum required = 1",
    ),
    Spoil(
        "entry-fullurl-missing",
        ADMISSION,
        "an Observation entry without fullUrl",
        _drop_fullurl,
        "Bundle.entry.fullUrl: minimum required = 1",
    ),
    Spoil(
        "messageheader-unknown-element",
        ADMISSION,
        "MessageHeader gets 'priority', an element R4 does not have",
        _header_priority,
        "Unrecognized property 'priority'",
    ),
    Spoil(
        "personnummer-without-value",
        ADMISSION,
        "Patient's personnummer identifier without value",
        _personnummer_without_value,
        "Patient.identifier:personnummer.value: minimum required = 1",
    ),
    Spoil(
        "consent-status-outside-value-set",
        ADMISSION,
        "Consent.status active -> withdrawn-by-fax",
        _consent_status,
        "The value provided ('withdrawn-by-fax') was not found in the value set 'ConsentState'",
    ),
    Spoil(
        "patient-identifier-wrong-system",
        ADMISSION,
        "the personnummer's system .../identifier/personnummer -> .../identifier/pnr",
        _patient_identifier_system,
        "Constraint failed: cb-pat-1",
    ),
    Spoil(
        "security-label-outside-national-set",
        PROTECTED,
        "the protected identity's label under a local CodeSystem, not HL7 Sweden's SecurityLabel",
        _local_security_label,
        "Constraint failed: cb-pat-2",
    ),
    Spoil(
        "interpreter-language-not-bcp47",
        PLANNING,
        "the interpreter's language fi -> finska, a word and not a BCP-47 language tag",
        _language_not_bcp47,
        'Code "finska" is not in valueset: http://hl7.org/fhir/ValueSet/languages',
    ),
)


def file_name(number: int, spoil: Spoil) -> str:
    return f"{number:02d}-{spoil.reason}.fhir.json"


def render(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def spoiled(spoil: Spoil, goldens: Path = GOLDENS) -> Doc:
    doc: Doc = json.loads((goldens / f"{spoil.golden}.fhir.json").read_text(encoding="utf-8"))
    spoil.mutate(doc)
    return doc


def expected(spoils: Iterable[Spoil] = SPOILS) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for number, spoil in enumerate(spoils, start=1):
        must: dict[str, Any] = {"severity": "error", "message": spoil.message}
        if spoil.expression is not None:
            must["expression"] = spoil.expression
        out[file_name(number, spoil)] = {
            "golden": f"contracts/fixtures/{spoil.golden}.fhir.json",
            "mutation": spoil.mutation,
            "validator": must,
        }
    return out


def generated() -> dict[str, str]:
    """Every file of contracts/fhir-negative/ as it should be: file name -> text."""
    files = {file_name(n, s): render(spoiled(s)) for n, s in enumerate(SPOILS, start=1)}
    files[EXPECTED] = render(expected())
    return files


def check(directory: Path = NEGATIVE_DIR, *, update: bool = False) -> dict[str, str]:
    """file name -> "ok" | "DIFFERS" | "MISSING" | "EXTRA"; with ``update`` rewrites first."""
    files = generated()
    if update:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.json"):
            if stale.name not in files:
                stale.unlink()
        for name, text in files.items():
            (directory / name).write_text(text, encoding="utf-8")
    found: dict[str, str] = {}
    for name, text in files.items():
        path = directory / name
        if not path.exists():
            found[name] = "MISSING"
        else:
            found[name] = "ok" if path.read_text(encoding="utf-8") == text else "DIFFERS"
    for path in sorted(directory.glob("*.json")) if directory.exists() else []:
        if path.name not in files:
            found[path.name] = "EXTRA"
    return found


def verdict(expect: Mapping[str, Any], issues: Iterable[Mapping[str, Any]]) -> str | None:
    """None when some error issue says what ``expect`` asks for; else why not."""
    errors = [i for i in issues if i.get("severity") in ("error", "fatal")]
    if not errors:
        return "accepted (no error)"
    must = expect["validator"]
    for issue in errors:
        if must["message"] not in (issue.get("message") or ""):
            continue
        if "expression" in must and must["expression"] not in (issue.get("expression") or ""):
            continue
        return None
    said = "; ".join(f"{i.get('expression')}: {i.get('message')}" for i in errors[:3])
    return f"rejected for another reason: {said}"


def negatives(directory: Path = NEGATIVE_DIR) -> list[Path]:
    return sorted(directory.glob("*.fhir.json"))


def expectations(directory: Path = NEGATIVE_DIR) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = json.loads((directory / EXPECTED).read_text("utf-8"))
    return found
