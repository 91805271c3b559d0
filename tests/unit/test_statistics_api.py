"""The statistics API in process (httpx.ASGITransport): the operator token, the JSON figures,
the CSV export matching them, the SVG charts, clear 422s and the OpenAPI document."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import httpx
import pytest

from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from services.router.statistics.charts import CHART_NAMES
from tests.support.statistics import add_delivery, add_message, add_stay

TOKEN = {"authorization": "Bearer sandbox-ops-token"}
NOW = datetime(2026, 4, 10, 10, 0, tzinfo=UTC)
WEEKS = {"period": "week", "since": "2026-03-23", "until": "2026-04-05"}


@pytest.fixture
async def api(sessions):
    app = create_app(RouterSettings(), sessions=sessions, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as client:
        yield client


@pytest.fixture
async def seeded(sessions):
    """Week 14 (30 March to 5 April 2026): notices, two legal deadlines (one met), three
    confirmed admission notices to Treserva, two stays discharged (one the day it was ready)."""
    async with sessions.begin() as s:
        await add_message(s, "sip-invitation", "2026-03-29T21:30")  # Sunday 23:30: week 13
        await add_message(s, "sip-updated", "2026-03-29T22:30")  # Monday 00:30: week 14
        await add_message(s, "ready-for-discharge", "2026-03-31T10:00")
        for minutes in ("08:20", "09:00", "12:00"):
            await add_delivery(
                s,
                legal_from="2026-03-30T08:00",
                due="2026-03-31T08:00",
                confirmed=f"2026-03-30T{minutes}",
            )
        await add_delivery(s, event_code="discharge-notice", due="2026-04-01T22:00")
        await add_stay(s, "2026-03-31T07:00", "2026-03-31T15:00")
        await add_stay(s, "2026-03-31T07:00", "2026-04-01T09:00")


async def test_every_statistics_route_needs_the_operator_token(api):
    for path in ("", "/export.csv", "/chart/notices.svg"):
        res = await api.get(f"/api/v1/statistics{path}", headers={"authorization": "Bearer x"})
        assert res.status_code == 401, path


async def test_the_figures_per_week_as_json(api, seeded):
    res = await api.get("/api/v1/statistics", params=WEEKS)
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["period"], body["since"], body["until"]) == ("week", "2026-03-23", "2026-04-05")
    assert body["generatedAt"] == "2026-04-10T12:00:00+02:00"
    assert body["destinations"] == ["treserva"]
    w13, w14 = body["periods"]
    assert (w13["key"], w14["key"]) == ("2026-W13", "2026-W14")
    assert (w14["firstDay"], w14["lastDay"]) == ("2026-03-30", "2026-04-05")
    assert w13["sip"] == 1 and w14["sip"] == 1
    assert w14["notices"]["admission-notice"] == 3 and w14["notices"]["ready-for-discharge"] == 1
    assert w14["noticesTotal"] == 6  # 3 admissions, 1 discharge, 1 ready, 1 SIP update
    assert w14["onTime"] == {"onTime": 3, "counted": 4, "share": 0.75, "pending": 0}
    assert w14["admissionToConfirmed"] == {"treserva": {"confirmed": 3, "medianMinutes": 60.0}}
    assert w14["sameDayDischarge"] == {
        "sameDay": 1,
        "discharged": 2,
        "share": 0.5,
        "withoutReadyNotice": 0,
    }
    assert w13["onTime"]["share"] is None and w13["sameDayDischarge"]["share"] is None
    assert w13["admissionToConfirmed"]["treserva"]["medianMinutes"] is None


async def test_defaults_are_the_last_30_days(api):
    body = (await api.get("/api/v1/statistics")).json()
    assert (body["period"], body["since"], body["until"]) == ("day", "2026-03-12", "2026-04-10")
    assert len(body["periods"]) == 30
    weeks = (await api.get("/api/v1/statistics", params={"period": "week"})).json()
    assert len(weeks["periods"]) == 12 and weeks["periods"][-1]["key"] == "2026-W15"


def _number(cell: str) -> float | None:
    return None if cell == "" else float(cell.replace(",", "."))


async def test_the_csv_export_has_one_row_per_period_matching_the_json(api, seeded):
    res = await api.get("/api/v1/statistics/export.csv", params=WEEKS)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"] == (
        'attachment; filename="statistik-week-2026-03-23-2026-04-05.csv"'
    )
    assert res.content.startswith(b"\xef\xbb\xbf")
    text = res.content.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
    periods = (await api.get("/api/v1/statistics", params=WEEKS)).json()["periods"]
    assert [r["Period"] for r in rows] == [p["key"] for p in periods]
    for row, p in zip(rows, periods, strict=True):
        assert row["Första dag"] == p["firstDay"]
        assert int(row["Meddelanden totalt"]) == p["noticesTotal"]
        assert int(row["Meddelanden: Inskrivningsmeddelande"]) == p["notices"]["admission-notice"]
        assert int(row["SIP-meddelanden"]) == p["sip"]
        assert int(row["Frister med känt utfall"]) == p["onTime"]["counted"]
        assert int(row["Bekräftade i tid"]) == p["onTime"]["onTime"]
        share = p["onTime"]["share"]
        assert _number(row["Andel i tid (%)"]) == (None if share is None else share * 100)
        treserva = p["admissionToConfirmed"]["treserva"]
        assert int(row["Bekräftade inskrivningsmeddelanden: Treserva"]) == treserva["confirmed"]
        median = row["Median inskrivning till bekräftad (minuter): Treserva"]
        assert _number(median) == treserva["medianMinutes"]
        same = p["sameDayDischarge"]["share"]
        assert _number(row["Andel samma dag (%)"]) == (None if same is None else same * 100)
        assert int(row["Utskrivna efter utskrivningsklar"]) == p["sameDayDischarge"]["discharged"]
    assert rows[1]["Andel i tid (%)"] == "75,0"  # a decimal comma, for Swedish Excel
    assert rows[0]["Andel i tid (%)"] == ""  # no data, not 0


@pytest.mark.parametrize("name", CHART_NAMES)
async def test_every_chart_is_served_as_svg(api, seeded, name):
    res = await api.get(f"/api/v1/statistics/chart/{name}.svg", params=WEEKS)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(res.text)  # noqa: S314 (our own markup)
    assert root.get("role") == "img"
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "v. 13" in labels and "v. 14" in labels


async def test_the_notices_chart_has_a_bar_per_day(api, seeded):
    params = {"period": "day", "since": "2026-03-29", "until": "2026-04-04"}
    root = ET.fromstring(  # noqa: S314
        (await api.get("/api/v1/statistics/chart/notices.svg", params=params)).text
    )
    bars = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "bar"]
    assert len(bars) == 7


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("", {"period": "month"}, 422, "Input should be 'day' or 'week'"),
        ("/export.csv", {"period": "year"}, 422, "Input should be 'day' or 'week'"),
        ("", {"since": "2026-04-02", "until": "2026-04-01"}, 422, "is after until"),
        ("/chart/sip.svg", {"since": "2026-04-02", "until": "2026-04-01"}, 422, "is after"),
        ("", {"since": "2026-13-01"}, 422, "valid date"),
        ("", {"since": "2024-01-01", "until": "2026-04-01"}, 422, "at most 400"),
        ("/chart/pie.svg", {}, 404, "no such chart; known: notices"),
    ],
)
async def test_bad_requests_get_a_clear_answer(api, path, params, status, says):
    res = await api.get(f"/api/v1/statistics{path}", params=params)
    assert res.status_code == status, res.text
    assert says in res.text


async def test_the_openapi_document_describes_the_figures(api):
    spec = (await api.get("/openapi.json")).json()
    assert {"/api/v1/statistics", "/api/v1/statistics/export.csv"} <= set(spec["paths"])
    assert "/api/v1/statistics/chart/{name}.svg" in spec["paths"]
    ok = spec["paths"]["/api/v1/statistics"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StatisticsDocument"
    }
    schemas = spec["components"]["schemas"]
    assert {"onTime", "admissionToConfirmed", "sameDayDischarge", "sip"} <= set(
        schemas["PeriodOut"]["properties"]
    )
