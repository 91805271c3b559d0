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
    code,
    coded,
    extension,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    resolve,
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
    try:
        resource = resolve(doc, header["focus"][0])
        if resource.get("resourceType") != "List":
            raise TranslationError("message focus is not a List")
        ident = next(
            (i for i in resource["identifier"] if i.get("system") in LIST_ID_SYSTEMS),
            resource["identifier"][0],
        )
        version = (extension(resource, vocab.DOCUMENT_VERSION_URL) or {})["valuePositiveInt"]
        context = CONTEXTS[coded(resource["code"], vocab.MEDICATION_LIST_CONTEXT_SYSTEM) or ""]
        return MedicationList(
            list_id=ident["value"],
            id_system=ident["system"],
            version=int(version),
            context=context,
            occurred_at=datetime.fromisoformat(resource["date"]),
            patient=read_patient(resolve(doc, resource["subject"])),
            unit=read_unit(resolve(doc, header["sender"])),
            lines=tuple(_read_line(resolve(doc, e["item"])) for e in resource.get("entry", [])),
            encounter_id=resource.get("encounter", {}).get("identifier", {}).get("value"),
        )
    except TranslationError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise TranslationError(f"medication list incomplete: {type(exc).__name__}") from None


def _read_line(statement: dict[str, Any]) -> MedicationLine:
    if statement.get("resourceType") != "MedicationStatement":
        raise TranslationError("a List entry is not a MedicationStatement")
    concept = statement["medicationCodeableConcept"]
    dosage = statement["dosage"][0]
    repeat = dosage.get("timing", {}).get("repeat", {})
    quantity = (dosage.get("doseAndRate") or [{}])[0].get("doseQuantity")
    period = statement.get("effectivePeriod", {})
    by = (extension(statement, vocab.ADMINISTERED_BY_URL) or {}).get("valueCodeableConcept")
    return MedicationLine(
        name=concept["text"],
        dosage=Dosage(
            text=dosage["text"],
            dose=None if quantity is None else Dose(quantity["value"], quantity["unit"]),
            times_per_day=repeat.get("frequency"),
            times_of_day=tuple(t[:5] for t in repeat.get("timeOfDay", [])),
        ),
        status=LINE_STATUS[statement["status"]],
        administered_by=ADMINISTERED_BY[coded(by, vocab.ADMINISTERED_BY_SYSTEM) or ""],
        npl_id=coded(concept, vocab.NPL_ID_SYSTEM),
        npl_pack_id=coded(concept, vocab.NPL_PACK_ID_SYSTEM),
        atc_code=coded(concept, vocab.ATC_SYSTEM),
        strength=_string(concept, vocab.MEDICATION_STRENGTH_URL),
        form=_string(concept, vocab.MEDICATION_FORM_URL),
        start_date=_date(period.get("start")),
        end_date=_date(period.get("end")),
        reason=(statement.get("reasonCode") or [{}])[0].get("text"),
        change_note=(statement.get("note") or [{}])[0].get("text"),
    )


def _string(element: dict[str, Any], url: str) -> str | None:
    found = extension(element, url)
    return None if found is None else str(found["valueString"])


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value[:10])
