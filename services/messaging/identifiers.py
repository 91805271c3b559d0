"""Swedish patient identifiers (personnummer, samordningsnummer) and keyed pseudonyms.

A personnummer is YYYYMMDDNNNC: the date of birth, a three-digit birth number and a Luhn
check digit computed over the last ten digits. A samordningsnummer (coordination number, for
people who are not or not yet registered in Sweden) has the same shape with 60 added to the
day of birth. Both are normalised to twelve digits without separator.

The pseudonym is an HMAC of the normalised number. It is what the broker uses as Kafka key
and in logs and the delivery log, so identity never leaves the payload.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass

PERSONNUMMER_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER_SYSTEM = "http://electronichealth.se/identifier/samordningsnummer"
RESERVNUMMER_SYSTEM = "http://electronichealth.se/identifier/nationelltReservnummer"
HSA_ID_SYSTEM = "urn:oid:1.2.752.29.4.19"

# ASCII: Python's \d also takes Arabic-Indic and full-width digits, which int() reads.
_SHAPE = re.compile(r"^(\d{8})[-+]?(\d{4})$", re.ASCII)


class IdentifierKind(enum.StrEnum):
    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"
    RESERVNUMMER = "reservnummer"  # reserve number: identity not (yet) established


class InvalidIdentifier(ValueError):
    """The value is not a valid personnummer or samordningsnummer. The message never
    repeats the value, so it is safe to log and to return to the caller."""


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    kind: IdentifierKind
    value: str  # twelve digits, no separator

    @property
    def system(self) -> str:
        return _SYSTEMS[self.kind]


_SYSTEMS = {
    IdentifierKind.PERSONNUMMER: PERSONNUMMER_SYSTEM,
    IdentifierKind.SAMORDNINGSNUMMER: SAMORDNINGSNUMMER_SYSTEM,
    IdentifierKind.RESERVNUMMER: RESERVNUMMER_SYSTEM,
}
_KIND_BY_SYSTEM = {system: kind for kind, system in _SYSTEMS.items()}
_RESERVE_SHAPE = re.compile(r"^[0-9A-Z]{6,20}$")


def identifier_from_fhir(system: str, value: str) -> PatientIdentifier:
    """The identifier of a FHIR ``Patient.identifier``; raise for a system this broker
    does not know. The value was validated where the message was built."""
    kind = _KIND_BY_SYSTEM.get(system)
    if kind is None:
        raise InvalidIdentifier(
            "identifier system is not personnummer, samordningsnummer or reservnummer"
        )
    return PatientIdentifier(kind=kind, value=value)


def parse_reserve_number(raw: str) -> PatientIdentifier:
    """A reserve number (reservnummer) given when identity is not established. Formats are
    regional; this accepts 6 to 20 letters and digits, separators removed, upper case."""
    value = raw.replace("-", "").replace(" ", "").upper()
    if not _RESERVE_SHAPE.match(value):
        raise InvalidIdentifier("reserve number must be 6 to 20 letters or digits")
    return PatientIdentifier(kind=IdentifierKind.RESERVNUMMER, value=value)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def parse_patient_identifier(raw: str) -> PatientIdentifier:
    """Validate shape, date and check digit; return the normalised identifier."""
    match = _SHAPE.match(raw.strip())
    if match is None:
        raise InvalidIdentifier("must be 12 digits, YYYYMMDDNNNC, optionally with '-' or '+'")
    date_part, tail = match.groups()
    digits = date_part + tail
    if not luhn_ok(digits[2:]):
        raise InvalidIdentifier("check digit does not match (Luhn)")
    year, month, day = int(date_part[:4]), int(date_part[4:6]), int(date_part[6:8])
    kind = IdentifierKind.PERSONNUMMER
    if day > 60:
        kind, day = IdentifierKind.SAMORDNINGSNUMMER, day - 60
    try:
        dt.date(year, month, day)
    except ValueError:
        raise InvalidIdentifier("date of birth is not a calendar date") from None
    return PatientIdentifier(kind=kind, value=digits)


def pseudonym(key: str, identifier: PatientIdentifier) -> str:
    """Keyed, stable pseudonym of a patient: hex HMAC-SHA256, 32 characters."""
    # A reserve number is namespaced so it can never collide with a personnummer.
    subject = identifier.value
    if identifier.kind is IdentifierKind.RESERVNUMMER:
        subject = f"R:{subject}"
    mac = hmac.new(key.encode(), subject.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]
