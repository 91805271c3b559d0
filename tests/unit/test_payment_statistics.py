"""The payment clock's statistics (betalningsansvar) from the router's own records: a stay
routed through the router (admission, receipt with evidence, ready notice sent late,
withdrawal), the report per municipality and month, the API and the CSV for an invoice
check."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from sandbox.simulators.samples.discharge import sample_discharge_readiness
from services.adapter_takecare.families import discharge_readiness
from services.router.ops.app import create_app
from services.router.routing.tables import delivery
from services.router.settings import RouterSettings
from services.router.statistics import payment_export
from services.router.statistics.payment import (
    build_payment_report,
)
from services.router.statistics.payment_clock import (
    DayCount,
    PaymentAgreement,
    PaymentAgreements,
    StayEvidence,
)
from tests.support.payment import PATIENT, RECEIVED_AT, a_stay, record, report
from tests.support.router import Clock, message_id


async def test_the_clock_runs_from_the_day_after_the_ready_notice_was_sent(sessions):
    clock = Clock()
    await a_stay(sessions, clock)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    found = await report(sessions, now)
    (stay,) = found.stays
    assert stay.stay.ready_sent_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert stay.stay.admission_record_id == "TRS-77"
    assert stay.stay.admission_received_at == RECEIVED_AT
    assert stay.stay.municipality == "0980"
    # sent Monday: Tue, Wed, Thu are the municipality's; from Friday 27 November it pays
    # (counted from the judgement on Friday 20 November it would have been Tuesday 24)
    assert stay.first_payable == date(2026, 11, 27)
    assert stay.days == tuple(date(2026, 11, d) for d in (27, 28, 29, 30))
    assert [(m.municipality, m.month, m.days, m.stays) for m in found.months] == [
        ("0980", "2026-11", 4, 1)
    ]
    working = await report(
        sessions, now, PaymentAgreements({"0980": PaymentAgreement(kind=DayCount.WORKING)})
    )
    assert working.stays[0].days == stay.days  # Tue, Wed, Thu are working days too


async def test_no_admission_receipt_no_clock(sessions):
    clock = Clock()
    await a_stay(sessions, clock, admission_receipt=False)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    # the ready notice waits behind the unconfirmed admission notice: never sent, no clock
    assert (await report(sessions, now)).stays == ()
    async with sessions.begin() as s:  # as if it had been sent all the same
        await s.execute(
            update(delivery)
            .where(delivery.c.destination == "treserva", delivery.c.sent_at.is_(None))
            .values(sent_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC), state="sent")
        )
    found = await report(sessions, now)
    (stay,) = found.stays
    assert stay.stay.ready_sent_at is not None and stay.stay.admission_confirmed_at is None
    assert stay.first_payable is None and stay.days == () and found.months == ()


async def test_a_withdrawal_stops_the_clock(sessions):
    clock = Clock()
    router = await a_stay(sessions, clock)
    clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)  # Sunday
    doc = sample_discharge_readiness(random.Random(3), now=clock(), withdrawn=True)
    await router.handle_batch([record(discharge_readiness, doc, clock())])
    found = await report(sessions, datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    (stay,) = found.stays
    assert stay.stay.withdrawn_at == clock.now
    assert stay.days == (date(2026, 11, 27), date(2026, 11, 28))


async def test_the_municipality_is_that_of_the_unit_the_ready_notice_was_addressed_to(sessions):
    """Addressing by unit (issue 20): a delivery names its unit, and the payment clock
    charges that unit's municipality, not the one ROUTER_PAYMENT_MUNICIPALITY names."""
    from pathlib import Path

    from services.router.alerting import unit_store
    from services.router.alerting.unit_directory import UnitDirectory

    clock = Clock()
    await a_stay(sessions, clock)
    halland = UnitDirectory.load(Path("contracts/units/halland.json"))
    async with sessions.begin() as s:
        await unit_store.seed_if_empty(s, halland, clock())
        await s.execute(
            update(delivery)
            .where(delivery.c.destination == "treserva")
            .values(receiver_unit_hsa="SE2120000002-VBGHSV")  # Varberg's home care
        )
    found = await report(sessions, datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    (stay,) = found.stays
    assert stay.stay.municipality == "1383"
    assert [m.municipality for m in found.months] == ["1383"]


def evidence(stay_id, sent, *, record_id="TRS-1", discharged=None):
    return StayEvidence(
        stay_id=stay_id,
        pseudonym=f"{stay_id:032x}",
        municipality="0980",
        ready_sent_at=sent,
        admission_confirmed_at=sent - timedelta(days=2),
        admission_received_at=sent - timedelta(days=2),
        admission_record_id=record_id,
        discharged_at=discharged,
    )


def test_days_are_summed_per_municipality_and_month_inside_the_range():
    sent = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # payable from Tuesday 31 March
    found = build_payment_report(
        [evidence(1, sent), evidence(2, sent, discharged=datetime(2026, 4, 2, 8, tzinfo=UTC))],
        PaymentAgreements(),
        since=date(2026, 3, 1),
        until=date(2026, 4, 5),
        now=datetime(2026, 4, 10, 10, tzinfo=UTC),
    )
    assert [(m.month, m.days, m.stays) for m in found.months] == [
        ("2026-03", 2, 2),
        ("2026-04", 5 + 1, 2),  # stay 1: 1–5 April (the range ends); stay 2: 1 April
    ]


def test_the_csv_has_one_row_per_payable_day_with_its_evidence_formula_safe():
    sent = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    found = build_payment_report(
        [evidence(1, sent, record_id="=HYPERLINK(1)", discharged=datetime(2026, 4, 2, tzinfo=UTC))],
        PaymentAgreements(),
        since=date(2026, 3, 1),
        until=date(2026, 4, 30),
        now=datetime(2026, 4, 10, 10, tzinfo=UTC),
    )
    text = payment_export.to_csv(found)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows[0][:4] == ["Kommun", "Månad", "Dag", "Pseudonym"]
    days = [r[2] for r in rows[1:]]
    assert days == ["2026-03-31", "2026-04-01"]
    header = rows[0]
    first = dict(zip(header, rows[1], strict=True))
    assert first["Kommun"] == "0980" and first["Månad"] == "2026-03"
    assert first["Mottagarens journal-id"] == "'=HYPERLINK(1)"
    assert first["Utskrivningsklar skickad"] == "2026-03-27T13:00:00+01:00"
    assert first["Avtal"] == "3 kalenderdagar"
    assert all(len(cell) != 10 or not cell.isdigit() for r in rows for cell in r)  # no pnr


@pytest.fixture
async def api(sessions):
    settings = RouterSettings(payment_agreements={"0980": {"days": 3, "kind": "working"}})
    app = create_app(settings, sessions=sessions, clock=lambda: datetime(2026, 12, 1, tzinfo=UTC))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://router",
        headers={"authorization": "Bearer sandbox-ops-token"},
    ) as client:
        yield client


async def test_the_api_and_csv_follow_the_configured_agreement(sessions, api):
    clock = Clock()
    await a_stay(sessions, clock)
    async with sessions.begin() as s:  # the ready notice was sent on Friday 20 November
        await s.execute(
            update(delivery)
            .where(delivery.c.sent_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
            .values(sent_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
        )
    res = await api.get("/api/v1/statistics/payment", params={"since": "2026-11-01"})
    assert res.status_code == 200, res.text
    body = res.json()
    (stay,) = body["stays"]
    assert stay["agreement"] == {"days": 3, "kind": "working"}
    assert stay["firstPayableDay"] == "2026-11-26"  # Mon, Tue, Wed counted
    assert stay["admissionRecordId"] == "TRS-77"
    assert stay["pseudonym"] == PATIENT
    assert body["months"] == [{"municipality": "0980", "month": "2026-11", "days": 5, "stays": 1}]
    csv_res = await api.get("/api/v1/statistics/payment.csv", params={"since": "2026-11-01"})
    assert csv_res.status_code == 200
    assert csv_res.headers["content-type"].startswith("text/csv")
    assert len(csv_res.text.strip().splitlines()) == 1 + 5
    bad = await api.get(
        "/api/v1/statistics/payment", params={"since": "2026-12-02", "until": "2026-12-01"}
    )
    assert bad.status_code == 422
    denied = await api.get("/api/v1/statistics/payment", headers={"authorization": "Bearer nope"})
    assert denied.status_code == 401


async def test_the_console_statistics_page_shows_the_days_per_municipality_and_month(sessions):
    from services.router.ops.console.accounts import SANDBOX_PASSWORDS

    await a_stay(sessions, Clock())
    app = create_app(
        RouterSettings(), sessions=sessions, clock=lambda: datetime(2026, 12, 1, 12, tzinfo=UTC)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as client:
        res = await client.post(
            "/console/login",
            data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"], "next": "/console/"},
        )
        assert res.status_code == 303, res.text
        page = await client.get(
            "/console/statistics", params={"since": "2026-11-01", "until": "2026-11-30"}
        )
        assert page.status_code == 200, page.text
        table = page.text[page.text.index('id="payment-table"') :]
        row = re.search(r"<tr><th scope=\"row\">(\d+)</th><td>([\d-]+)</td><td>(\d+)</td>", table)
        assert row is not None and row.groups() == ("0980", "2026-11", "4")
        export = await client.get(
            "/console/statistics/payment.csv", params={"since": "2026-11-01", "until": "2026-11-30"}
        )
        assert export.status_code == 200
        assert len(export.text.strip().splitlines()) == 1 + 4
        assert PATIENT in export.text


def test_agreements_are_settings_checked_when_read(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("ROUTER_PAYMENT_AGREEMENTS", '{"0980": {"days": 5, "kind": "working"}}')
    settings = RouterSettings()
    agreements = settings.payment_agreements_of()
    assert agreements.of("0980") == PaymentAgreement(days=5, kind=DayCount.WORKING)
    assert agreements.of("0180") == PaymentAgreement()  # the law
    assert settings.municipality_directory().municipality_of("treserva") == "0980"
    for bad in ('{"Gotland": {"days": 3}}', '{"0980": {"days": 3, "kind": "weekdays"}}'):
        monkeypatch.setenv("ROUTER_PAYMENT_AGREEMENTS", bad)
        with pytest.raises(ValidationError):
            RouterSettings()


async def test_a_death_stops_the_clock_the_day_of_death_is_not_payable(sessions):
    from sandbox.simulators.samples.patient_deceased import sample_patient_deceased
    from services.adapter_takecare.families import patient_deceased

    clock = Clock()
    router = await a_stay(sessions, clock)
    clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)  # Sunday
    doc = sample_patient_deceased(random.Random(4), now=clock())
    doc["death"]["deceasedAt"] = "2026-11-29T03:10:00+01:00"  # the night to Sunday
    await router.handle_batch([record(patient_deceased, doc, clock())])
    found = await report(sessions, datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    (stay,) = found.stays
    assert stay.stay.deceased_at == datetime(2026, 11, 29, 2, 10, tzinfo=UTC)
    assert stay.days == (date(2026, 11, 27), date(2026, 11, 28))
    rows = list(csv.reader(io.StringIO(payment_export.to_csv(found)[1:]), delimiter=";"))
    header = rows[0]
    assert [r[header.index("Dag")] for r in rows[1:]] == ["2026-11-27", "2026-11-28"]
    assert {r[header.index("Avliden")] for r in rows[1:]} == {"2026-11-29T03:10:00+01:00"}
    assert payment_export.to_document(found).stays[0].deceasedAt == "2026-11-29T03:10:00+01:00"


async def test_an_interruption_stops_the_clock_and_a_new_ready_notice_starts_a_new_one(sessions):
    from sandbox.simulators.samples.process_interrupted import sample_process_interrupted
    from services.adapter_takecare.families import process_interrupted

    clock = Clock()
    router = await a_stay(sessions, clock)
    clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)  # Sunday
    doc = sample_process_interrupted(random.Random(4), now=clock())
    doc["interruption"]["interruptedAt"] = "2026-11-29T08:00:00+01:00"
    await router.handle_batch([record(process_interrupted, doc, clock())])
    found = await report(sessions, datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    (stay,) = found.stays
    assert stay.stay.interrupted_at == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert stay.days == (date(2026, 11, 27), date(2026, 11, 28))
    rows = list(csv.reader(io.StringIO(payment_export.to_csv(found)[1:]), delimiter=";"))
    assert len(rows) == 1 + 2
    assert {r[rows[0].index("Avbruten")] for r in rows[1:]} == {"2026-11-29T08:00:00+01:00"}
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # Monday: ready again
    again = record(
        discharge_readiness, sample_discharge_readiness(random.Random(9), now=clock()), clock()
    )
    await router.handle_batch([again])
    async with sessions.begin() as s:  # sent at once (it waits behind the others otherwise)
        await s.execute(
            update(delivery)
            .where(delivery.c.message_id == message_id(again))
            .values(sent_at=clock.now, state="sent")
        )
    found = await report(sessions, datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    first, stay = found.stays  # one per readiness: the first one's days are not lost
    assert first.days == (date(2026, 11, 27), date(2026, 11, 28))
    assert (stay.stay.ready_sent_at, stay.stay.interrupted_at) == (clock.now, None)
    # a new readiness, a new clock: Tue, Wed, Thu are the municipality's again
    assert stay.first_payable == date(2026, 12, 4)
    assert stay.days == (date(2026, 12, 4), date(2026, 12, 5), date(2026, 12, 6))


def test_death_and_interruption_end_the_pure_clock():
    from dataclasses import replace

    from services.router.statistics.payment_clock import payable_days

    sent = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # payable from Tuesday 31 March
    base = evidence(1, sent)
    today = date(2026, 4, 10)
    died = replace(base, deceased_at=datetime(2026, 4, 2, 23, tzinfo=UTC))
    assert payable_days(died, PaymentAgreement(), today=today) == [
        date(2026, 3, 31),
        date(2026, 4, 1),
        date(2026, 4, 2),  # 23:00 UTC is 01:00 on 3 April in Stockholm: died on the 3rd
    ]
    # a period's stop is its own: one before its notice was even sent leaves nothing payable
    # (each readiness is its own evidence, so a stop is never an earlier readiness's)
    early = datetime(2026, 3, 20, tzinfo=UTC)
    paused = replace(base, interrupted_at=early)
    assert payable_days(paused, PaymentAgreement(), today=today) == []
    assert len(payable_days(base, PaymentAgreement(), today=today)) == 10
