"""Patient identifiers: personnummer, samordningsnummer, the national reserve number and
regional reserve numbers; future birth dates; keyed pseudonyms."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.adapter_takecare.families.admission_notice import INBOUND as ADMISSIONS
from services.messaging.envelope import to_json
from services.messaging.identifiers import (
    NATIONAL_RESERVE_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
    IdentifierKind,
    InvalidIdentifier,
    check_identifier,
    identifier_from_fhir,
    luhn_ok,
    parse_national_reserve_number,
    parse_patient_identifier,
    parse_regional_reserve_number,
    pseudonym,
)
from services.messaging.native import InvalidEvent

# Skatteverket's published test numbers.
PERSONNUMMER = ["201701012393", "191212121212", "19121212-1212"]
SAMORDNINGSNUMMER = ["191401682396", "202601612381"]


@pytest.mark.parametrize("raw", PERSONNUMMER)
def test_valid_personnummer_is_normalised(raw):
    ident = parse_patient_identifier(raw)
    assert ident.kind is IdentifierKind.PERSONNUMMER
    assert ident.value == raw.replace("-", "")
    assert ident.system == PERSONNUMMER_SYSTEM


@pytest.mark.parametrize("raw", SAMORDNINGSNUMMER)
def test_samordningsnummer_is_recognised_by_day_plus_60(raw):
    ident = parse_patient_identifier(raw)
    assert ident.kind is IdentifierKind.SAMORDNINGSNUMMER
    assert ident.system == SAMORDNINGSNUMMER_SYSTEM


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("201701012394", "Luhn"),  # wrong check digit
        ("201702302390", "calendar"),  # 30 February (check digit fixed below)
        ("2017010123", "12 digits"),
        ("20170101x2393", "12 digits"),
    ],
)
def test_invalid_identifiers_are_refused_without_echoing_them(raw, why):
    if why == "calendar":
        # make the check digit right so that only the date is wrong
        body = raw[:-1]
        raw = next(body + d for d in "0123456789" if luhn_ok((body + d)[2:]))
    with pytest.raises(InvalidIdentifier) as err:
        parse_patient_identifier(raw)
    assert why.lower() in str(err.value).lower()
    assert raw not in str(err.value)


@given(st.dates(date(1890, 1, 1), date(2030, 12, 31)), st.integers(0, 999), st.integers(1, 9))
def test_any_single_digit_error_in_check_digit_is_caught(day, serial, delta):
    body = f"{day:%Y%m%d}{serial:03d}"
    check = next(d for d in "0123456789" if luhn_ok((body + d)[2:]))
    assert parse_patient_identifier(body + check).value == body + check
    wrong = str((int(check) + delta) % 10)
    with pytest.raises(InvalidIdentifier):
        parse_patient_identifier(body + wrong)


def test_pseudonym_is_stable_keyed_and_hides_the_number():
    ident = parse_patient_identifier("191212121212")
    first = pseudonym("key-a", ident)
    assert first == pseudonym("key-a", parse_patient_identifier("19121212-1212"))
    assert first != pseudonym("key-b", ident)
    assert len(first) == 32
    assert "121212" not in first


# --- issue 20: the national reserve number, regional reserve numbers, future birth dates ------

NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
ADMISSION = Path("contracts/fixtures/takecare/admission-notice/personnummer-full.input.json")
ALLOWED = "ABCDEFGHJKLMNPRSTUXYZ"  # A-Z without I, O, Q, V, W (HL7 Sweden)
oids = st.lists(st.integers(0, 10**6), min_size=1, max_size=8).map(
    lambda arcs: "1.2.752." + ".".join(map(str, arcs))
)
regional_numbers = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=20)


def _with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_ok((body + d)[2:]))


@pytest.mark.parametrize("raw", ["98240301AA06", "22950606-FH20", "19470312KTZ4"])
def test_the_national_reserve_number_has_its_own_system(raw):
    ident = parse_national_reserve_number(raw)
    assert ident.kind is IdentifierKind.NATIONAL_RESERVE
    assert ident.value == raw.replace("-", "")
    assert ident.system == NATIONAL_RESERVE_SYSTEM


@pytest.mark.parametrize(
    "raw", ["GOT2026000417", "98240301IA06", "98240301AO06", "9824030AA06", "98240301AA6", ""]
)
def test_anything_else_is_no_national_reserve_number(raw):
    with pytest.raises(InvalidIdentifier) as err:
        parse_national_reserve_number(raw)
    assert raw == "" or raw not in str(err.value)


@settings(deadline=None)
@given(regional_numbers, oids)
def test_no_regional_number_ever_gets_the_national_system(raw, oid):
    ident = parse_regional_reserve_number(raw).in_region(oid)
    assert ident.system == f"urn:oid:{oid}" != NATIONAL_RESERVE_SYSTEM
    assert identifier_from_fhir(ident.system, ident.value) == ident  # read back as regional


@settings(deadline=None)
@given(regional_numbers)
def test_a_regional_number_without_its_region_has_no_system_at_all(raw):
    ident = parse_regional_reserve_number(raw)
    with pytest.raises(InvalidIdentifier, match="OID"):
        _ = ident.system
    with pytest.raises(InvalidIdentifier, match="OID"):
        check_identifier(ident, now=NOW, regional_reserve_oid=None)


@settings(deadline=None)  # a whole translation, on a shared machine
@given(regional_numbers, oids)
def test_a_regional_number_in_a_takecare_admission_never_leaves_as_national(raw, oid):
    doc = json.loads(ADMISSION.read_text(encoding="utf-8"))
    del doc["patient"]["personalIdentityNumber"]
    doc["patient"] |= {"reserveNumber": raw, "reserveNumberKind": "regional"}
    event = ADMISSIONS.parse(doc, now=NOW, regional_reserve_oid=oid)
    text = to_json(ADMISSIONS.to_bundle(event, now=NOW, regional_reserve_oid=oid))
    assert NATIONAL_RESERVE_SYSTEM not in text
    assert f'"system":"urn:oid:{oid}"' in text.replace(" ", "")


@settings(deadline=None)  # a whole translation, on a shared machine
@given(regional_numbers)
def test_a_takecare_admission_with_a_regional_number_and_no_region_is_refused(raw):
    doc = json.loads(ADMISSION.read_text(encoding="utf-8"))
    del doc["patient"]["personalIdentityNumber"]
    doc["patient"] |= {"reserveNumber": raw, "reserveNumberKind": "regional"}
    with pytest.raises(InvalidEvent) as err:
        ADMISSIONS.parse(doc, now=NOW, regional_reserve_oid=None)
    assert [v.path for v in err.value.violations] == ["patient.reserveNumber"]


@settings(deadline=None)
@given(
    st.dates(date(2026, 11, 21), date(2099, 12, 31)),
    st.integers(0, 999),
    st.booleans(),
    st.timedeltas(timedelta(0), timedelta(hours=22)),
)
def test_any_birth_date_after_the_events_day_is_refused(born, serial, coordination, into_day):
    # NOW's Swedish date is 2026-11-20 until 22:59 UTC; born is at least the day after
    now = datetime(2026, 11, 20, tzinfo=UTC) + into_day
    day = born.day + (60 if coordination else 0)
    raw = _with_check_digit(f"{born:%Y%m}{day:02d}{serial:03d}")
    ident = parse_patient_identifier(raw)  # a calendar date: the format is fine
    with pytest.raises(InvalidIdentifier, match="future") as err:
        check_identifier(ident, now=now, regional_reserve_oid=None)
    assert raw not in str(err.value)


@settings(deadline=None)
@given(st.dates(date(1890, 1, 1), date(2026, 11, 20)), st.integers(0, 999), st.booleans())
def test_any_birth_date_up_to_the_events_day_is_accepted(born, serial, coordination):
    day = born.day + (60 if coordination else 0)
    ident = parse_patient_identifier(_with_check_digit(f"{born:%Y%m}{day:02d}{serial:03d}"))
    assert check_identifier(ident, now=NOW, regional_reserve_oid=None) == ident


def test_the_event_day_is_the_swedish_one():
    born_21st = parse_patient_identifier(_with_check_digit("20261121238"))
    before_midnight = datetime(2026, 11, 20, 22, 59, tzinfo=UTC)  # 23:59 in Stockholm
    with pytest.raises(InvalidIdentifier, match="future"):
        check_identifier(born_21st, now=before_midnight, regional_reserve_oid=None)
    after_midnight = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # 00:00 on the 21st
    assert check_identifier(born_21st, now=after_midnight, regional_reserve_oid=None)


@pytest.mark.parametrize("body", ["19450230123", "19450290123", "20230229123", "19451301123"])
def test_impossible_dates_are_refused_for_both_kinds(body):
    with pytest.raises(InvalidIdentifier, match="calendar"):
        parse_patient_identifier(_with_check_digit(body))


def test_pseudonyms_keep_the_kinds_and_regions_apart():
    national = parse_national_reserve_number("98240301AA06")
    regional = parse_regional_reserve_number("98240301AA06")
    a, b = regional.in_region("1.2.752.97.3.1.3"), regional.in_region("1.2.752.74.9.2")
    assert len({pseudonym("k", national), pseudonym("k", a), pseudonym("k", b)}) == 3
    with pytest.raises(InvalidIdentifier):
        pseudonym("k", regional)  # never a pseudonym of an unlabelled regional number


def test_no_system_outside_the_known_ones_and_oids_is_read():
    for system in ("urn:oid:1.2.752.29.4.19", "urn:oid:not-an-oid", "http://example.org/id"):
        with pytest.raises(InvalidIdentifier):
            identifier_from_fhir(system, "GOT2026000417")


TRESERVA_SIP = Path(
    "contracts/fixtures/treserva/sip-update/avslutad-reservnummer-skyddad.input.json"
)


def test_treserva_names_its_own_fields_for_reserve_numbers_and_birth_dates():
    from services.adapter_treserva.families.sip_update import INBOUND as TRESERVA

    doc = json.loads(TRESERVA_SIP.read_text(encoding="utf-8"))
    assert doc["brukare"]["reservnummerTyp"] == "regionalt"
    with pytest.raises(InvalidEvent) as err:
        TRESERVA.parse(doc, now=NOW, regional_reserve_oid=None)
    assert [v.path for v in err.value.violations] == ["brukare.reservnummer"]
    event = TRESERVA.parse(doc, now=NOW, regional_reserve_oid="1.2.752.97.3.1.3")
    text = to_json(TRESERVA.to_bundle(event, now=NOW, regional_reserve_oid="1.2.752.97.3.1.3"))
    assert "urn:oid:1.2.752.97.3.1.3" in text and NATIONAL_RESERVE_SYSTEM not in text

    brukare = {k: v for k, v in doc["brukare"].items() if not k.startswith("reservnummer")}
    doc["brukare"] = brukare | {"personnummer": "20261224-2384", "samordningsnummer": False}
    with pytest.raises(InvalidEvent) as err:
        TRESERVA.parse(doc, now=NOW, regional_reserve_oid=None)
    ((violation,),) = [err.value.violations]
    assert (violation.path, violation.message) == (
        "brukare.personnummer",
        "date of birth is in the future",
    )
