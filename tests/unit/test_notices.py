"""What alerts say: the ops notification and the Swedish fallback notice to the care unit."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.simulators.samples.people import (
    HOSPITAL_UNITS,
    MUNICIPAL_UNITS,
    PRIMARY_CARE_UNITS,
    TEST_IDENTIFIERS,
)
from services.router.alerting.events import AlertChange, AlertEvent, Severity
from services.router.alerting.notices import (
    FallbackNotice,
    fallback_notice,
    ops_notice,
    reference_code,
    swedish_time,
    webhook_payload,
)
from services.router.alerting.unit_directory import GOTLAND_PATH, UnitDirectory
from tests.support.alert_events import MESSAGE_ID, TUESDAY_1430, event

pytestmark = pytest.mark.alerts

DIRECTORY = UnitDirectory.load(GOTLAND_PATH)
SATURDAY_2330 = datetime(2026, 12, 5, 22, 30, tzinfo=UTC)


def notice_for(alert: AlertEvent) -> FallbackNotice:
    notice = fallback_notice(alert, DIRECTORY)
    assert notice is not None
    return notice


def luhn_ok(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(ten):
        d = int(ch) * (2 - i % 2)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def personnummer_like(text: str) -> list[str]:
    """Digit runs that read as a personnummer or samordningsnummer: a date (day + 60 for a
    samordningsnummer) and a valid check digit. Message ids (UUIDs) are left out first: the
    last group of one can be twelve digits that happen to read as a personnummer."""
    found = []
    text = _UUID.sub("<uuid>", text)
    for m in re.finditer(r"(?<!\d)(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?(\d{4})(?!\d)", text):
        _, _, month, day, last = m.groups()
        date_ok = 1 <= int(month) <= 12 and (1 <= int(day) <= 31 or 61 <= int(day) <= 91)
        if date_ok and luhn_ok(f"{m.group(2)}{month}{day}{last}"):
            found.append(m.group(0))
    return found


def test_the_detector_itself_finds_the_test_identifiers():
    assert personnummer_like("message a3697762-e891-aeca-42b3-584607122985") == []
    assert personnummer_like("a3697762-e891-aeca-42b3-584607122985 191212121212") == [
        "191212121212"
    ]
    for ident in TEST_IDENTIFIERS:
        assert personnummer_like(f"pnr {ident}.") == [ident]
        assert personnummer_like(f"pnr {ident[2:8]}-{ident[8:]}") == [f"{ident[2:8]}-{ident[8:]}"]


def test_admission_notice_that_did_not_arrive_in_treserva():
    notice = notice_for(event(due_at=datetime(2026, 12, 9, 9, 0, tzinfo=UTC)))
    assert notice.unit.name == "Hemsjukvården Gotland, mottagning"
    assert notice.recipients == ("hemsjukvard.mottagning@example.se",)
    assert notice.reference == "CB-3F9A-27C1"
    assert (
        notice.subject == "Brådskande: inskrivningsmeddelande saknas hos er (ärende CB-3F9A-27C1)"
    )
    assert (
        "Inskrivningsmeddelandet från Medicinavdelning 3, Visby lasarett, har inte kommit "
        "fram till er i Treserva." in notice.body
    )
    assert (
        "ring avdelningen på 0498-55 13 03 och fråga efter ärende CB-3F9A-27C1 innan "
        "patienten skrivs ut" in notice.body
    )
    assert "Tidsgränsen går ut onsdag 9 december kl. 10.00." in notice.body
    assert "inga patientuppgifter" in notice.body
    # neither the pseudonym nor the message id goes to a unit's mailbox
    assert "9f86d081" not in notice.body and MESSAGE_ID not in notice.body


def test_confirmation_overdue_says_it_was_sent_but_not_acknowledged():
    body = notice_for(event(kind="confirmation_overdue")).body
    assert "har skickats men har inte kvitterats i Treserva" in body


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("admission-notice", "Inskrivningsmeddelandet från"),
        ("admission-notice-updated", "Inskrivningsmeddelandet från"),
        ("ready-for-discharge", "Meddelandet om att patienten är utskrivningsklar från"),
        ("ready-for-discharge-withdrawn", "Återtaget av utskrivningsklar från"),
        ("discharge-notice", "Utskrivningsmeddelandet från"),
        ("medication-list", "Läkemedelslistan från"),
        ("sip-updated", "SIP-meddelandet (samordnad individuell plan) från"),
        ("sip-invitation", "Kallelsen till SIP-möte från"),
        ("something-new", "Meddelandet från"),
    ],
)
def test_each_family_is_named_in_swedish(family, expected):
    assert expected in notice_for(event(family=family)).body


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("deadline_at_risk", "har ännu inte kommit fram till er i Treserva."),
        ("episode_gap", "saknas hos er i Treserva."),
        ("delivery_failed", "har inte kommit fram till er i Treserva."),
    ],
)
def test_wording_follows_the_failure_class(kind, expected):
    assert expected in notice_for(event(kind=kind, family="medication-list")).body


def test_a_breached_deadline_is_said_to_have_passed():
    notice = notice_for(event(due_at=TUESDAY_1430 - timedelta(hours=1)))
    assert "Tidsgränsen gick ut tisdag 8 december kl. 13.30." in notice.body


def test_resolved_says_the_message_has_arrived():
    notice = notice_for(event(change=AlertChange.RESOLVED))
    assert notice.subject.startswith("Klart:")
    assert "Nu har meddelandet kommit fram." in notice.body
    assert "har nu kommit fram till er i Treserva (ärende CB-3F9A-27C1)" in notice.body
    assert "Gör så här" not in notice.body


def test_outside_telefontid_the_on_call_mailbox_is_told_too_and_when_they_open():
    notice = notice_for(event(at=SATURDAY_2330, receiver_unit_hsa="SE2120000803-HSJV"))
    assert notice.recipients == (
        "hemsjukvard.norr@example.se",
        "hemsjukvard.beredskap@example.se",
    )
    assert "utanför er telefontid (vardagar 07–21)" in notice.body
    assert "senast när ni öppnar, måndag 7 december kl. 07.00" in notice.body
    assert "sjuksköterska i beredskap på 0498-55 20 99" in notice.body


def test_inside_telefontid_only_the_unit_is_told():
    notice = notice_for(event(receiver_unit_hsa="SE2120000803-HSJV"))
    assert notice.recipients == ("hemsjukvard.norr@example.se",)
    assert "telefontid" not in notice.body


def test_a_closed_sender_gives_its_opening_time_and_on_call_number():
    notice = notice_for(
        event(at=SATURDAY_2330, destination="takecare", sender_unit_hsa="SE2321000222-VPLA")
    )
    assert notice.unit.name == "Vårdplaneringsteamet, Visby lasarett"
    body = notice.body
    assert "när de öppnar måndag 7 december kl. 08.00" in body
    assert "vårdenhetschef i beredskap på 0498-55 11 00" in body


def test_an_unknown_sender_sends_them_to_the_switchboard():
    body = notice_for(event(sender_unit_hsa=None)).body
    assert "ring Region Gotlands växel på 0498-55 00 00" in body


def test_many_messages_without_a_message_id_are_counted():
    notice = notice_for(event(message_id=None, affected=3))
    assert notice.reference == "CB-L12"
    assert "3 inskrivningsmeddelanden från" in notice.body


def test_no_notice_for_an_unknown_unit_or_an_acknowledgement():
    assert fallback_notice(event(destination="sub-0123abcd"), DIRECTORY) is None
    assert fallback_notice(event(change=AlertChange.ACKNOWLEDGED), DIRECTORY) is None


def test_reference_code_is_stable_and_comes_from_the_message_id():
    assert reference_code(event()) == "CB-3F9A-27C1"
    assert reference_code(event(message_id="not-hex")) == reference_code(
        event(message_id="not-hex")
    )
    assert re.fullmatch(r"CB-[0-9A-F]{4}-[0-9A-F]{4}", reference_code(event(message_id="x")))


def test_ops_notice_in_english_and_swedish_with_ids_only():
    notice = ops_notice(event(), DIRECTORY)
    assert notice.subject == (
        "[carebridge] CRITICAL opened: delivery_failed admission-notice → treserva (alert 12)"
    )
    assert f"Message: {MESSAGE_ID} (reference CB-3F9A-27C1)" in notice.body
    assert "Sender unit: SE2321000222-MED3 (Medicinavdelning 3, Visby lasarett" in notice.body
    assert "Larm 12 öppnat: leveransen misslyckades, inskrivningsmeddelande till treserva." in (
        notice.body
    )


def test_swedish_time_is_local():
    assert swedish_time(datetime(2026, 6, 1, 5, 0, tzinfo=UTC), DIRECTORY) == (
        "måndag 1 juni kl. 07.00"
    )


ALL_UNITS = [h for h, _ in HOSPITAL_UNITS + MUNICIPAL_UNITS + PRIMARY_CARE_UNITS]
events = st.builds(
    AlertEvent,
    alert_id=st.integers(1, 10**9),
    change=st.sampled_from(AlertChange),
    kind=st.sampled_from(
        ["confirmation_overdue", "delivery_failed", "deadline_breached", "episode_gap", "x"]
    ),
    severity=st.sampled_from(Severity),
    destination=st.sampled_from(["treserva", "primary-care", "takecare", "sub-1"]),
    family=st.sampled_from(
        [
            "admission-notice",
            "ready-for-discharge",
            "discharge-notice",
            "medication-list",
            "sip-invitation",
            "sip-updated",
            "unknown",
        ]
    ),
    # a rule that lets a personnummer into the summary must not leak it
    summary=st.sampled_from(TEST_IDENTIFIERS).map(lambda p: f"failed for {p} / {p[2:8]}-{p[8:]}"),
    affected=st.integers(1, 500),
    at=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
    pseudonym=st.none() | st.text("0123456789abcdef", min_size=32, max_size=32),
    message_id=st.none() | st.uuids().map(str),
    sender_unit_hsa=st.none() | st.sampled_from(ALL_UNITS),
    receiver_unit_hsa=st.none() | st.sampled_from(ALL_UNITS),
    due_at=st.none()
    | st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_no_output_carries_a_personnummer(alert):
    texts = [ops_notice(alert, DIRECTORY).subject, ops_notice(alert, DIRECTORY).body]
    texts.append(str(webhook_payload(alert)))
    notice = fallback_notice(alert, DIRECTORY)
    if notice is not None:
        texts += [notice.subject, notice.body]
        assert alert.pseudonym is None or alert.pseudonym not in notice.body
    for text in texts:
        # the pseudonym is 32 hex digits, not patient data: a run of its digits can look like
        # a personnummer (CI drew 00000000000a009710101479a0000000), so it is left out
        unnamed = text.replace(alert.pseudonym, "") if alert.pseudonym else text
        assert personnummer_like(unnamed) == [], text
        for ident in TEST_IDENTIFIERS:
            assert ident not in text and ident[2:] not in text


def test_texts_keep_their_swedish_letters():
    notice = notice_for(event(family="medication-list"))
    assert "Läkemedelslistan" in notice.body and "ärende" in notice.subject
    assert uuid.UUID(MESSAGE_ID)  # the fixture is a real message id
