"""Parts every Treserva native document shares: the brukare (the person receiving care), the
enhet (unit), and how they map to the broker's :class:`PatientInfo` and :class:`CareUnit`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from services.messaging.consent import ConsentBasis, Recipient, read_consent
from services.messaging.fhir_parts import (
    Address,
    CareUnit,
    PatientInfo,
    known,
    message_id_in,
    one,
    read_patient,
    read_unit,
    resolve,
    text,
)
from services.messaging.identifiers import (
    IdentifierKind,
    InvalidIdentifier,
    PatientIdentifier,
    parse_national_reserve_number,
    parse_patient_identifier,
    parse_regional_reserve_number,
)
from services.messaging.native import NativeModel
from services.messaging.staff_member import StaffMember

IDENTIFIER_PATH = "brukare.personnummer"
RESERVE_NUMBER_PATH = "brukare.reservnummer"
ReservnummerTyp = Literal["nationellt", "regionalt"]
_RESERVE_KINDS: dict[ReservnummerTyp, IdentifierKind] = {
    "nationellt": IdentifierKind.NATIONAL_RESERVE,
    "regionalt": IdentifierKind.REGIONAL_RESERVE,
}


def brukare(patient: PatientInfo) -> dict[str, Any]:
    """Treserva's brukare of a patient; never an address for a protected identity."""
    ident = patient.identifier
    doc: dict[str, Any] = {}
    typ = next((t for t, kind in _RESERVE_KINDS.items() if kind is ident.kind), None)
    if typ is not None:
        doc["reservnummer"] = ident.value
        doc["reservnummerTyp"] = typ
    else:
        doc["personnummer"] = f"{ident.value[:8]}-{ident.value[8:]}"
        doc["samordningsnummer"] = ident.kind is IdentifierKind.SAMORDNINGSNUMMER
    doc |= {
        "efternamn": patient.family_name,
        "fornamn": patient.given_name,
        "skyddadIdentitet": patient.protected,
    }
    if patient.address is not None and not patient.protected:
        doc["folkbokforingsadress"] = {
            "gatuadress": patient.address.street,
            "postnummer": patient.address.postal_code,
            "postort": patient.address.city,
        }
    return doc


def enhet(unit: CareUnit) -> dict[str, str]:
    return {"hsaId": unit.hsa_id, "namn": unit.name}


class Folkbokforingsadress(NativeModel):
    gatuadress: str
    postnummer: str
    postort: str


class Enhet(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    namn: str

    def info(self) -> CareUnit:
        return CareUnit(hsa_id=self.hsa_id, name=self.namn)


class Brukare(NativeModel):
    """Exactly one of personnummer and reservnummer; reservnummerTyp says whether a reserve
    number is the national one or the region's own (the schema enforces both)."""

    personnummer: str | None = None
    samordningsnummer: bool = False
    reservnummer: str | None = None
    reservnummer_typ: ReservnummerTyp | None = Field(default=None, alias="reservnummerTyp")
    efternamn: str
    fornamn: str
    skyddad_identitet: bool = Field(alias="skyddadIdentitet")
    folkbokforingsadress: Folkbokforingsadress | None = None

    @property
    def identifier(self) -> PatientIdentifier:
        """The brukare's identifier; a regional reserve number without its region."""
        if self.reservnummer is None:
            return parse_patient_identifier(self.personnummer or "")
        try:
            if self.reservnummer_typ == "nationellt":
                return parse_national_reserve_number(self.reservnummer)
            if self.reservnummer_typ == "regionalt":
                return parse_regional_reserve_number(self.reservnummer)
        except InvalidIdentifier as exc:
            raise InvalidIdentifier(str(exc), field=RESERVE_NUMBER_PATH) from None
        raise InvalidIdentifier(
            "reservnummerTyp must say nationellt or regionalt", field="brukare.reservnummerTyp"
        )

    def info(self, regional_reserve_oid: str | None = None) -> PatientInfo:
        """``regional_reserve_oid``: the region a regional reserve number belongs to."""
        a = self.folkbokforingsadress
        return PatientInfo(
            identifier=self.identifier.in_region(regional_reserve_oid),
            family_name=self.efternamn,
            given_name=self.fornamn,
            address=None if a is None else Address(a.gatuadress, a.postnummer, a.postort),
            protected=self.skyddad_identitet,
        )


class Person(NativeModel):
    namn: str
    hsa_id: str = Field(alias="hsaId")


class PersonVidEnhet(NativeModel):
    """En person vid en enhet som har gjort något med ett meddelande: läst det (``lasare``),
    skrivit det (``avsandare``) eller makulerat ett (``makuleradAv``)."""

    namn: str
    hsa_id: str = Field(alias="hsaId")
    enhet_hsa_id: str = Field(alias="enhetHsaId")

    def member(self) -> StaffMember:
        return StaffMember(self.namn, self.hsa_id, self.enhet_hsa_id)


def person_vid_enhet(member: StaffMember) -> dict[str, str]:
    """Treserva's form of a staff member read back from a FHIR message."""
    return {"namn": member.name, "hsaId": member.hsa_id, "enhetHsaId": member.unit_hsa_id}


class Mottagare(NativeModel):
    enhetstyp: Literal["sjukhus", "primarvard", "kommun"]
    hsa_id: str | None = Field(default=None, alias="hsaId")


ENHETSTYPER = {"sjukhus": "hospital", "primarvard": "primary-care", "kommun": "municipality"}
CONSENT_PATH = "samtyckesgrund"
_FIELDS = {
    "scope": "omfattning",
    "recipients": "mottagare",
    "recordedAt": "registrerad",
    "withdrawnAt": "aterkallat",
}


class Samtyckesgrund(NativeModel):
    """``samtyckesgrund``: brukarens samtycke eller den rättsliga grund dokumentet delas på
    (``services.messaging.consent``)."""

    typ: Literal["samtycke", "menprovning", "nodsituation"]
    registrerad_av: Person = Field(alias="registreradAv")
    registrerad: AwareDatetime
    omfattning: tuple[str, ...]
    mottagare: tuple[Mottagare, ...]
    aterkallat: AwareDatetime | None = None

    def basis(self) -> ConsentBasis:
        return ConsentBasis(
            kind=self.typ,
            recorded_by_name=self.registrerad_av.namn,
            recorded_by_hsa_id=self.registrerad_av.hsa_id,
            recorded_at=self.registrerad,
            scope=self.omfattning,
            recipients=tuple(Recipient(ENHETSTYPER[m.enhetstyp], m.hsa_id) for m in self.mottagare),
            withdrawn_at=self.aterkallat,
        )

    def path(self, field: str) -> str:
        return f"{CONSENT_PATH}.{_FIELDS.get(field, field)}"


def samtyckesgrund(basis: ConsentBasis) -> dict[str, Any]:
    """Treserva's ``samtyckesgrund`` of a basis read back from a FHIR message."""
    typer = {kind: typ for typ, kind in ENHETSTYPER.items()}
    return {
        "typ": basis.kind,
        "registreradAv": {"namn": basis.recorded_by_name, "hsaId": basis.recorded_by_hsa_id},
        "registrerad": basis.recorded_at.isoformat(),
        "omfattning": list(basis.scope),
        "mottagare": [
            {"enhetstyp": typer[r.unit_kind]} | ({} if r.hsa_id is None else {"hsaId": r.hsa_id})
            for r in basis.recipients
        ],
    } | ({} if basis.withdrawn_at is None else {"aterkallat": basis.withdrawn_at.isoformat()})


def stay_notice(
    doc: dict[str, Any], typ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What every Treserva notice about a hospital stay starts with: the message's
    MessageHeader, the Encounter it is about, and the notice's shared fields (id, type by
    ``typ``, time sent, the brukare, the stay and its unit)."""
    header = one(doc, "MessageHeader")
    encounter = resolve(doc, header, "focus.0", "Encounter")
    notice: dict[str, Any] = {
        "meddelandeId": message_id_in(doc),
        "typ": known(typ, text(header, "eventCoding.code"), "MessageHeader.eventCoding.code"),
        "skickat": text(doc, "timestamp"),
        "brukare": brukare(read_patient(resolve(doc, encounter, "subject"))),
        "vardtillfalle": {
            "id": text(encounter, "identifier.0.value"),
            "inskriven": text(encounter, "period.start"),
            "avdelning": enhet(read_unit(resolve(doc, encounter, "serviceProvider"))),
        },
        "samtyckesgrund": samtyckesgrund(read_consent(doc)),
    }
    return header, encounter, notice
