"""The deviation API in process (httpx.ASGITransport) and the CLI export: the operator
token, filters, clear 422s, both exports, and no personnummer in anything exported."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.messaging.contracts import violations
from services.router.deviations.records import record_deviation
from services.router.ops import cli
from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.deviations import PERSONNUMMER, PSEUDONYM, SCHEMA, add_delivery, facts

pytestmark = pytest.mark.alerts

TOKEN = {"authorization": "Bearer sandbox-ops-token"}
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
async def api(sessions):
    app = create_app(RouterSettings(), sessions=sessions, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as client:
        yield client


@pytest.fixture
async def recorded(sessions):
    """Three deviations: two in November (one to primary care), one in October."""
    async with sessions.begin() as s:
        delivery_id = await add_delivery(s, "a1b2c3d4-0000-4000-8000-00000000000a")
        await record_deviation(
            s, **facts(delivery_id=delivery_id, detected_at=datetime(2026, 11, 3, tzinfo=UTC))
        )
        await record_deviation(
            s,
            **facts(
                kind="delivery_failed",
                destination="primary-care",
                message_id="a1b2c3d4-0000-4000-8000-00000000000b",
                detected_at=datetime(2026, 11, 20, tzinfo=UTC),
            ),
        )
        await record_deviation(
            s,
            **facts(
                kind="episode_gap",
                family="medication-list",
                message_id=None,
                detected_at=datetime(2026, 10, 31, 22, 0, tzinfo=UTC),  # 23:00 Stockholm
            ),
        )


async def test_every_deviation_route_needs_the_operator_token(api):
    for path in ("", "/export.csv", "/export.json", "/monthly"):
        for headers in ({"authorization": ""}, {"authorization": "Bearer wrong"}):
            res = await api.get(f"/api/v1/deviations{path}", headers=headers)
            assert res.status_code == 401, path
            assert "text/csv" not in res.headers["content-type"]


async def test_the_list_filters_by_month_kind_destination_and_family(api, recorded):
    res = await api.get("/api/v1/deviations", params={"month": "2026-11"})
    assert res.status_code == 200, res.text
    listed = res.json()
    assert listed["count"] == 2
    assert [d["kind"] for d in listed["items"]] == ["not_confirmed_in_time", "delivery_failed"]
    first = listed["items"][0]
    assert first["patientPseudonym"] == PSEUDONYM and first["detectedAt"].endswith("+01:00")
    assert (await api.get("/api/v1/deviations")).json()["count"] == 3
    by = {
        "kind": {"kind": "delivery_failed"},
        "destination": {"destination": "primary-care"},
        "family": {"family": "medication-list"},
    }
    for name, params in by.items():
        found = (await api.get("/api/v1/deviations", params=params)).json()
        assert found["count"] == 1, name
    october = (await api.get("/api/v1/deviations", params={"month": "2026-10"})).json()
    assert [d["kind"] for d in october["items"]] == ["episode_gap"]


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("", {"month": "2026-13"}, "month: month must be YYYY-MM"),
        ("/export.csv", {"month": "nov"}, "month: month must be YYYY-MM"),
        ("/export.json", {"month": "2026-11-01"}, "month: month must be YYYY-MM"),
        ("/monthly", {"since": "1999-12"}, "since: month must be YYYY-MM"),
        ("", {"kind": "DROP TABLE"}, "String should match pattern"),
        ("", {"family": "lab-result"}, "Input should be"),
        ("", {"limit": "0"}, "greater than or equal to 1"),
    ],
)
async def test_bad_query_values_get_a_clear_422(api, path, params, says):
    res = await api.get(f"/api/v1/deviations{path}", params=params)
    assert res.status_code == 422
    assert says in res.text


async def test_the_csv_export_downloads_as_a_file_for_excel(api, recorded):
    res = await api.get("/api/v1/deviations/export.csv", params={"month": "2026-11"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    assert res.headers["content-disposition"] == 'attachment; filename="avvikelser-2026-11.csv"'
    assert res.content.startswith(b"\xef\xbb\xbf")
    rows = list(
        csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"), newline=""), delimiter=";")
    )
    assert [r["Typ"] for r in rows] == ["Ej bekräftat i tid", "Leverans misslyckades"]
    assert rows[1]["Riktning"] == "Sjukhus till primärvård"


async def test_the_json_export_is_valid_and_named_by_month(api, recorded):
    res = await api.get("/api/v1/deviations/export.json", params={"month": "2026-10"})
    assert res.status_code == 200, res.text
    assert res.headers["content-disposition"] == 'attachment; filename="avvikelser-2026-10.json"'
    document = res.json()
    assert violations(SCHEMA, document) == []
    assert document["month"] == "2026-10" and document["count"] == 1
    assert document["generatedAt"] == "2026-12-01T08:00:00+01:00"
    everything = (await api.get("/api/v1/deviations/export.json")).json()
    assert everything["month"] is None and everything["count"] == 3
    assert violations(SCHEMA, everything) == []


async def test_monthly_counts_by_kind_and_direction(api, recorded):
    res = await api.get("/api/v1/deviations/monthly")
    assert res.status_code == 200, res.text
    assert res.json()["months"] == [
        {
            "month": "2026-10",
            "total": 1,
            "resolved": 0,
            "byKind": {"episode_gap": 1},
            "byDirection": {"hospital-to-municipality": 1},
        },
        {
            "month": "2026-11",
            "total": 2,
            "resolved": 0,
            "byKind": {"delivery_failed": 1, "not_confirmed_in_time": 1},
            "byDirection": {"hospital-to-municipality": 1, "hospital-to-primary-care": 1},
        },
    ]
    later = await api.get("/api/v1/deviations/monthly", params={"since": "2026-11"})
    assert [m["month"] for m in later.json()["months"]] == ["2026-11"]
    earlier = await api.get("/api/v1/deviations/monthly", params={"until": "2026-10"})
    assert [m["month"] for m in earlier.json()["months"]] == ["2026-10"]


async def test_no_export_carries_a_personnummer(api, sessions, recorded):
    async with sessions.begin() as s:
        await record_deviation(
            s,
            **facts(
                kind="legal_deadline_breached",
                message_id="a1b2c3d4-0000-4000-8000-00000000000c",
                detected_at=datetime(2026, 11, 2, tzinfo=UTC),
                due_at=datetime(2026, 11, 1, tzinfo=UTC),
                occurred_at=datetime(2026, 10, 31, tzinfo=UTC) - timedelta(hours=1),
            ),
        )
    texts = []
    for path in ("", "/export.csv", "/export.json", "/monthly"):
        res = await api.get(f"/api/v1/deviations{path}")
        assert res.status_code == 200
        texts.append(res.content.decode("utf-8-sig"))
    assert sum(t.count("SE2321000222-AKUT") for t in texts) == 12  # 4 deviations × 3 routes
    for text in texts:
        assert PERSONNUMMER.search(text) is None


def test_the_cli_writes_the_export_byte_for_byte(tmp_path, capsys):
    body = "\ufeffAvvikelse-id;Typ\r\n7;Ej bekräftat i tid\r\n".encode()
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "text/csv"})

    out = tmp_path / "nov.csv"
    code = cli.main(
        ["deviations", "export", "--month", "2026-11", "--format", "csv", "--out", str(out)],
        transport=httpx.MockTransport(handler),
    )
    assert code == 0 and out.read_bytes() == body
    (request,) = seen
    assert request.url.path == "/api/v1/deviations/export.csv"
    assert request.url.params["month"] == "2026-11"
    assert request.headers["authorization"] == "Bearer sandbox-ops-token"


def test_the_cli_prints_json_and_reports_a_refusal(capsys):
    answers = iter(
        [
            httpx.Response(200, json={"schemaVersion": "1.0", "count": 0}),
            httpx.Response(401, json={"detail": "missing or wrong operator token"}),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    assert cli.main(["deviations", "export", "--format", "json"], transport=transport) == 0
    assert json.loads(capsys.readouterr().out)["schemaVersion"] == "1.0"
    assert cli.main(["deviations", "export", "--format", "json"], transport=transport) == 2
    assert "router answered 401" in capsys.readouterr().err


def test_the_cli_refuses_a_bad_month_before_asking(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(
            ["deviations", "export", "--month", "2026-13"],
            transport=httpx.MockTransport(
                lambda request: pytest.fail("no request for a bad month")
            ),
        )
    assert exited.value.code == 2
    assert "month must be YYYY-MM" in capsys.readouterr().err
