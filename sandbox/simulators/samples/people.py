"""Test people, units and places every sample draws from. Pure: everything takes a
``random.Random``.

Patients use only Skatteverket's published test personnummer and samordningsnummer, plus
made-up reserve numbers of both kinds: national ones in HL7 Sweden's format (YYYYMMDD, then
two letters and two digits or three letters and a digit) and regional ones in the region's
own format (as the sandbox makes them up), which the adapters send under the region's OID.
Names and places carry å, ä and ö on purpose.

The samples draw from one sandbox region (:class:`SampleRegion`), the one whose unit
directory the router runs (contracts/units/<region>.json): by default the fictive
:data:`HALLAND` (three municipalities, two vårdcentraler), where each sample person lives in
one of the three municipalities (folkbokföringskommun) and is listed at one of the two
vårdcentraler; :data:`GOTLAND` (one region, one municipality) on request. A simulator or a
scenario chooses it with :func:`in_region` around its draws; the choice is a context
variable, so a test that never chooses always draws Halland's people.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
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
# addressing by unit (issue 20): in Gotland every sample patient lives in its one
# municipality (kommunkod 0980) and is listed at its vårdcentral
GOTLAND_KOMMUNKOD = "0980"

Place = tuple[str, str, str]  # street, postal code, town
Units = tuple[tuple[str, str], ...]  # (HSA-id, name)


@dataclass(frozen=True, slots=True)
class SampleRegion:
    """The people and units of one sandbox region, as its unit directory
    (contracts/units/<name>.json) lists them. ``residents[i]`` is where ``PEOPLE[i]`` lives
    and is listed: (kommunkod, HSA-id of the listed vårdcentral); the person's draw decides
    both, so a region adds no draw of its own."""

    name: str
    residents: tuple[tuple[str, str], ...]
    addresses: dict[str, tuple[Place, ...]]  # kommunkod → places in that municipality
    hospital_units: Units
    municipal_units: Units
    primary_care_units: Units

    def municipalities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(kommun for kommun, _ in self.residents))


GOTLAND = SampleRegion(
    name="gotland",
    residents=((GOTLAND_KOMMUNKOD, PRIMARY_CARE_UNITS[0][0]),) * len(PEOPLE),
    addresses={GOTLAND_KOMMUNKOD: ADDRESSES},
    hospital_units=HOSPITAL_UNITS,
    municipal_units=MUNICIPAL_UNITS,
    primary_care_units=PRIMARY_CARE_UNITS,
)

HALMSTAD, FALKENBERG, VARBERG = "1380", "1382", "1383"
VC_ANDERSBERG, VC_FALKENBERG = "SE2321000115-VCANDE", "SE2321000115-VCFBG"
HALLAND = SampleRegion(
    name="halland",
    # two people in each municipality; a Varberg patient may be listed at either vårdcentral
    residents=(
        (HALMSTAD, VC_ANDERSBERG),
        (FALKENBERG, VC_FALKENBERG),
        (VARBERG, VC_FALKENBERG),
        (HALMSTAD, VC_ANDERSBERG),
        (FALKENBERG, VC_FALKENBERG),
        (VARBERG, VC_ANDERSBERG),
    ),
    addresses={
        HALMSTAD: (("Storgatan 14", "302 43", "Halmstad"), ("Linjegatan 7", "302 60", "Halmstad")),
        FALKENBERG: (("Nygatan 21", "311 31", "Falkenberg"), ("Skrea backe 3", "311 42", "Skrea")),
        VARBERG: (("Kungsgatan 9", "432 41", "Varberg"), ("Träslövsvägen 18", "432 53", "Träslöv")),
    },
    hospital_units=(
        ("SE2321000115-HSMED1", "Medicinavdelning 1, Hallands sjukhus Halmstad"),
        ("SE2321000115-HSVP", "Vårdplaneringen, Hallands sjukhus Halmstad"),
    ),
    municipal_units=(
        ("SE2120000000-HMSHSV", "Hemsjukvården Halmstad, mottagning"),
        ("SE2120000001-FBGHSV", "Hemsjukvården Falkenberg, mottagning"),
        ("SE2120000002-VBGHSV", "Hemsjukvården Varberg, mottagning"),
    ),
    primary_care_units=(
        (VC_ANDERSBERG, "Vårdcentralen Andersberg, Halmstad"),
        (VC_FALKENBERG, "Vårdcentralen Falkenberg"),
    ),
)
REGIONS: dict[str, SampleRegion] = {r.name: r for r in (HALLAND, GOTLAND)}
ALL_ADDRESSES: tuple[Place, ...] = tuple(
    place for region in REGIONS.values() for places in region.addresses.values() for place in places
)

_REGION: ContextVar[SampleRegion] = ContextVar("sample_region", default=HALLAND)


def current_region() -> SampleRegion:
    """The region the samples draw from (Halland unless :func:`in_region` chose another)."""
    return _REGION.get()


@contextmanager
def in_region(region: SampleRegion | str) -> Iterator[SampleRegion]:
    """Draw from ``region`` (a :class:`SampleRegion` or its name) inside the block."""
    chosen = REGIONS[region] if isinstance(region, str) else region
    token = _REGION.set(chosen)
    try:
        yield chosen
    finally:
        _REGION.reset(token)


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
    region = current_region()
    person = rng.randrange(len(PEOPLE))  # the same draw as rng.choice(PEOPLE)
    family, given = PEOPLE[person]
    municipality, listed = region.residents[person]
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
        "municipalityOfResidence": municipality,
        "listedPrimaryCareUnit": listed,
    }
    if rng.random() < protected_share:
        patient["protectedIdentity"] = True
    else:
        street, postal, city = rng.choice(region.addresses[municipality])
        patient["registeredAddress"] = {"streetAddress": street, "postalCode": postal, "city": city}
    return patient


def treserva_brukare(rng: random.Random, *, protected_share: float = 0.1) -> dict[str, Any]:
    """A brukare as Treserva writes one (contracts/treserva/common.schema.json)."""
    region = current_region()
    person = rng.randrange(len(PEOPLE))
    family, given = PEOPLE[person]
    municipality, _listed = region.residents[person]
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
        street, postal, city = rng.choice(region.addresses[municipality])
        brukare["folkbokforingsadress"] = {
            "gatuadress": street,
            "postnummer": postal,
            "postort": city,
        }
    return brukare


def takecare_unit(rng: random.Random) -> dict[str, str]:
    hsa_id, name = rng.choice(current_region().hospital_units)
    return {"hsaId": hsa_id, "name": name}


def treserva_enhet(rng: random.Random) -> dict[str, str]:
    hsa_id, name = rng.choice(current_region().municipal_units)
    return {"hsaId": hsa_id, "namn": name}


def hospital_units() -> Units:
    """The current region's hospital wards (TakeCare)."""
    return current_region().hospital_units


def municipal_units() -> Units:
    """The current region's municipal home-care units (Treserva)."""
    return current_region().municipal_units


def primary_care_units() -> Units:
    """The current region's vårdcentraler."""
    return current_region().primary_care_units


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
