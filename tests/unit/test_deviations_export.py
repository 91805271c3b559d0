"""The deviation exports: CSV as Swedish Excel and an import mapping read it, JSON valid
against its contract, and the two in step."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.messaging.contracts import violations
from services.router.deviations.export import CSV_HEADERS, FIELDS, to_csv, to_json
from services.router.deviations.records import Deviation
from tests.support.deviations import PERSONNUMMER, SCHEMA

pytestmark = pytest.mark.alerts

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # 10:00 in Stockholm


def sample(**changes) -> Deviation:
    found: dict[str, Any] = {
        "id": 7,
        "kind": "not_confirmed_in_time",
        "family": "admission-notice",
        "source": "takecare",
        "destination": "treserva",
        "detected_at": T0 + timedelta(minutes=15),
        "description": "Inskrivningsmeddelandet bekräftades inte i tid av Treserva.",
        "message_id": "a1b2c3d4-0000-4000-8000-00000000000a",
        "delivery_id": 12,
        "sender_unit_hsa": "SE2321000222-AKUT",
        "receiver_unit_hsa": "SE2120000803-HSJV",
        "pseudonym": "3f2a9c0d4b5e6f708192a3b4c5d6e7f8",
        "occurred_at": T0 - timedelta(hours=1),
        "due_at": T0,
        "resolved_at": T0 + timedelta(hours=2),
        "lateness_s": 2 * 3600 + 1,
        "alert_id": 3,
    }
    found.update(changes)
    return Deviation(**found)


def sparse() -> Deviation:
    return Deviation(
        id=8,
        kind="a_new_rule",
        family="sip-invitation",
        source="treserva",
        destination="sub-0123456789abcdef",
        detected_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),  # summer time: +02:00
        description="Kallelse till SIP saknas.",
    )


def parse(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))


def test_the_csv_is_what_swedish_excel_opens_and_parses_back():
    text = to_csv([sample(), sparse()])
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
    header = text.removeprefix("\ufeff").split("\r\n")[0]
    assert header.split(";")[:5] == ["Avvikelse-id", "Typ", "Status", "Datum", "Upptäckt"]
    assert "Avsändande enhet (HSA-id)" in header and "Försenad (minuter)" in header
    first, second = parse(text)
    assert list(first) == list(CSV_HEADERS)
    assert first["Avvikelse-id"] == "7"
    assert first["Typ"] == "Ej bekräftat i tid" and first["Status"] == "Åtgärdad"
    assert first["Datum"] == "2026-11-03T09:00:00+01:00"
    assert first["Upptäckt"] == "2026-11-03T10:15:00+01:00"
    assert first["Frist"] == "2026-11-03T10:00:00+01:00"
    assert first["Försenad (minuter)"] == "121"  # 2 h and 1 s is 121 minutes late
    assert first["Meddelande"] == "Inskrivningsmeddelande"
    assert first["Riktning"] == "Sjukhus till kommun"
    assert first["Avsändande system"] == "TakeCare" and first["Mottagande system"] == "Treserva"
    assert first["Avsändande enhet (HSA-id)"] == "SE2321000222-AKUT"
    assert first["Mottagande enhet (HSA-id)"] == "SE2120000803-HSJV"
    assert second["Typ"] == "a_new_rule" and second["Status"] == "Öppen"
    assert second["Upptäckt"] == "2026-07-01T14:00:00+02:00"
    assert second["Datum"] == "" and second["Försenad (minuter)"] == ""
    assert second["Mottagande system"] == "sub-0123456789abcdef"
    assert second["Riktning"] == "Övrigt"  # to a webhook subscriber


def test_a_description_with_separators_and_quotes_survives_the_round_trip():
    text = 'Treserva svarade; "fel" på rad 2\noch rad 3.'
    (row,) = parse(to_csv([sample(description=text)]))
    assert row["Beskrivning"] == text


def test_a_cell_excel_would_run_as_a_formula_is_quoted():
    (row,) = parse(to_csv([sample(description='=HYPERLINK("http://x")')]))
    assert row["Beskrivning"] == '\'=HYPERLINK("http://x")'


def test_the_json_export_is_valid_against_its_contract():
    generated = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    document = to_json([sample(), sparse()], generated_at=generated, month="2026-11")
    assert violations(SCHEMA, document) == []
    assert document["schemaVersion"] == "1.0" and document["count"] == 2
    assert document["generatedAt"] == "2026-12-01T08:00:00+01:00"
    first = document["deviations"][0]
    assert first["kind"] == "not_confirmed_in_time" and first["status"] == "resolved"
    assert first["direction"] == "hospital-to-municipality" and first["lateMinutes"] == 121
    assert document["deviations"][1]["occurredAt"] is None


def test_the_contract_refuses_what_an_importer_could_not_rely_on():
    document = to_json([sample()], generated_at=T0, month="2026-11")
    document["deviations"][0]["detectedAt"] = "2026-11-03T09:15:00"  # no offset
    document["deviations"][0]["patientPseudonym"] = "191212121212"
    found = {v.path for v in violations(SCHEMA, document)}
    assert found == {"deviations.0.detectedAt", "deviations.0.patientPseudonym"}


def test_csv_and_json_carry_the_same_fields_in_the_same_order():
    document = to_json([sample()], generated_at=T0, month=None)
    assert list(document["deviations"][0]) == [f.key for f in FIELDS]
    assert len(CSV_HEADERS) == len(set(CSV_HEADERS)) == len(FIELDS)


def test_the_personnummer_check_of_the_tests_catches_one():
    # The export tests below rely on this pattern: it must see a personnummer when there is
    # one, and not mistake an HSA-id, a message id or an ISO time for one.
    leaked = to_csv([sample(description="Gäller 19121212-1212.")])  # built around the guard
    assert PERSONNUMMER.search(leaked)
    assert PERSONNUMMER.search("pnr 121212+1212") and PERSONNUMMER.search("201012721237")
    assert not PERSONNUMMER.search(to_csv([sample(), sparse()]))
