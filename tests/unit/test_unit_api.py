"""The unit directory through the ops API and CLI (issue 20): seeded from the file when the
table is empty and never again; listed by any caller; added, updated and deactivated by an
admin only, each change an admin-action on the access log with who, when and the fields
before and after."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.messaging.keys import hash_key
from services.router.alerting import unit_store
from services.router.alerting.unit_directory import UnitDirectory
from services.router.audit.access_log import AccessKind, access_log
from services.router.ops import cli
from services.router.ops.api_clients import ApiClient
from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.router import Clock

OPS = {"authorization": "Bearer sandbox-ops-token"}
VIEWER_KEY = "viewer-key-0123456789abcdefghij"
VIEWER = {"authorization": f"Bearer {VIEWER_KEY}"}
HALLAND = UnitDirectory.load(
    Path(__file__).resolve().parents[2] / "contracts" / "units" / "halland.json"
)
VARBERG = "SE2120000002-VBGHSV"


@pytest.fixture
async def app(sessions):
    async with sessions.begin() as s:
        assert await unit_store.seed_if_empty(s, HALLAND, Clock().now) == len(HALLAND.units)
    settings = RouterSettings(
        api_clients={"monitoring": ApiClient(role="viewer", key_hashes=[hash_key(VIEWER_KEY)])}
    )
    return create_app(settings, sessions=sessions, clock=Clock())


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router")


async def admin_actions(sessions):
    async with sessions() as s:
        rows = await s.execute(
            select(access_log)
            .where(access_log.c.kind == AccessKind.ADMIN_ACTION.value)
            .order_by(access_log.c.seq)
        )
        return rows.all()


async def test_seeding_happens_only_into_an_empty_table(app, sessions):
    async with sessions.begin() as s:
        assert await unit_store.seed_if_empty(s, HALLAND, Clock().now) == 0


async def test_a_viewer_lists_units_but_may_not_change_them(app, sessions):
    varberg = HALLAND.units[VARBERG].document()
    async with client(app) as api:
        listed = await api.get("/api/v1/units", headers=VIEWER)
        put = await api.put(f"/api/v1/units/{VARBERG}", json=varberg, headers=VIEWER)
        off = await api.post(f"/api/v1/units/{VARBERG}/deactivate", headers=VIEWER)
    assert listed.status_code == 200
    items = {u["hsaId"]: u for u in listed.json()["items"]}
    assert items[VARBERG]["municipality"] == "1383" and items[VARBERG]["channel"] == "treserva"
    assert items[VARBERG]["document"]["hsaId"] == VARBERG  # spelt as in the file
    assert put.status_code == off.status_code == 403
    assert await admin_actions(sessions) == []


async def test_an_admins_update_and_deactivation_are_audited_with_before_and_after(app, sessions):
    changed = {**HALLAND.units[VARBERG].document(), "phone": "0340-88 79 99"}
    async with client(app) as api:
        put = await api.put(f"/api/v1/units/{VARBERG}", json=changed, headers=OPS)
        same = await api.put(f"/api/v1/units/{VARBERG}", json=changed, headers=OPS)
        off = await api.post(f"/api/v1/units/{VARBERG}/deactivate", headers=OPS)
        listed = await api.get("/api/v1/units", params={"active": "true"}, headers=OPS)
        missing = await api.post("/api/v1/units/SE2120000009-NONE/deactivate", headers=OPS)
    assert put.status_code == 200 and put.json()["changed"] is True
    assert put.json()["before"]["document"]["phone"] == "0340-88 70 00"
    assert same.json()["changed"] is False  # unchanged: nothing written, nothing audited
    assert off.json()["after"]["active"] is False
    assert VARBERG not in {u["hsaId"] for u in listed.json()["items"]}
    assert missing.status_code == 404
    updated, deactivated = await admin_actions(sessions)
    assert (updated.actor, updated.role) == ("API client ops", "admin")
    assert updated.reason == f"unit updated: {VARBERG}: phone: 0340-88 70 00 → 0340-88 79 99"
    assert deactivated.reason == f"unit deactivated: {VARBERG}: active: true → false"


async def test_a_new_unit_is_validated_and_added(app, sessions):
    kungsbacka = {
        **HALLAND.units[VARBERG].document(),
        "hsaId": "SE2120000003-KBAHSV",
        "name": "Hemsjukvården Kungsbacka",
        "municipality": "1384",
    }
    no_municipality = {k: v for k, v in kungsbacka.items() if k != "municipality"}
    async with client(app) as api:
        refused = await api.put(
            "/api/v1/units/SE2120000003-KBAHSV", json=no_municipality, headers=OPS
        )
        wrong_path = await api.put(f"/api/v1/units/{VARBERG}", json=kungsbacka, headers=OPS)
        added = await api.put("/api/v1/units/SE2120000003-KBAHSV", json=kungsbacka, headers=OPS)
    assert refused.status_code == wrong_path.status_code == 422
    async with client(app) as api:  # a second receiving home-care unit for Varberg: refused
        rival = {**kungsbacka, "municipality": "1383"}
        clash = await api.put("/api/v1/units/SE2120000003-KBAHSV", json=rival, headers=OPS)
    assert clash.status_code == 409 and VARBERG in clash.json()["detail"]
    assert added.status_code == 200 and added.json()["before"] is None
    (entry,) = await admin_actions(sessions)
    assert entry.reason.startswith("unit added: SE2120000003-KBAHSV: ")
    assert "municipality: - → 1384" in entry.reason


def test_the_cli_lists_puts_and_deactivates(tmp_path):
    calls: list[tuple[str, str]] = []
    unit = HALLAND.units[VARBERG].document()

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        if request.method == "GET":
            item = {
                "hsaId": VARBERG,
                "name": unit["name"],
                "kind": "home-care",
                "municipality": "1383",
                "channel": "treserva",
                "active": True,
                "document": unit,
            }
            return httpx.Response(200, json={"items": [item]})
        after = {"hsaId": VARBERG, "active": request.url.path.endswith("deactivate")}
        return httpx.Response(200, json={"changed": True, "before": {}, "after": after})

    transport = httpx.MockTransport(handler)
    runner = CliRunner()
    file = tmp_path / "unit.json"
    file.write_text(__import__("json").dumps(unit), encoding="utf-8")
    listed = runner.invoke(cli.app, ["units", "list"], obj=cli.Connection(transport=transport))
    put = runner.invoke(
        cli.app, ["units", "put", "--file", str(file)], obj=cli.Connection(transport=transport)
    )
    off = runner.invoke(
        cli.app, ["units", "deactivate", VARBERG], obj=cli.Connection(transport=transport)
    )
    assert listed.exit_code == put.exit_code == off.exit_code == 0, listed.output + put.output
    assert "1383" in listed.output and "treserva" in listed.output
    assert f"{VARBERG} updated" in put.output and f"{VARBERG} deactivated" in off.output
    assert calls == [
        ("GET", "/api/v1/units"),
        ("PUT", f"/api/v1/units/{VARBERG}"),
        ("POST", f"/api/v1/units/{VARBERG}/deactivate"),
    ]


async def test_the_router_seeds_its_directory_at_start_and_then_reads_the_table(sessions):
    from services.messaging.clock import Clock as ServiceClock
    from services.router.service import unit_directory_at_start

    settings = RouterSettings(alert_unit_directory="contracts/units/halland.json")
    clock = ServiceClock()
    first = await unit_directory_at_start(settings, sessions, clock)
    assert first.units == HALLAND.units
    async with sessions.begin() as s:  # an admin deactivates a unit after start-up
        await unit_store.deactivate_unit(s, VARBERG, actor="test", role="admin", now=clock.now())
    again = await unit_directory_at_start(settings, sessions, clock)  # a restart: no re-seed
    assert again.units[VARBERG].active is False
    assert again.destinations == HALLAND.destinations


async def test_replicas_starting_together_seed_the_directory_once(sessions):
    """Two routers on one PostgreSQL database start at once: one seeds, the other finds the
    rows (before, both counted an empty table and the second died on a duplicate key)."""
    import asyncio

    from services.messaging.clock import Clock as ServiceClock
    from services.router.service import unit_directory_at_start

    settings = RouterSettings(alert_unit_directory="contracts/units/halland.json")
    clock = ServiceClock()
    both = await asyncio.gather(
        *(unit_directory_at_start(settings, sessions, clock) for _ in range(4))
    )
    assert all(found.units == HALLAND.units for found in both)
