"""The medication list (läkemedelslista) as FHIR R4 for both adapters: a neutral
:class:`MedicationList` each fills from its native document, the message's resources
(:func:`list_resources`) and their reader (:func:`read_medication_list`). Pure.

Message layout (mapping ``contracts/fhir/medication-list.md``)::

    Bundle (type message, identifier = business key: source | list id | version)
     ├── MessageHeader            event medication-list, focus List, sender Organization
     ├── List                     the list: id, version, context, date; empty → emptyReason
     ├── Patient
     ├── Organization             the responsible unit (HSA-id)
     └── MedicationStatement ×n   one per line, in the list's order
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from services.messaging import vocabulary as vocab
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
    maybe_integer,
    maybe_obj,
    maybe_text,
    number,
    obj,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    resolve,
    text,
    texts,
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
# Journal dose unit → UCUM code; other units ("st", "E", "dospåse") only as Quantity.unit.
UCUM_CODES = {u: u for u in ("mg", "g", "ug", "ng", "mL", "L", "mmol", "[IU]")}
UCUM_CODES |= {"ml": "mL", "l": "L", "mikrogram": "ug", "IE": "[IU]"}

FOCUS = "list"  # the role of the List: MessageHeader.focus
SENDER = "organization"  # the role of the responsible unit: MessageHeader.sender


@dataclass(frozen=True, slots=True)
class Dose:
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Dosage:
    text: str  # always: the dosage as the prescriber wrote it
    dose: Dose | None = None
    times_per_day: int | None = None
    times_of_day: tuple[str, ...] = ()  # "HH:MM", local time


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
    statements = [
        (f"statement-{i}", _statement(line, medication_list, ref))
        for i, line in enumerate(medication_list.lines)
    ]
    return [
        (FOCUS, _list(medication_list, [role for role, _ in statements], ref)),
        ("patient", patient_resource(medication_list.patient)),
        (SENDER, organization_resource(medication_list.unit)),
        *statements,
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


def _dosage(dosage: Dosage) -> dict[str, Any]:
    out: dict[str, Any] = {"text": dosage.text}
    repeat: dict[str, Any] = {}
    if dosage.times_per_day is not None:
        repeat |= {"frequency": dosage.times_per_day, "period": 1, "periodUnit": "d"}
    if dosage.times_of_day:
        repeat["timeOfDay"] = [f"{t}:00" for t in dosage.times_of_day]
    if repeat:
        out["timing"] = {"repeat": repeat}
    if dosage.dose is not None:
        quantity: dict[str, Any] = {"value": dosage.dose.value, "unit": dosage.dose.unit}
        if dosage.dose.unit in UCUM_CODES:
            quantity |= {"system": vocab.UCUM_SYSTEM, "code": UCUM_CODES[dosage.dose.unit]}
        out["doseAndRate"] = [{"doseQuantity": quantity}]
    return out


def _statement(line: MedicationLine, ml: MedicationList, ref: Ref) -> dict[str, Any]:
    by = line.administered_by
    by_code = code(vocab.ADMINISTERED_BY_SYSTEM, by, ADMINISTERED_BY_DISPLAY[by])
    statement: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "extension": [{"url": vocab.ADMINISTERED_BY_URL, "valueCodeableConcept": by_code}],
        "status": FHIR_STATUS[line.status],
        "medicationCodeableConcept": _medication(line),
        "subject": {"reference": ref("patient")},
        "dateAsserted": ml.occurred_at.isoformat(),
        "informationSource": {"reference": ref(SENDER)},
        "dosage": [_dosage(line.dosage)],
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
            _read_line(resolve(doc, resource, f"entry.{i}.item", "MedicationStatement"))
            for i in range(len(arr(resource, "entry")))
        ),
        encounter_id=maybe_text(resource, "encounter.identifier.value"),
    )


def _read_line(statement: dict[str, Any]) -> MedicationLine:
    concept = obj(statement, "medicationCodeableConcept")
    quantity = maybe_obj(statement, "dosage.0.doseAndRate.0.doseQuantity")
    by = maybe_obj(extension(statement, vocab.ADMINISTERED_BY_URL), "valueCodeableConcept")
    return MedicationLine(
        name=text(concept, "text"),
        dosage=Dosage(
            text=text(statement, "dosage.0.text"),
            dose=None
            if quantity is None
            else Dose(number(quantity, "value"), text(quantity, "unit")),
            times_per_day=maybe_integer(statement, "dosage.0.timing.repeat.frequency"),
            times_of_day=tuple(t[:5] for t in texts(statement, "dosage.0.timing.repeat.timeOfDay")),
        ),
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
    )


def _string(element: dict[str, Any], url: str) -> str | None:
    found = extension(element, url)
    return None if found is None else text(found, "valueString")
