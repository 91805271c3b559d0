"""Parts every TakeCare native document shares: the patient, the care unit and the address,
and how they map to the broker's :class:`PatientInfo` and :class:`CareUnit` and back."""

from __future__ import annotations

from pydantic import Field

from services.messaging.fhir_parts import Address as AddressInfo
from services.messaging.fhir_parts import CareUnit, PatientInfo
from services.messaging.identifiers import (
    IdentifierKind,
    PatientIdentifier,
    parse_patient_identifier,
    parse_reserve_number,
)
from services.messaging.native import NativeModel


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


class Patient(NativeModel):
    """Exactly one of personalIdentityNumber (personnummer or samordningsnummer) and
    reserveNumber is given; the schema enforces it."""

    personal_identity_number: str | None = Field(default=None, alias="personalIdentityNumber")
    reserve_number: str | None = Field(default=None, alias="reserveNumber")
    family_name: str = Field(alias="familyName")
    given_name: str = Field(alias="givenName")
    registered_address: Address | None = Field(default=None, alias="registeredAddress")
    protected_identity: bool = Field(default=False, alias="protectedIdentity")

    @property
    def identifier(self) -> PatientIdentifier:
        if self.reserve_number is not None:
            return parse_reserve_number(self.reserve_number)
        return parse_patient_identifier(self.personal_identity_number or "")

    def info(self) -> PatientInfo:
        a = self.registered_address
        return PatientInfo(
            identifier=self.identifier,
            family_name=self.family_name,
            given_name=self.given_name,
            address=None if a is None else AddressInfo(a.street_address, a.postal_code, a.city),
            protected=self.protected_identity,
        )

    @classmethod
    def of(cls, patient: PatientInfo) -> Patient:
        """TakeCare's form of a patient received from elsewhere (never with an address for
        a protected identity: the FHIR reader already dropped it)."""
        ident = patient.identifier
        a = patient.address
        return cls.model_validate(
            {
                (
                    "reserveNumber"
                    if ident.kind is IdentifierKind.RESERVNUMMER
                    else "personalIdentityNumber"
                ): ident.value,
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


IDENTIFIER_PATH = "patient.personalIdentityNumber"
