"""The medication list (läkemedelslista) as FHIR R4 for both adapters: a neutral
:class:`MedicationList` each fills from its native document, the message's resources
(:func:`list_resources`) and their reader (:func:`read_medication_list`). Pure.

Message layout (mapping ``contracts/fhir/medication-list.md``)::

    Bundle (type message, identifier = business key: source | list id | version)
     ├── MessageHeader            event medication-list, focus List, sender Organization
     ├── List                     the list: id, version, context, date; empty → emptyReason
     ├── Patient
     ├── Organization             the responsible unit (HSA-id)
     ├── MedicationStatement ×n   one per line, in the list's order; the dosage is
     │                            :mod:`services.messaging.dosage`, prescriber, dose
     │                            dispensing and change :mod:`services.messaging.prescription`
     ├── Practitioner ×n          each distinct prescriber (HSA-id), the informationSource
     │                            of the lines they prescribed
     └── EpisodeOfCare            the case (services.messaging.case), named last in focus,
                                  when the list names its stay or echoes the case id
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from services.messaging import vocabulary as vocab
from services.messaging.dosage import Dosage, dosage_element, read_dosage
from services.messaging.fhir_parts import (
    CareUnit,
    PatientInfo,
    Ref,
    TranslationError,
    arr,
    code,
    coded,
    extension,
    instant,
    integer,
    known,
    maybe_day,
    maybe_obj,
    maybe_text,
    obj,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    resolve,
    text,
)
from services.messaging.prescription import (
    LineChange,
    Prescriber,
    change_extension,
    dispensed_value,
    practitioner_resource,
    read_change,
    read_prescriber,
)

Context = Literal["admission", "discharge", "home-care"]
LineStatus = Literal["active", "paused", "stopped"]
AdministeredBy = Literal["home-care", "patient", "relative", "hospital"]

CONTEXTS: dict[str, Context] = {c: c for c in get_args(Context)}
CONTEXT_DISPLAY: dict[Context, str] = {
    "admission": "Aktuell läkemedelslista vid inskrivning",
    "discharge": "Läkemedelslista vid utskrivning",
    "home-care": "Läkemedel som hemsjukvården administrerar",
}
ADMINISTERED_BY: dict[str, AdministeredBy] = {a: a for a in get_args(AdministeredBy)}
ADMINISTERED_BY_DISPLAY: dict[AdministeredBy, str] = {
    "home-care": "Hemsjukvården",
    "patient": "Patienten själv",
    "relative": "Närstående",
    "hospital": "Sjukhuset",
}
FHIR_STATUS: dict[LineStatus, str] = {"active": "active", "paused": "on-hold", "stopped": "stopped"}
LINE_STATUS: dict[str, LineStatus] = {v: k for k, v in FHIR_STATUS.items()}
LIST_EMPTY_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
LIST_ID_SYSTEMS = (vocab.TAKECARE_MEDICATION_LIST_SYSTEM, vocab.TRESERVA_MEDICATION_LIST_SYSTEM)

FOCUS = "list"  # the role of the List: MessageHeader.focus
SENDER = "organization"  # the role of the responsible unit: MessageHeader.sender


@dataclass(frozen=True, slots=True)
class MedicationLine:
    name: str
    dosage: Dosage
    status: LineStatus
    administered_by: AdministeredBy
    npl_id: str | None = None
    npl_pack_id: str | None = None
    atc_code: str | None = None
    strength: str | None = None
    form: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    reason: str | None = None
    change_note: str | None = None
    dose_dispensed: bool | None = None  # dosdispensering: a pharmacy packs it in dose bags
    prescriber: Prescriber | None = None
    change: LineChange | None = None


@dataclass(frozen=True, slots=True)
class MedicationList:
    list_id: str
    id_system: str  # whose id: vocab.TAKECARE_ or TRESERVA_MEDICATION_LIST_SYSTEM
    version: int
    context: Context
    occurred_at: datetime
    patient: PatientInfo
    unit: CareUnit
    lines: tuple[MedicationLine, ...]
    encounter_id: str | None = None  # the hospital's vårdtillfälle id


# --- building --------------------------------------------------------------------------------


def list_resources(medication_list: MedicationList, ref: Ref) -> list[tuple[str, dict[str, Any]]]:
    """(role, resource) pairs for :func:`message_bundle`, with ``focus=[FOCUS]`` and
    ``sender=SENDER``."""
    # One Practitioner per distinct prescriber, in order of first appearance.
    prescribers: dict[Prescriber, str] = {}
    for line in medication_list.lines:
        if line.prescriber is not None and line.prescriber not in prescribers:
            prescribers[line.prescriber] = f"prescriber-{len(prescribers)}"
    statements = [
        (f"statement-{i}", _statement(line, medication_list, ref, prescribers))
        for i, line in enumerate(medication_list.lines)
    ]
    return [
        (FOCUS, _list(medication_list, [role for role, _ in statements], ref)),
        ("patient", patient_resource(medication_list.patient)),
        (SENDER, organization_resource(medication_list.unit)),
        *statements,
        *((role, practitioner_resource(p)) for p, role in prescribers.items()),
    ]


def _encounter_ref(encounter_id: str) -> dict[str, Any]:
    """A logical reference: the hospital stay is known by its TakeCare id, not sent along."""
    ident = {"system": vocab.TAKECARE_ENCOUNTER_SYSTEM, "value": encounter_id}
    return {"type": "Encounter", "identifier": ident}


def _present(pairs: tuple[tuple[str, Any], ...], key: str, value: str) -> list[dict[str, Any]]:
    """``{key: k, value: v}`` for each pair whose value is given."""
    return [{key: k, value: v} for k, v in pairs if v is not None]


def _list(ml: MedicationList, roles: list[str], ref: Ref) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "List",
        "extension": [{"url": vocab.DOCUMENT_VERSION_URL, "valuePositiveInt": ml.version}],
        "identifier": [{"system": ml.id_system, "value": ml.list_id}],
        "status": "current",
        "mode": "snapshot",
        "title": "Läkemedelslista",
        "code": code(vocab.MEDICATION_LIST_CONTEXT_SYSTEM, ml.context, CONTEXT_DISPLAY[ml.context]),
        "subject": {"reference": ref("patient")},
        "date": ml.occurred_at.isoformat(),
    }
    if ml.encounter_id is not None:
        resource["encounter"] = _encounter_ref(ml.encounter_id)
    if roles:
        resource["entry"] = [{"item": {"reference": ref(role)}} for role in roles]
    else:
        empty = code(LIST_EMPTY_REASON_SYSTEM, "nilknown", "Nil Known")
        resource["emptyReason"] = empty | {"text": "Inga kända läkemedel"}
    return resource


def _medication(line: MedicationLine) -> dict[str, Any]:
    codings = _present(
        (
            (vocab.NPL_ID_SYSTEM, line.npl_id),
            (vocab.NPL_PACK_ID_SYSTEM, line.npl_pack_id),
            (vocab.ATC_SYSTEM, line.atc_code),
        ),
        "system",
        "code",
    )
    extensions = _present(
        ((vocab.MEDICATION_STRENGTH_URL, line.strength), (vocab.MEDICATION_FORM_URL, line.form)),
        "url",
        "valueString",
    )
    concept: dict[str, Any] = {"text": line.name}
    if codings:
        concept["coding"] = codings
    if extensions:
        concept["extension"] = extensions
    return concept


def _extensions(line: MedicationLine) -> list[dict[str, Any]]:
    by = line.administered_by
    by_code = code(vocab.ADMINISTERED_BY_SYSTEM, by, ADMINISTERED_BY_DISPLAY[by])
    found: list[dict[str, Any]] = [
        {"url": vocab.ADMINISTERED_BY_URL, "valueCodeableConcept": by_code}
    ]
    if line.dose_dispensed is not None:
        found.append({"url": vocab.DOSE_DISPENSED_URL, "valueBoolean": line.dose_dispensed})
    if line.change is not None:
        found.append(change_extension(line.change))
    return found


def _statement(
    line: MedicationLine, ml: MedicationList, ref: Ref, prescribers: dict[Prescriber, str]
) -> dict[str, Any]:
    source = SENDER if line.prescriber is None else prescribers[line.prescriber]
    statement: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "extension": _extensions(line),
        "status": FHIR_STATUS[line.status],
        "medicationCodeableConcept": _medication(line),
        "subject": {"reference": ref("patient")},
        "dateAsserted": ml.occurred_at.isoformat(),
        "informationSource": {"reference": ref(source)},
        "dosage": [dosage_element(line.dosage)],
    }
    if ml.encounter_id is not None:
        statement["context"] = _encounter_ref(ml.encounter_id)
    period = {
        k: v.isoformat() for k, v in (("start", line.start_date), ("end", line.end_date)) if v
    }
    if period:
        statement["effectivePeriod"] = period
    if line.reason is not None:
        statement["reasonCode"] = [{"text": line.reason}]
    if line.change_note is not None:
        statement["note"] = [{"text": line.change_note}]
    return statement


# --- reading ---------------------------------------------------------------------------------


def read_medication_list(doc: dict[str, Any]) -> MedicationList:
    """The medication list of a FHIR message; :class:`TranslationError` when incomplete."""
    header = one(doc, "MessageHeader")
    resource = resolve(doc, header, "focus.0", "List")
    idents = arr(resource, "identifier")
    at = next((i for i, x in enumerate(idents) if x.get("system") in LIST_ID_SYSTEMS), 0)
    version = integer(extension(resource, vocab.DOCUMENT_VERSION_URL), "valuePositiveInt")
    if version < 1:
        raise TranslationError("List version must be a positive integer")
    concept = obj(resource, "code")
    return MedicationList(
        list_id=text(resource, f"identifier.{at}.value"),
        id_system=text(resource, f"identifier.{at}.system"),
        version=version,
        context=known(CONTEXTS, coded(concept, vocab.MEDICATION_LIST_CONTEXT_SYSTEM), "List.code"),
        occurred_at=instant(resource, "date"),
        patient=read_patient(resolve(doc, resource, "subject")),
        unit=read_unit(resolve(doc, header, "sender")),
        lines=tuple(
            _read_line(doc, resolve(doc, resource, f"entry.{i}.item", "MedicationStatement"))
            for i in range(len(arr(resource, "entry")))
        ),
        encounter_id=maybe_text(resource, "encounter.identifier.value"),
    )


def _read_line(doc: dict[str, Any], statement: dict[str, Any]) -> MedicationLine:
    concept = obj(statement, "medicationCodeableConcept")
    by = maybe_obj(extension(statement, vocab.ADMINISTERED_BY_URL), "valueCodeableConcept")
    dispensed = extension(statement, vocab.DOSE_DISPENSED_URL)
    return MedicationLine(
        name=text(concept, "text"),
        dosage=read_dosage(statement),
        status=known(LINE_STATUS, text(statement, "status"), "MedicationStatement.status"),
        administered_by=known(
            ADMINISTERED_BY,
            coded(by, vocab.ADMINISTERED_BY_SYSTEM),
            "MedicationStatement administered-by extension",
        ),
        npl_id=coded(concept, vocab.NPL_ID_SYSTEM),
        npl_pack_id=coded(concept, vocab.NPL_PACK_ID_SYSTEM),
        atc_code=coded(concept, vocab.ATC_SYSTEM),
        strength=_string(concept, vocab.MEDICATION_STRENGTH_URL),
        form=_string(concept, vocab.MEDICATION_FORM_URL),
        start_date=maybe_day(statement, "effectivePeriod.start"),
        end_date=maybe_day(statement, "effectivePeriod.end"),
        reason=maybe_text(statement, "reasonCode.0.text"),
        change_note=maybe_text(statement, "note.0.text"),
        dose_dispensed=None if dispensed is None else dispensed_value(dispensed),
        prescriber=read_prescriber(resolve(doc, statement, "informationSource")),
        change=read_change(extension(statement, vocab.MEDICATION_LINE_CHANGE_URL)),
    )


def _string(element: dict[str, Any], url: str) -> str | None:
    found = extension(element, url)
    return None if found is None else text(found, "valueString")
