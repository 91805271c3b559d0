"""The subscription API in process (httpx.ASGITransport): validation, the secret never
returned, status changes, and the journal adapters' subscriptions left alone."""

import httpx
import pytest
from sqlalchemy import select

from services.router.ops.app import create_app
from services.router.routing.tables import subscription
from services.router.settings import RouterSettings
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import catalogue_subscriptions
from tests.support.router import Clock
from tests.support.router_api import platform_resolver
from tests.support.settings import APPROVER_HEADERS, TWO_ADMINS

TOKEN = {"authorization": "Bearer sandbox-ops-token"}
SECRET = "platform-secret-0123456789"


def body(**changes):
    found = {
        "name": "Regionens kommunikationsplattform",
        "criteria": {"events": ["admission-notice", "discharge-notice"]},
        "channel": {"type": "rest-hook", "endpoint": "https://platform.example.se/hooks/cb"},
        "secret": SECRET,
    }
    found.update(changes)
    return found


@pytest.fixture
async def api(sessions):
    clock = Clock()
    async with sessions.begin() as s:  # what the router does at start-up
        await subscription_store.sync_catalogue(s, catalogue_subscriptions(), clock())
    app = create_app(
        RouterSettings(**TWO_ADMINS), sessions=sessions, clock=clock, resolver=platform_resolver()
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as client:
        yield client


async def test_a_webhook_subscription_is_created_and_its_secret_never_shown(api, sessions):
    res = await api.post("/api/v1/subscriptions", json=body())
    assert res.status_code == 201, res.text
    created = res.json()
    assert created["id"].startswith("sub-") and len(created["id"]) == 20
    assert created["status"] == "pending" and created["managedBy"] is None
    assert created["createdBy"] == "ops" and created["activatedBy"] is None
    assert created["criteria"] == {
        "events": ["admission-notice", "discharge-notice"],
        "sources": None,
    }
    assert created["channel"] == {
        "type": "rest-hook",
        "endpoint": "https://platform.example.se/hooks/cb",
    }
    for shown in (
        res,
        await api.get(f"/api/v1/subscriptions/{created['id']}"),
        await api.get("/api/v1/subscriptions"),
    ):
        assert SECRET not in shown.text and "secret" not in shown.text
    async with sessions() as s:
        (row,) = (
            await s.execute(select(subscription).where(subscription.c.id == created["id"]))
        ).all()
    assert row.channel_type == "rest-hook"
    assert SECRET not in row.secret and row.secret.startswith("enc:v1:")  # sealed at rest


async def test_the_list_shows_the_journal_adapters_as_catalogue_subscriptions(api):
    await api.post(
        "/api/v1/subscriptions",
        json=body(criteria={"events": ["sip-created"], "sources": ["treserva"]}),
    )
    listed = (await api.get("/api/v1/subscriptions")).json()
    assert listed["count"] == 4
    by_id = {s["id"]: s for s in listed["items"]}
    assert by_id["treserva"]["managedBy"] == "catalogue"
    assert by_id["treserva"]["channel"] == {
        "type": "kafka",
        "endpoint": "carebridge.outbound.treserva.v1",
    }
    (hook,) = [s for s in listed["items"] if s["managedBy"] is None]
    assert hook["criteria"] == {"events": ["sip-created"], "sources": ["treserva"]}


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"criteria": {"events": ["admission-notis"]}}, ["criteria", "events", 0]),
        ({"criteria": {"events": ["receipt"]}}, ["criteria", "events"]),
        ({"criteria": {"events": []}}, ["criteria", "events"]),
        ({"criteria": {"events": ["admission-notice"], "sources": ["x"]}}, None),
        ({"channel": {"type": "kafka", "endpoint": "https://a.se"}}, ["channel", "type"]),
        ({"channel": {"type": "rest-hook", "endpoint": "ftp://a.se"}}, None),
        ({"channel": {"type": "rest-hook", "endpoint": "https://u:p@a.se"}}, None),
        ({"secret": "too-short"}, ["secret"]),
        ({"name": ""}, ["name"]),
        ({"colour": "blue"}, ["colour"]),
    ],
)
async def test_invalid_subscriptions_are_refused_with_422(api, changes, where):
    res = await api.post("/api/v1/subscriptions", json=body(**changes))
    assert res.status_code == 422, res.text
    assert res.headers["content-type"] == "application/problem+json"
    errors = res.json()["errors"]
    assert errors and all(e["message"] and e["rule"] for e in errors)
    if where is not None:
        field = "body" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
        assert any(e["field"].startswith(field) for e in errors), errors
    assert (await api.get("/api/v1/subscriptions")).json()["count"] == 3


async def test_unknown_event_codes_are_named_in_the_error(api):
    res = await api.post(
        "/api/v1/subscriptions", json=body(criteria={"events": ["admission-notis"]})
    )
    assert "admission-notice" in res.text  # the allowed values are listed
    res = await api.post("/api/v1/subscriptions", json=body(criteria={"events": ["receipt"]}))
    assert "receipt: a response, not a message family" in res.text


async def test_a_subscription_is_switched_off_and_on_and_delete_keeps_the_row(api, sessions):
    sub_id = (await api.post("/api/v1/subscriptions", json=body())).json()["id"]
    activated = await api.post(f"/api/v1/subscriptions/{sub_id}/activate", headers=APPROVER_HEADERS)
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    assert activated.json()["activatedBy"] == "approver"
    off = await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "off"})
    assert off.status_code == 200 and off.json()["status"] == "off"
    on = await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "active"})
    assert on.json()["status"] == "active"
    for bad_status in ("paused", "pending"):
        bad = await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": bad_status})
        assert bad.status_code == 422
    gone = await api.delete(f"/api/v1/subscriptions/{sub_id}")
    assert gone.status_code == 200 and gone.json()["status"] == "off"
    assert (await api.get(f"/api/v1/subscriptions/{sub_id}")).json()["status"] == "off"


async def test_an_unknown_subscription_is_404(api):
    for res in (
        await api.get("/api/v1/subscriptions/sub-nope"),
        await api.patch("/api/v1/subscriptions/sub-nope", json={"status": "off"}),
        await api.delete("/api/v1/subscriptions/sub-nope"),
        await api.post("/api/v1/subscriptions/sub-nope/activate", headers=APPROVER_HEADERS),
    ):
        assert res.status_code == 404 and res.json()["detail"] == "no such subscription"


async def test_a_journal_adapters_subscription_cannot_be_changed_or_deleted(api):
    for res in (
        await api.patch("/api/v1/subscriptions/treserva", json={"status": "off"}),
        await api.delete("/api/v1/subscriptions/treserva"),
    ):
        assert res.status_code == 409
        assert "follows the family catalogue" in res.json()["detail"]
    assert (await api.get("/api/v1/subscriptions/treserva")).json()["status"] == "active"


async def test_every_subscription_route_needs_the_operator_token(api):
    calls = [
        ("POST", "/api/v1/subscriptions", body()),
        ("GET", "/api/v1/subscriptions", None),
        ("GET", "/api/v1/subscriptions/treserva", None),
        ("PATCH", "/api/v1/subscriptions/treserva", {"status": "off"}),
        ("DELETE", "/api/v1/subscriptions/treserva", None),
        ("POST", "/api/v1/subscriptions/treserva/activate", None),
    ]
    for method, path, payload in calls:
        for headers in ({"authorization": ""}, {"authorization": "Bearer wrong"}):
            res = await api.request(method, path, json=payload, headers=headers)
            assert res.status_code == 401, (method, path)
            assert res.headers["www-authenticate"] == "Bearer"


async def test_a_pending_subscription_cannot_be_switched_on_by_patch(api):
    sub_id = (await api.post("/api/v1/subscriptions", json=body())).json()["id"]
    res = await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "active"})
    assert res.status_code == 409 and "/activate" in res.json()["detail"]
    # switched off before anyone activated it, it still needs the second admin
    await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "off"})
    res = await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "active"})
    assert res.status_code == 409
    assert (await api.get(f"/api/v1/subscriptions/{sub_id}")).json()["status"] == "off"


async def test_only_a_pending_subscription_is_activated(api):
    sub_id = (await api.post("/api/v1/subscriptions", json=body())).json()["id"]
    path = f"/api/v1/subscriptions/{sub_id}/activate"
    assert (await api.post(path, headers=APPROVER_HEADERS)).status_code == 200
    again = await api.post(path, headers=APPROVER_HEADERS)
    assert again.status_code == 409 and "active, not pending" in again.json()["detail"]
    catalogue = await api.post("/api/v1/subscriptions/treserva/activate", headers=APPROVER_HEADERS)
    assert catalogue.status_code == 409
