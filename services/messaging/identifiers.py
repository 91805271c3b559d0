"""Swedish patient identifiers and keyed pseudonyms.

Four kinds, each with its own FHIR ``Identifier.system``::

    personnummer          YYYYMMDDNNNC: date of birth, birth number, Luhn check digit over
                          the last ten digits (Skatteverket)
    samordningsnummer     the same shape with 60 added to the day of birth (coordination
                          number, for people not or not yet registered in Sweden)
    nationellt reservnummer
                          the national reserve number, when identity is not established:
                          YYYYMMDD, an optional '-', then two letters and two digits or three
                          letters and one digit, the letters never I, O, Q, V or W
    regional reserve number
                          a region's own reserve number (lokalt reservnummer): its format is
                          the region's, its system is ``urn:oid:<the region's OID>``

Sources: HL7 Sweden's base profiles (github.com/HL7Sweden/basprofiler-r4): the aliases
``$personnummer``, ``$samordningsnummer`` and ``$nationelltReservnummer``
(http://electronichealth.se/identifier/nationelltReservnummer), the invariant
``nationelltReservnummer-invariant``
(``^([0-9]{8})-?([A-Z&&[^IOQVW]]{2}[0-9]{2}|[A-Z&&[^IOQVW]]{3}[0-9]{1})$``, examples
``98240301AA06`` and ``22950606-FH20``), and the SEBasePatient slices of the regions' local
reserve numbers, each ``urn:oid:`` of its own (Region Stockholm 1.2.752.97.3.1.3, VGR
1.2.752.113.11.0.2.1.1.1, Region Skåne 1.2.752.219.1.10.10.1, ...). OID registers disagree on
which OID is the national one (1.2.752.129.2.1.3.2 is listed as "nationellt reservnummer" in
some Inera documents and as Inera Carelink's local reserve number in the base profiles), so
the broker uses the base profiles' URI for the national number and never an OID guessed for
it. A regional number is only ever emitted under its region's OID (a setting of each adapter,
passed in to translation); with none configured it is refused, never labelled national.

A personnummer or samordningsnummer whose date of birth is after the event's clock (the
Swedish calendar date of ``now``) is refused, as is one whose date is not a calendar date.

The pseudonym is an HMAC of the normalised number. It is what the broker uses as Kafka key
and in logs and the delivery log, so identity never leaves the payload.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

PERSONNUMMER_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER_SYSTEM = "http://electronichealth.se/identifier/samordningsnummer"
NATIONAL_RESERVE_SYSTEM = "http://electronichealth.se/identifier/nationelltReservnummer"
HSA_ID_SYSTEM = "urn:oid:1.2.752.29.4.19"
OID_SYSTEM_PREFIX = "urn:oid:"

STOCKHOLM = ZoneInfo("Europe/Stockholm")

EXAMPLE_REGIONAL_RESERVE_OID = "2.999.752.1"
"""The sandbox's region OID for regional reserve numbers: under 2.999, the arc ISO/IEC 9834-1
and ITU-T X.660 set aside for examples, so it can never be a real region's. No OID register
we could read names Region Gotland's own reserve-number OID; a deployment sets the region's
OID from Inera's OID register (``<PREFIX>REGIONAL_RESERVE_OID``)."""

# ASCII: Python's \d also takes Arabic-Indic and full-width digits, which int() reads.
_SHAPE = re.compile(r"^(\d{8})[-+]?(\d{4})$", re.ASCII)
# HL7 Sweden's nationelltReservnummer-invariant; letters A-Z except I, O, Q, V, W.
_NATIONAL_RESERVE_SHAPE = re.compile(
    r"^([0-9]{8})-?([A-HJ-NPRSTUXYZ]{2}[0-9]{2}|[A-HJ-NPRSTUXYZ]{3}[0-9])$", re.ASCII
)
_REGIONAL_RESERVE_SHAPE = re.compile(r"^[0-9A-Z]{6,20}$", re.ASCII)
# An ISO OID: arcs of digits without leading zeros, the first arc 0, 1 or 2.
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$", re.ASCII)


class IdentifierKind(enum.StrEnum):
    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"
    NATIONAL_RESERVE = "nationellt-reservnummer"  # identity not (yet) established
    REGIONAL_RESERVE = "regionalt-reservnummer"  # the region's own reserve number


RESERVE_KINDS = frozenset({IdentifierKind.NATIONAL_RESERVE, IdentifierKind.REGIONAL_RESERVE})


class InvalidIdentifier(ValueError):
    """The value is not a valid identifier of its kind, or cannot be labelled. The message
    never repeats the value, so it is safe to log and to return to the caller. ``field`` is
    the native document's path of the number when the raiser knows it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def is_oid(value: str) -> bool:
    return _OID.match(value) is not None


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    kind: IdentifierKind
    value: str  # normalised: no separator; upper case letters for reserve numbers
    region_oid: str | None = None  # only for a regional reserve number: whose it is

    @property
    def system(self) -> str:
        """The FHIR ``Identifier.system``. A regional number without its region's OID has
        none: it raises rather than borrowing another kind's system."""
        if self.kind is IdentifierKind.REGIONAL_RESERVE:
            if self.region_oid is None:
                raise InvalidIdentifier(
                    "a regional reserve number needs its region's OID, and none is configured"
                )
            return OID_SYSTEM_PREFIX + self.region_oid
        return _SYSTEMS[self.kind]

    def in_region(self, region_oid: str | None) -> PatientIdentifier:
        """This identifier with the region's OID, if it is a regional reserve number that has
        none yet; any other identifier as it is."""
        if self.kind is IdentifierKind.REGIONAL_RESERVE and self.region_oid is None:
            return replace(self, region_oid=region_oid)
        return self


_SYSTEMS = {
    IdentifierKind.PERSONNUMMER: PERSONNUMMER_SYSTEM,
    IdentifierKind.SAMORDNINGSNUMMER: SAMORDNINGSNUMMER_SYSTEM,
    IdentifierKind.NATIONAL_RESERVE: NATIONAL_RESERVE_SYSTEM,
}
_KIND_BY_SYSTEM = {system: kind for kind, system in _SYSTEMS.items()}


def identifier_from_fhir(system: str, value: str) -> PatientIdentifier:
    """The identifier of a FHIR ``Patient.identifier``: one of the national systems, or a
    regional reserve number under ``urn:oid:<region>``. Raise for any other system. The
    value was validated where the message was built."""
    kind = _KIND_BY_SYSTEM.get(system)
    if kind is not None:
        return PatientIdentifier(kind=kind, value=value)
    oid = system.removeprefix(OID_SYSTEM_PREFIX)
    if system.startswith(OID_SYSTEM_PREFIX) and is_oid(oid) and system != HSA_ID_SYSTEM:
        return PatientIdentifier(IdentifierKind.REGIONAL_RESERVE, value, region_oid=oid)
    raise InvalidIdentifier(
        "identifier system is not personnummer, samordningsnummer or a reserve number's"
    )


def parse_national_reserve_number(raw: str) -> PatientIdentifier:
    """The national reserve number (nationellt reservnummer) in HL7 Sweden's format."""
    match = _NATIONAL_RESERVE_SHAPE.match(raw.strip())
    if match is None:
        raise InvalidIdentifier(
            "national reserve number must be YYYYMMDD, optional '-', then two letters and "
            "two digits or three letters and one digit (no I, O, Q, V, W)"
        )
    return PatientIdentifier(IdentifierKind.NATIONAL_RESERVE, "".join(match.groups()))


def parse_regional_reserve_number(raw: str) -> PatientIdentifier:
    """A region's own reserve number. Formats are the region's; this accepts 6 to 20
    letters and digits, separators removed, upper case. Its region is added by
    :meth:`PatientIdentifier.in_region`."""
    value = raw.replace("-", "").replace(" ", "").upper()
    if not _REGIONAL_RESERVE_SHAPE.match(value):
        raise InvalidIdentifier("regional reserve number must be 6 to 20 letters or digits")
    return PatientIdentifier(kind=IdentifierKind.REGIONAL_RESERVE, value=value)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def parse_patient_identifier(raw: str) -> PatientIdentifier:
    """Validate shape, date and check digit of a personnummer or samordningsnummer; return
    the normalised identifier. The date is checked against the calendar only: a date in
    the future needs the event's clock, see :func:`refuse_future_birth`."""
    match = _SHAPE.match(raw.strip())
    if match is None:
        raise InvalidIdentifier("must be 12 digits, YYYYMMDDNNNC, optionally with '-' or '+'")
    date_part, tail = match.groups()
    digits = date_part + tail
    if not luhn_ok(digits[2:]):
        raise InvalidIdentifier("check digit does not match (Luhn)")
    kind = IdentifierKind.SAMORDNINGSNUMMER if int(date_part[6:8]) > 60 else None
    ident = PatientIdentifier(kind=kind or IdentifierKind.PERSONNUMMER, value=digits)
    if birth_date(ident) is None:
        raise InvalidIdentifier("date of birth is not a calendar date")
    return ident


def birth_date(ident: PatientIdentifier) -> dt.date | None:
    """The date of birth in a personnummer or samordningsnummer (the century from the
    12-digit form); None for a reserve number, or for digits that are no calendar date."""
    if ident.kind not in (IdentifierKind.PERSONNUMMER, IdentifierKind.SAMORDNINGSNUMMER):
        return None
    year, month, day = int(ident.value[:4]), int(ident.value[4:6]), int(ident.value[6:8])
    if ident.kind is IdentifierKind.SAMORDNINGSNUMMER:
        day -= 60
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def refuse_future_birth(ident: PatientIdentifier, *, now: dt.datetime) -> None:
    """Raise if the date of birth comes after ``now``'s date in Sweden (a child born just
    after midnight Swedish time is born "today" while it is still yesterday in UTC)."""
    born = birth_date(ident)
    if born is not None and born > now.astimezone(STOCKHOLM).date():
        raise InvalidIdentifier("date of birth is in the future")


def check_identifier(
    ident: PatientIdentifier, *, now: dt.datetime, regional_reserve_oid: str | None
) -> PatientIdentifier:
    """What a document's identifier must pass beyond its format, given the event's clock
    and the region's OID: no birth in the future, and a regional reserve number only where
    the region's OID is known. Returns the identifier with its region."""
    refuse_future_birth(ident, now=now)
    ident = ident.in_region(regional_reserve_oid)
    if ident.kind is IdentifierKind.REGIONAL_RESERVE and ident.region_oid is None:
        raise InvalidIdentifier(
            "regional reserve numbers are not accepted: no regional reserve number OID is "
            "configured for this adapter"
        )
    return ident


def pseudonym(key: str, identifier: PatientIdentifier) -> str:
    """Keyed, stable pseudonym of a patient: hex HMAC-SHA256, 32 characters."""
    # Reserve numbers are namespaced so they never collide with a personnummer or with each
    # other: a regional number by its region.
    subject = identifier.value
    if identifier.kind is IdentifierKind.NATIONAL_RESERVE:
        subject = f"R:{subject}"
    elif identifier.kind is IdentifierKind.REGIONAL_RESERVE:
        subject = f"R:{identifier.system}:{subject}"
    mac = hmac.new(key.encode(), subject.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]
