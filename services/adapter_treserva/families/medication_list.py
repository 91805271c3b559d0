"""Läkemedelslista in Treserva's format, both ways: the list of what home care administers
that Treserva pushes (``INBOUND``), and the lists from TakeCare at admission and discharge
that the broker delivers to Treserva (``OUTBOUND``). One contract for both:
``contracts/treserva/medication-list.schema.json``; mapping ``contracts/fhir/medication-list.md``;
the FHIR side is :mod:`services.messaging.medication`.

The list is a versioned document: its business key is (treserva, listaId, version).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fhir.resources.R4B.bundle import Bundle
from pydantic import AwareDatetime, Field, field_validator

from services.adapter_treserva.native import (
    IDENTIFIER_PATH,
    RESERVE_NUMBER_PATH,
    Brukare,
    Enhet,
    Samtyckesgrund,
    brukare,
    enhet,
    samtyckesgrund,
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
from services.messaging.vocabulary import TRESERVA_MEDICATION_LIST_SYSTEM

SCHEMA = "treserva/medication-list.schema.json"

Sammanhang = Literal["inskrivning", "utskrivning", "hemsjukvard"]
Status = Literal["aktiv", "pausad", "utsatt"]
AdministrerasAv = Literal["hemsjukvard", "patient", "narstaende", "sjukhus"]
Andring = Literal["insatt", "utsatt", "andrad", "oforandrad"]

SAMMANHANG: dict[Sammanhang, Context] = {
    "inskrivning": "admission",
    "utskrivning": "discharge",
    "hemsjukvard": "home-care",
}
STATUS: dict[Status, LineStatus] = {"aktiv": "active", "pausad": "paused", "utsatt": "stopped"}
ADMINISTRERAS_AV: dict[AdministrerasAv, AdministeredBy] = {
    "hemsjukvard": "home-care",
    "patient": "patient",
    "narstaende": "relative",
    "sjukhus": "hospital",
}
ANDRING: dict[Andring, ChangeKind] = {
    "insatt": "started",
    "utsatt": "stopped",
    "andrad": "changed",
    "oforandrad": "unchanged",
}
_ANDRING_OF = {v: k for k, v in ANDRING.items()}
_SAMMANHANG_OF = {v: k for k, v in SAMMANHANG.items()}
_STATUS_OF = {v: k for k, v in STATUS.items()}
_ADMINISTRERAS_AV_OF = {v: k for k, v in ADMINISTRERAS_AV.items()}


class Dos(NativeModel):
    varde: int | float
    enhet: str

    _finite = field_validator("varde")(finite)


class MaxDos(NativeModel):
    """Högsta dos per period, t.ex. 4 st per 24 timmar."""

    varde: int | float
    enhet: str
    period_timmar: int = Field(alias="periodTimmar")

    _finite = field_validator("varde")(finite)


class Villkor(NativeModel):
    text: str
    snomed_kod: str | None = Field(default=None, alias="snomedKod")


class Dosering(NativeModel):
    text: str
    dos: Dos | None = None
    antal_per_dygn: int | None = Field(default=None, alias="antalPerDygn")
    klockslag: tuple[str, ...] = ()
    vid_behov: bool | None = Field(default=None, alias="vidBehov")
    vid_behov_villkor: Villkor | None = Field(default=None, alias="vidBehovVillkor")
    max_dos: MaxDos | None = Field(default=None, alias="maxDos")

    def dosage(self) -> Dosage:
        v, m = self.vid_behov_villkor, self.max_dos
        return Dosage(
            text=self.text,
            dose=None if self.dos is None else Dose(self.dos.varde, self.dos.enhet),
            times_per_day=self.antal_per_dygn,
            times_of_day=self.klockslag,
            as_needed=self.vid_behov,
            as_needed_condition=None if v is None else AsNeededCondition(v.text, v.snomed_kod),
            max_dose=None if m is None else MaxDose(m.varde, m.enhet, m.period_timmar),
        )


class Forskrivare(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    namn: str | None = None


class RadAndring(NativeModel):
    typ: Andring
    orsak: str | None = None


class Rad(NativeModel):
    npl_id: str | None = Field(default=None, alias="nplId")
    npl_pack_id: str | None = Field(default=None, alias="nplPackId")
    atc_kod: str | None = Field(default=None, alias="atcKod")
    namn: str
    styrka: str | None = None
    form: str | None = None
    dosering: Dosering
    status: Status
    startdatum: date | None = None
    slutdatum: date | None = None
    orsak: str | None = None
    administreras_av: AdministrerasAv = Field(alias="administrerasAv")
    andringsnotering: str | None = None
    dosdispenserad: bool | None = None
    forskrivare: Forskrivare | None = None
    andring: RadAndring | None = None

    def line(self) -> MedicationLine:
        f, a = self.forskrivare, self.andring
        return MedicationLine(
            name=self.namn,
            dosage=self.dosering.dosage(),
            status=STATUS[self.status],
            administered_by=ADMINISTRERAS_AV[self.administreras_av],
            npl_id=self.npl_id,
            npl_pack_id=self.npl_pack_id,
            atc_code=self.atc_kod,
            strength=self.styrka,
            form=self.form,
            start_date=self.startdatum,
            end_date=self.slutdatum,
            reason=self.orsak,
            change_note=self.andringsnotering,
            dose_dispensed=self.dosdispenserad,
            prescriber=None if f is None else Prescriber(f.hsa_id, f.namn),
            change=None if a is None else LineChange(ANDRING[a.typ], a.orsak),
        )


class TreservaLakemedelslista(NativeEvent):
    meddelande_id: str = Field(alias="meddelandeId")
    lista_id: str = Field(alias="listaId")
    version: int
    sammanhang: Sammanhang
    tidpunkt: AwareDatetime
    brukare: Brukare
    samtyckesgrund: Samtyckesgrund
    enhet: Enhet
    vardtillfalle_id: str | None = Field(default=None, alias="vardtillfalleId")
    rader: tuple[Rad, ...]
    # Only the broker sets ersattAv, on delivery; a list Treserva pushes never has it.
    ersatt_av: None = Field(default=None, alias="ersattAv")
    # the receiving unit: set by the broker on delivery only (issue 20), refused from Treserva
    mottagande_enhet: None = Field(default=None, alias="mottagandeEnhet")
    # the case id the broker delivered (services.messaging.case), echoed back: this document
    # names no stay, so it joins the stay's case by it
    arende_id: str | None = Field(default=None, alias="arendeId")

    def business_key(self) -> BusinessKey:
        return BusinessKey(System.TRESERVA.value, self.lista_id, self.version)

    def event_code(self) -> EventCode:
        return EventCode.MEDICATION_LIST

    def patient_identifier(self) -> PatientIdentifier:
        return self.brukare.identifier

    def consent_block(self) -> Samtyckesgrund:
        return self.samtyckesgrund

    def medication_list(self, regional_reserve_oid: str | None = None) -> MedicationList:
        return MedicationList(
            list_id=self.lista_id,
            id_system=TRESERVA_MEDICATION_LIST_SYSTEM,
            version=self.version,
            context=SAMMANHANG[self.sammanhang],
            occurred_at=self.tidpunkt,
            patient=self.brukare.info(regional_reserve_oid),
            unit=self.enhet.info(),
            lines=tuple(rad.line() for rad in self.rader),
            encounter_id=self.vardtillfalle_id,
        )


def to_bundle(
    event: TreservaLakemedelslista, *, now: datetime, regional_reserve_oid: str | None = None
) -> Bundle:
    key = event.business_key()
    ref = refs(key)
    return message_bundle(
        key=key,
        case_id=stay_case_id(event.vardtillfalle_id) or event.arende_id,
        event=EventCode.MEDICATION_LIST,
        source=System.TRESERVA,
        now=now,
        focus=[FOCUS, "consent"],
        sender=SENDER,
        resources=[
            *list_resources(event.medication_list(regional_reserve_oid), ref),
            ("consent", consent_of(event.samtyckesgrund.basis(), ref, organization=SENDER)),
        ],
    )


INBOUND = InboundFamily(
    family="medication-list",
    route="lakemedelslistor",
    schema=SCHEMA,
    model=TreservaLakemedelslista,
    to_bundle=to_bundle,
    identifier_path=IDENTIFIER_PATH,
    reserve_number_path=RESERVE_NUMBER_PATH,
)


# --- FHIR → Treserva (a list from TakeCare) ----------------------------------------------------


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    """Treserva's document of a FHIR medication-list message; meddelandeId is the message id."""
    ml = read_medication_list(doc)
    meddelande_id = message_id_in(doc)
    native: dict[str, Any] = {
        "meddelandeId": meddelande_id,
        "listaId": ml.list_id,
        "version": ml.version,
        "sammanhang": _SAMMANHANG_OF[ml.context],
        "tidpunkt": ml.occurred_at.isoformat(),
        "brukare": brukare(ml.patient),
        "samtyckesgrund": samtyckesgrund(read_consent(doc)),
        "enhet": enhet(ml.unit),
    }
    if ml.encounter_id is not None:
        native["vardtillfalleId"] = ml.encounter_id
    native["rader"] = [_rad(line) for line in ml.lines]
    return native


def _rad(line: MedicationLine) -> dict[str, Any]:
    d = line.dosage
    dosering: dict[str, Any] = {"text": d.text}
    if d.dose is not None:
        dosering["dos"] = {"varde": d.dose.value, "enhet": d.dose.unit}
    if d.times_per_day is not None:
        dosering["antalPerDygn"] = d.times_per_day
    if d.times_of_day:
        dosering["klockslag"] = list(d.times_of_day)
    if d.as_needed is not None:
        dosering["vidBehov"] = d.as_needed
    if d.as_needed_condition is not None:
        v = d.as_needed_condition
        dosering["vidBehovVillkor"] = _present({"text": v.text, "snomedKod": v.snomed_code})
    if d.max_dose is not None:
        m = d.max_dose
        dosering["maxDos"] = {"varde": m.value, "enhet": m.unit, "periodTimmar": m.period_hours}
    f, a = line.prescriber, line.change
    fields: tuple[tuple[str, Any], ...] = (
        ("nplId", line.npl_id),
        ("nplPackId", line.npl_pack_id),
        ("atcKod", line.atc_code),
        ("namn", line.name),
        ("styrka", line.strength),
        ("form", line.form),
        ("dosering", dosering),
        ("status", _STATUS_OF[line.status]),
        ("startdatum", None if line.start_date is None else line.start_date.isoformat()),
        ("slutdatum", None if line.end_date is None else line.end_date.isoformat()),
        ("orsak", line.reason),
        ("administrerasAv", _ADMINISTRERAS_AV_OF[line.administered_by]),
        ("andringsnotering", line.change_note),
        ("dosdispenserad", line.dose_dispensed),
        ("forskrivare", None if f is None else _present({"hsaId": f.hsa_id, "namn": f.name})),
        (
            "andring",
            None if a is None else _present({"typ": _ANDRING_OF[a.kind], "orsak": a.reason}),
        ),
    )
    return _present(dict(fields))


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


OUTBOUND = OutboundFamily(
    family="medication-list",
    events=(EventCode.MEDICATION_LIST,),
    path="/api/v1/lakemedelslistor",
    schema=SCHEMA,
    to_native=to_native,
)
