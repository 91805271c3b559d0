"""Test people, units and places every sample draws from. Pure: everything takes a
``random.Random``.

Patients use only Skatteverket's published test personnummer and samordningsnummer, plus
made-up reserve numbers of both kinds: national ones in HL7 Sweden's format (YYYYMMDD, then
two letters and two digits or three letters and a digit) and regional ones in the region's
own format (Gotland's as the sandbox makes them up), which the adapters send under the
region's OID. Names and places carry å, ä and ö on purpose.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")

PERSONNUMMER: tuple[str, ...] = ("201701012393", "191212121212")
SAMORDNINGSNUMMER: tuple[str, ...] = ("191401682396", "202601612381")
TEST_IDENTIFIERS: tuple[str, ...] = PERSONNUMMER + SAMORDNINGSNUMMER
REGIONAL_RESERVE_NUMBERS: tuple[str, ...] = ("GOT2026000417", "GOT2026001239")
NATIONAL_RESERVE_NUMBERS: tuple[str, ...] = ("19470312KT07", "20010911KTZ4")
RESERVE_NUMBERS: tuple[str, ...] = REGIONAL_RESERVE_NUMBERS + NATIONAL_RESERVE_NUMBERS

PEOPLE = (
    ("Tolvansson", "Tolvan"),
    ("Öberg", "Åsa"),
    ("Lärkström", "Märta"),
    ("Söderqvist", "Göran"),
    ("Ångström", "Björn"),
    ("Nyström", "Elsa"),
)
ADDRESSES = (
    ("Strandgatan 12", "621 56", "Visby"),
    ("Hamngatan 4", "624 48", "Slite"),
    ("Storgatan 9", "623 50", "Hemse"),
    ("Kungsgårdsvägen 3", "622 54", "Roma"),
)
HOSPITAL_UNITS = (
    ("SE2321000222-MED3", "Medicinavdelning 3, Visby lasarett"),
    ("SE2321000222-AKUT", "Akutvårdsavdelningen"),
    ("SE2321000222-ORTO", "Ortopedavdelningen"),
)
MUNICIPAL_UNITS = (
    ("SE2120000803-HSJV", "Hemsjukvården Gotland, område Norr"),
    ("SE2120000803-HTJS", "Hemtjänsten Södra Gotland"),
)
PRIMARY_CARE_UNITS = (("SE2321000222-VCVI", "Vårdcentralen Visby Norr"),)
# addressing by unit (issue 20): every sample patient lives in Gotland's one municipality
# (kommunkod 0980) and is listed at its vårdcentral; no extra draw, so seeds give the same
# people as before
GOTLAND_KOMMUNKOD = "0980"


def identifier(rng: random.Random, *, reserve_share: float = 0.05) -> tuple[str, str]:
    """(kind, value): kind "personnummer" (or samordningsnummer), "national" or "regional"
    (a reserve number of that kind)."""
    if rng.random() < reserve_share:
        if rng.random() < 0.5:
            return "national", rng.choice(NATIONAL_RESERVE_NUMBERS)
        return "regional", rng.choice(REGIONAL_RESERVE_NUMBERS)
    return "personnummer", rng.choice(TEST_IDENTIFIERS)


def takecare_patient(rng: random.Random, *, protected_share: float = 0.1) -> dict[str, Any]:
    """A patient as TakeCare writes one (contracts/takecare/common.schema.json)."""
    family, given = rng.choice(PEOPLE)
    kind, value = identifier(rng)
    number: dict[str, Any] = (
        {"personalIdentityNumber": value}
        if kind == "personnummer"
        else {"reserveNumber": value, "reserveNumberKind": kind}
    )
    patient: dict[str, Any] = {
        **number,
        "familyName": family,
        "givenName": given,
        "municipalityOfResidence": GOTLAND_KOMMUNKOD,
        "listedPrimaryCareUnit": PRIMARY_CARE_UNITS[0][0],
    }
    if rng.random() < protected_share:
        patient["protectedIdentity"] = True
    else:
        street, postal, city = rng.choice(ADDRESSES)
        patient["registeredAddress"] = {"streetAddress": street, "postalCode": postal, "city": city}
    return patient


def treserva_brukare(rng: random.Random, *, protected_share: float = 0.1) -> dict[str, Any]:
    """A brukare as Treserva writes one (contracts/treserva/common.schema.json)."""
    family, given = rng.choice(PEOPLE)
    kind, value = identifier(rng)
    brukare: dict[str, Any] = {}
    if kind != "personnummer":
        brukare["reservnummer"] = value
        brukare["reservnummerTyp"] = "nationellt" if kind == "national" else "regionalt"
    else:
        brukare["personnummer"] = f"{value[:8]}-{value[8:]}"
        brukare["samordningsnummer"] = value in SAMORDNINGSNUMMER
    protected = rng.random() < protected_share
    brukare |= {"efternamn": family, "fornamn": given, "skyddadIdentitet": protected}
    if not protected:
        street, postal, city = rng.choice(ADDRESSES)
        brukare["folkbokforingsadress"] = {
            "gatuadress": street,
            "postnummer": postal,
            "postort": city,
        }
    return brukare


def takecare_unit(rng: random.Random) -> dict[str, str]:
    hsa_id, name = rng.choice(HOSPITAL_UNITS)
    return {"hsaId": hsa_id, "name": name}


def treserva_enhet(rng: random.Random) -> dict[str, str]:
    hsa_id, name = rng.choice(MUNICIPAL_UNITS)
    return {"hsaId": hsa_id, "namn": name}


# Who records consent in the samples: a ward nurse and a municipal case officer. Consent is
# drawn from no ``rng``, so adding it changed no sample's other values.
CONSENT_RECORDER = ("SE2321000222-P4711", "Karin Lindqvist")
MUNICIPAL_CONSENT_RECORDER = ("SE2120000415-P0042", "Maria Ek")
# A consent is recorded two days before the sample's moment, and never after this one: tests
# draw samples at any moment but run the intake on the fixtures' clock (20 November 2026),
# and the intake refuses a consent recorded in its future.
LATEST_CONSENT = datetime(2026, 11, 1, tzinfo=STOCKHOLM)
ALL_FAMILIES = (
    "admission-notice",
    "discharge-readiness",
    "discharge-notice",
    "medication-list",
    "sip-update",
    "admission-answer",
    "ready-to-receive",
    "read-receipt",
    "process-interrupted",
    "transfer",
    "patient-deceased",
    "administrative-message",
)


def takecare_consent_basis(now: datetime, *, kind: str = "samtycke") -> dict[str, Any]:
    """The patient's consent as TakeCare records it at admission: every family, to the
    municipality and primary care, recorded two days before ``now`` (at the latest
    :data:`LATEST_CONSENT`)."""
    hsa_id, name = CONSENT_RECORDER
    return {
        "kind": kind,
        "recordedBy": {"name": name, "hsaId": hsa_id},
        "recordedAt": _consent_recorded(now),
        "scope": list(ALL_FAMILIES),
        "recipients": [{"unitKind": "municipality"}, {"unitKind": "primary-care"}],
    }


def treserva_samtyckesgrund(now: datetime, *, typ: str = "samtycke") -> dict[str, Any]:
    """Brukarens samtycke as Treserva records it: every family, to the region's hospital
    (whose SIP module primary care shares), registered two days before ``now`` (at the
    latest :data:`LATEST_CONSENT`)."""
    hsa_id, name = MUNICIPAL_CONSENT_RECORDER
    return {
        "typ": typ,
        "registreradAv": {"namn": name, "hsaId": hsa_id},
        "registrerad": _consent_recorded(now),
        "omfattning": list(ALL_FAMILIES),
        "mottagare": [{"enhetstyp": "sjukhus"}],
    }


def _consent_recorded(now: datetime) -> str:
    at = min(now.astimezone(STOCKHOLM) - timedelta(days=2), LATEST_CONSENT)
    return at.isoformat(timespec="seconds")
