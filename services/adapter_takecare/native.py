"""Parts every TakeCare native document shares: the patient, the care unit and the address,
and how they map to the broker's :class:`PatientInfo` and :class:`CareUnit` and back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from services.messaging.consent import ConsentBasis, Recipient
from services.messaging.fhir_parts import Address as AddressInfo
from services.messaging.fhir_parts import CareUnit, PatientInfo
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


class Address(NativeModel):
    street_address: str = Field(alias="streetAddress")
    postal_code: str = Field(alias="postalCode")
    city: str


class Unit(NativeModel):
    hsa_id: str = Field(alias="hsaId")
    name: str

    def info(self) -> CareUnit:
        return CareUnit(hsa_id=self.hsa_id, name=self.name)

    @classmethod
    def of(cls, unit: CareUnit) -> Unit:
        return cls.model_validate({"hsaId": unit.hsa_id, "name": unit.name})


class Person(NativeModel):
    name: str
    hsa_id: str = Field(alias="hsaId")


class StaffAtUnit(NativeModel):
    """A person at a unit, who acted on a message: read it (``reader``), wrote it
    (``sender``) or cancelled one (``cancelledBy``)."""

    name: str
    hsa_id: str = Field(alias="hsaId")
    unit_hsa_id: str = Field(alias="unitHsaId")

    def member(self) -> StaffMember:
        return StaffMember(self.name, self.hsa_id, self.unit_hsa_id)


def staff_doc(member: StaffMember) -> dict[str, str]:
    """TakeCare's form of a staff member read back from a FHIR message."""
    return {"name": member.name, "hsaId": member.hsa_id, "unitHsaId": member.unit_hsa_id}


class ConsentRecipient(NativeModel):
    unit_kind: Literal["hospital", "primary-care", "municipality"] = Field(alias="unitKind")
    hsa_id: str | None = Field(default=None, alias="hsaId")


class ConsentBasisBlock(NativeModel):
    """``consentBasis``: the patient's consent or the legal basis the event is shared on
    (``services.messaging.consent``)."""

    kind: Literal["samtycke", "menprovning", "nodsituation"]
    recorded_by: Person = Field(alias="recordedBy")
    recorded_at: AwareDatetime = Field(alias="recordedAt")
    scope: tuple[str, ...]
    recipients: tuple[ConsentRecipient, ...]
    withdrawn_at: AwareDatetime | None = Field(default=None, alias="withdrawnAt")

    def basis(self) -> ConsentBasis:
        return ConsentBasis(
            kind=self.kind,
            recorded_by_name=self.recorded_by.name,
            recorded_by_hsa_id=self.recorded_by.hsa_id,
            recorded_at=self.recorded_at,
            scope=self.scope,
            recipients=tuple(Recipient(r.unit_kind, r.hsa_id) for r in self.recipients),
            withdrawn_at=self.withdrawn_at,
        )

    def path(self, field: str) -> str:
        return f"{CONSENT_PATH}.{field}"


CONSENT_PATH = "consentBasis"


def consent_basis_doc(basis: ConsentBasis) -> dict[str, Any]:
    """TakeCare's ``consentBasis`` of a basis read back from a FHIR message."""
    return {
        "kind": basis.kind,
        "recordedBy": {"name": basis.recorded_by_name, "hsaId": basis.recorded_by_hsa_id},
        "recordedAt": basis.recorded_at.isoformat(),
        "scope": list(basis.scope),
        "recipients": [
            {"unitKind": r.unit_kind} | ({} if r.hsa_id is None else {"hsaId": r.hsa_id})
            for r in basis.recipients
        ],
    } | ({} if basis.withdrawn_at is None else {"withdrawnAt": basis.withdrawn_at.isoformat()})


IDENTIFIER_PATH = "patient.personalIdentityNumber"
RESERVE_NUMBER_PATH = "patient.reserveNumber"
ReserveNumberKind = Literal["national", "regional"]
_RESERVE_KINDS: dict[ReserveNumberKind, IdentifierKind] = {
    "national": IdentifierKind.NATIONAL_RESERVE,
    "regional": IdentifierKind.REGIONAL_RESERVE,
}


class Patient(NativeModel):
    """Exactly one of personalIdentityNumber (personnummer or samordningsnummer) and
    reserveNumber is given, and reserveNumberKind says whether a reserve number is the
    national one (nationellt reservnummer) or the region's own; the schema enforces it."""

    personal_identity_number: str | None = Field(default=None, alias="personalIdentityNumber")
    reserve_number: str | None = Field(default=None, alias="reserveNumber")
    reserve_number_kind: ReserveNumberKind | None = Field(default=None, alias="reserveNumberKind")
    family_name: str = Field(alias="familyName")
    given_name: str = Field(alias="givenName")
    registered_address: Address | None = Field(default=None, alias="registeredAddress")
    protected_identity: bool = Field(default=False, alias="protectedIdentity")
    # addressing by unit (issue 20): optional for now, so that no family's sender breaks
    municipality_of_residence: str | None = Field(default=None, alias="municipalityOfResidence")
    listed_primary_care_unit: str | None = Field(default=None, alias="listedPrimaryCareUnit")

    @property
    def identifier(self) -> PatientIdentifier:
        """The patient's identifier; a regional reserve number without its region."""
        if self.reserve_number is None:
            return parse_patient_identifier(self.personal_identity_number or "")
        try:
            if self.reserve_number_kind == "national":
                return parse_national_reserve_number(self.reserve_number)
            if self.reserve_number_kind == "regional":
                return parse_regional_reserve_number(self.reserve_number)
        except InvalidIdentifier as exc:
            raise InvalidIdentifier(str(exc), field=RESERVE_NUMBER_PATH) from None
        raise InvalidIdentifier(
            "reserveNumberKind must say national or regional", field="patient.reserveNumberKind"
        )

    def info(self, regional_reserve_oid: str | None = None) -> PatientInfo:
        """``regional_reserve_oid``: the region a regional reserve number belongs to."""
        a = self.registered_address
        return PatientInfo(
            identifier=self.identifier.in_region(regional_reserve_oid),
            family_name=self.family_name,
            given_name=self.given_name,
            address=None if a is None else AddressInfo(a.street_address, a.postal_code, a.city),
            protected=self.protected_identity,
            municipality=self.municipality_of_residence,
            listed_unit_hsa=self.listed_primary_care_unit,
        )

    @classmethod
    def of(cls, patient: PatientInfo) -> Patient:
        """TakeCare's form of a patient received from elsewhere (never with an address for
        a protected identity: the FHIR reader already dropped it)."""
        ident = patient.identifier
        a = patient.address
        kind = next((k for k, v in _RESERVE_KINDS.items() if v is ident.kind), None)
        number = (
            {"personalIdentityNumber": ident.value}
            if kind is None
            else {"reserveNumber": ident.value, "reserveNumberKind": kind}
        )
        return cls.model_validate(
            {
                **number,
                "familyName": patient.family_name,
                "givenName": patient.given_name,
                **(
                    {
                        "registeredAddress": {
                            "streetAddress": a.street,
                            "postalCode": a.postal_code,
                            "city": a.city,
                        }
                    }
                    if a is not None and not patient.protected
                    else {}
                ),
                "protectedIdentity": patient.protected,
            }
        )
