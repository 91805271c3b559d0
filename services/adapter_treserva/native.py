"""Parts every Treserva native document shares: the brukare (the person receiving care), the
enhet (unit), and how they map to the broker's :class:`PatientInfo` and :class:`CareUnit`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from services.messaging.fhir_parts import (
    Address,
    CareUnit,
    PatientInfo,
    known,
    one,
    read_patient,
    read_unit,
    resolve,
    text,
)
from services.messaging.identifiers import (
    IdentifierKind,
    PatientIdentifier,
    parse_patient_identifier,
    parse_reserve_number,
)
from services.messaging.native import NativeModel

IDENTIFIER_PATH = "brukare.personnummer"


def brukare(patient: PatientInfo) -> dict[str, Any]:
    """Treserva's brukare of a patient; never an address for a protected identity."""
    ident = patient.identifier
    doc: dict[str, Any] = {}
    if ident.kind is IdentifierKind.RESERVNUMMER:
        doc["reservnummer"] = ident.value
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
    personnummer: str | None = None
    samordningsnummer: bool = False
    reservnummer: str | None = None
    efternamn: str
    fornamn: str
    skyddad_identitet: bool = Field(alias="skyddadIdentitet")
    folkbokforingsadress: Folkbokforingsadress | None = None

    @property
    def identifier(self) -> PatientIdentifier:
        if self.reservnummer is not None:
            return parse_reserve_number(self.reservnummer)
        return parse_patient_identifier(self.personnummer or "")

    def info(self) -> PatientInfo:
        a = self.folkbokforingsadress
        return PatientInfo(
            identifier=self.identifier,
            family_name=self.efternamn,
            given_name=self.fornamn,
            address=None if a is None else Address(a.gatuadress, a.postnummer, a.postort),
            protected=self.skyddad_identitet,
        )


def stay_notice(
    doc: dict[str, Any], typ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What every Treserva notice about a hospital stay starts with: the message's
    MessageHeader, the Encounter it is about, and the notice's shared fields (id, type by
    ``typ``, time sent, the brukare, the stay and its unit)."""
    header = one(doc, "MessageHeader")
    encounter = resolve(doc, header, "focus.0", "Encounter")
    notice: dict[str, Any] = {
        "meddelandeId": text(doc, "id"),
        "typ": known(typ, text(header, "eventCoding.code"), "MessageHeader.eventCoding.code"),
        "skickat": text(doc, "timestamp"),
        "brukare": brukare(read_patient(resolve(doc, encounter, "subject"))),
        "vardtillfalle": {
            "id": text(encounter, "identifier.0.value"),
            "inskriven": text(encounter, "period.start"),
            "avdelning": enhet(read_unit(resolve(doc, encounter, "serviceProvider"))),
        },
    }
    return header, encounter, notice
