"""TakeCare's native admission event (inskrivningsmeddelande), as this adapter accepts it.

The contract is ``contracts/takecare/admission-notice.schema.json``. :func:`parse_admission`
checks the schema, then what a schema cannot: the personnummer or samordningsnummer check
digit and date, and timezone-aware timestamps.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.messaging.contracts import Violation, violations
from services.messaging.identifiers import (
    InvalidIdentifier,
    PatientIdentifier,
    parse_patient_identifier,
)

SCHEMA = "takecare/admission-notice.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class Address(_Model):
    street_address: str = Field(alias="streetAddress")
    postal_code: str = Field(alias="postalCode")
    city: str


class Unit(_Model):
    hsa_id: str = Field(alias="hsaId")
    name: str


class Patient(_Model):
    personal_identity_number: str = Field(alias="personalIdentityNumber")
    family_name: str = Field(alias="familyName")
    given_name: str = Field(alias="givenName")
    registered_address: Address | None = Field(default=None, alias="registeredAddress")
    protected_identity: bool = Field(default=False, alias="protectedIdentity")

    @property
    def identifier(self) -> PatientIdentifier:
        return parse_patient_identifier(self.personal_identity_number)


class Encounter(_Model):
    encounter_id: str = Field(alias="encounterId")
    admitted_at: AwareDatetime = Field(alias="admittedAt")
    unit: Unit


class TakeCareAdmission(_Model):
    event_id: str = Field(alias="eventId")
    version: int = 1
    event_type: str = Field(alias="eventType")
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    patient: Patient
    encounter: Encounter
    expected_discharge_at: AwareDatetime | None = Field(alias="expectedDischargeAt")
    admission_reason: str = Field(alias="admissionReason")
    housing_situation: str | None = Field(default=None, alias="housingSituation")
    social_situation: str | None = Field(default=None, alias="socialSituation")
    care_needs_assessment: str | None = Field(default=None, alias="careNeedsAssessment")


class InvalidAdmission(ValueError):
    """The event breaks the contract; ``violations`` says where, without patient data."""

    def __init__(self, found: list[Violation]) -> None:
        super().__init__(f"{len(found)} contract violation(s)")
        self.violations = found


def parse_admission(document: Any) -> TakeCareAdmission:
    found = violations(SCHEMA, document)
    if found:
        raise InvalidAdmission(found)
    try:
        event = TakeCareAdmission.model_validate(document)
    except ValidationError as exc:
        raise InvalidAdmission(
            [
                Violation(".".join(str(p) for p in err["loc"]), err["type"], err["msg"])
                for err in exc.errors(include_input=False)
            ]
        ) from None
    try:
        parse_patient_identifier(event.patient.personal_identity_number)
    except InvalidIdentifier as exc:
        raise InvalidAdmission(
            [Violation("patient.personalIdentityNumber", "identifier", str(exc))]
        ) from None
    return event
