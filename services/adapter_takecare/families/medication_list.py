"""Medication list (läkemedelslista) in TakeCare's format, both ways: the current list at
admission and the updated list at discharge that TakeCare pushes (``INBOUND``), and the list
home care administers that the broker delivers from Treserva (``OUTBOUND``). One contract for
both: ``contracts/takecare/medication-list.schema.json``; mapping
``contracts/fhir/medication-list.md``; the FHIR side is :mod:`services.messaging.medication`.

The list is a versioned document: its business key is (takecare, listId, version).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, field_validator

from services.adapter_takecare.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    ConsentBasisBlock,
    Patient,
    Unit,
    consent_basis_doc,
)
from services.messaging.case import stay_case_id
from services.messaging.consent import consent_of, read_consent
from services.messaging.dosage import AsNeededCondition, Dosage, Dose, MaxDose, finite
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import message_bundle, message_id_in, refs
from services.messaging.identifiers import PatientIdentifier
from services.messaging.medication import (
    FOCUS,
    SENDER,
    AdministeredBy,
    Context,
    LineStatus,
    MedicationLine,
    MedicationList,
    list_resources,
    read_medication_list,
)
from services.messaging.native import InboundFamily, NativeEvent, NativeModel, OutboundFamily
from services.messaging.prescription import ChangeKind, LineChange, Prescriber
from services.messaging.vocabulary import TAKECARE_MEDICATION_LIST_SYSTEM

SCHEMA = "takecare/medication-list.schema.json"


class NativeDose(NativeModel):
    value: int | float
    unit: str

    _finite = field_validator("value")(finite)


class NativeMaxDose(NativeModel):
    value: int | float
    unit: str
    period_hours: int = Field(alias="periodHours")

    _finite = field_validator("value")(finite)


class NativeCondition(NativeModel):
    text: str
    snomed_code: str | None = Field(default=None, alias="snomedCode")


class NativeDosage(NativeModel):
    text: str
    dose: NativeDose | None = None
    times_per_day: int | None = Field(default=None, alias="timesPerDay")
    times_of_day: tuple[str, ...] = Field(default=(), alias="timesOfDay")
    as_needed: bool | None = Field(default=None, alias="asNeeded")
    as_needed_condition: NativeCondition | None = Field(default=None, alias="asNeededCondition")
    max_dose: NativeMaxDose | None = Field(default=None, alias="maxDose")

    def dosage(self) -> Dosage:
        c, m = self.as_needed_condition, self.max_dose
        return Dosage(
            text=self.text,
            dose=None if self.dose is None else Dose(self.dose.value, self.dose.unit),
            times_per_day=self.times_per_day,
            times_of_day=self.times_of_day,
            as_needed=self.as_needed,
            as_needed_condition=None if c is None else AsNeededCondition(c.text, c.snomed_code),
            max_dose=None if m is None else MaxDose(m.value, m.unit, m.period_hours),
        )


class NativePrescriber(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    name: str | None = None


class NativeChange(NativeModel):
    kind: ChangeKind = Field(alias="type")
    reason: str | None = None


class Item(NativeModel):
    npl_id: str | None = Field(default=None, alias="nplId")
    npl_pack_id: str | None = Field(default=None, alias="nplPackId")
    atc_code: str | None = Field(default=None, alias="atcCode")
    name: str
    strength: str | None = None
    form: str | None = None
    dosage: NativeDosage
    status: LineStatus
    start_date: date | None = Field(default=None, alias="startDate")
    end_date: date | None = Field(default=None, alias="endDate")
    reason: str | None = None
    administered_by: AdministeredBy = Field(alias="administeredBy")
    change_note: str | None = Field(default=None, alias="changeNote")
    dose_dispensed: bool | None = Field(default=None, alias="doseDispensed")
    prescriber: NativePrescriber | None = None
    change: NativeChange | None = None

    def line(self) -> MedicationLine:
        p, c = self.prescriber, self.change
        return MedicationLine(
            name=self.name,
            dosage=self.dosage.dosage(),
            status=self.status,
            administered_by=self.administered_by,
            npl_id=self.npl_id,
            npl_pack_id=self.npl_pack_id,
            atc_code=self.atc_code,
            strength=self.strength,
            form=self.form,
            start_date=self.start_date,
            end_date=self.end_date,
            reason=self.reason,
            change_note=self.change_note,
            dose_dispensed=self.dose_dispensed,
            prescriber=None if p is None else Prescriber(p.hsa_id, p.name),
            change=None if c is None else LineChange(c.kind, c.reason),
        )


class TakeCareMedicationList(NativeEvent):
    event_id: str = Field(alias="eventId")
    list_id: str = Field(alias="listId")
    version: int
    context: Context
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    consent_basis: ConsentBasisBlock = Field(alias="consentBasis")
    unit: Unit
    encounter_id: str | None = Field(default=None, alias="encounterId")
    items: tuple[Item, ...]
    # Only the broker sets supersededBy, on delivery; a list TakeCare pushes never has it.
    superseded_by: None = Field(default=None, alias="supersededBy")
    # the case id the broker delivered (services.messaging.case), echoed back: this document
    # names no stay, so it joins the stay's case by it
    case_id: str | None = Field(default=None, alias="caseId")

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TAKECARE.value, self.list_id, self.version)

    def event_code(self) -> EventCode:
        return EventCode.MEDICATION_LIST

    def patient_identifier(self) -> PatientIdentifier:
        return self.patient.identifier

    def consent_block(self) -> ConsentBasisBlock:
        return self.consent_basis

    def stay(self) -> tuple[str, str] | None:
        return None if self.encounter_id is None else ("encounterId", self.encounter_id)

    def medication_list(self, regional_reserve_oid: str | None = None) -> MedicationList:
        return MedicationList(
            list_id=self.list_id,
            id_system=TAKECARE_MEDICATION_LIST_SYSTEM,
            version=self.version,
            context=self.context,
            occurred_at=self.occurred_at,
            patient=self.patient.info(regional_reserve_oid),
            unit=self.unit.info(),
            lines=tuple(item.line() for item in self.items),
            encounter_id=self.encounter_id,
        )


def to_bundle(
    event: TakeCareMedicationList, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    return message_bundle(
        key=key,
        case_id=stay_case_id(event.encounter_id) or event.case_id,
        event=EventCode.MEDICATION_LIST,
        source=System.TAKECARE,
        now=now,
        focus=[FOCUS, "consent"],
        sender=SENDER,
        resources=[
            *list_resources(event.medication_list(regional_reserve_oid), ref),
            ("consent", consent_of(event.consent_basis.basis(), ref, organization=SENDER)),
        ],
    )


INBOUND = InboundFamily(
    family="medication-list",
    route="medication-lists",
    schema=SCHEMA,
    model=TakeCareMedicationList,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- FHIR → TakeCare (a list from Treserva) ----------------------------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    """TakeCare's document of a FHIR medication-list message; eventId is the message id."""
    ml = read_medication_list(doc)
    event_id = message_id_in(doc)
    native: dict[str, Any] = {
        "eventId": event_id,
        "listId": ml.list_id,
        "version": ml.version,
        "context": ml.context,
        "occurredAt": ml.occurred_at.isoformat(),
        "patient": Patient.of(ml.patient).model_dump(mode="json", by_alias=True, exclude_none=True),
        "consentBasis": consent_basis_doc(read_consent(doc)),
        "unit": Unit.of(ml.unit).model_dump(mode="json", by_alias=True),
    }
    if ml.encounter_id is not None:
        native["encounterId"] = ml.encounter_id
    native["items"] = [_item(line) for line in ml.lines]
    return native


def _item(line: MedicationLine) -> dict[str, Any]:
    d = line.dosage
    dosage: dict[str, Any] = {"text": d.text}
    if d.dose is not None:
        dosage["dose"] = {"value": d.dose.value, "unit": d.dose.unit}
    if d.times_per_day is not None:
        dosage["timesPerDay"] = d.times_per_day
    if d.times_of_day:
        dosage["timesOfDay"] = list(d.times_of_day)
    if d.as_needed is not None:
        dosage["asNeeded"] = d.as_needed
    if d.as_needed_condition is not None:
        cond = d.as_needed_condition
        dosage["asNeededCondition"] = _present({"text": cond.text, "snomedCode": cond.snomed_code})
    if d.max_dose is not None:
        m = d.max_dose
        dosage["maxDose"] = {"value": m.value, "unit": m.unit, "periodHours": m.period_hours}
    p, c = line.prescriber, line.change
    fields: tuple[tuple[str, Any], ...] = (
        ("nplId", line.npl_id),
        ("nplPackId", line.npl_pack_id),
        ("atcCode", line.atc_code),
        ("name", line.name),
        ("strength", line.strength),
        ("form", line.form),
        ("dosage", dosage),
        ("status", line.status),
        ("startDate", None if line.start_date is None else line.start_date.isoformat()),
        ("endDate", None if line.end_date is None else line.end_date.isoformat()),
        ("reason", line.reason),
        ("administeredBy", line.administered_by),
        ("changeNote", line.change_note),
        ("doseDispensed", line.dose_dispensed),
        ("prescriber", None if p is None else _present({"hsaId": p.hsa_id, "name": p.name})),
        ("change", None if c is None else _present({"type": c.kind, "reason": c.reason})),
    )
    return _present(dict(fields))


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


OUTBOUND = OutboundFamily(
    family="medication-list",
    events=(EventCode.MEDICATION_LIST,),
    path="/api/v1/medication-lists",
    schema=SCHEMA,
    to_native=to_native,
)
