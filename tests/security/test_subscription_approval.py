"""Two admins per webhook subscription: one creates it (pending, it receives nothing), a
different one activates it. The admin who created it cannot activate it, whatever the body
says; creation, activation and every status change are in the hash-chained access log."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from services.messaging.keys import hash_key
from services.router.audit.access_log import AccessKind, access_log, verify_chain
from services.router.ops.app import create_app
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from services.router.settings import RouterSettings
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import Criteria, catalogue_subscriptions
from tests.support.router import T0, Clock, inbound, routing_rules, started
from tests.support.router_api import SUBSCRIPTION, TOKEN, platform_resolver
from tests.support.settings import APPROVER_HEADERS, TWO_ADMINS
from tests.support.webhooks import SECRET, URL

pytestmark = pytest.mark.security

OPERATOR_KEY = "an-operator-key-0123456789abcdef"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def api(sessions, clock):
    async with sessions.begin() as s:
        await subscription_store.sync_catalogue(s, catalogue_subscriptions(), clock())
    clients = {
        **TWO_ADMINS["api_clients"],
        "oncall": {"role": "operator", "key_hashes": [hash_key(OPERATOR_KEY)]},
    }
    app = create_app(
        RouterSettings(api_clients=clients),
        sessions=sessions,
        clock=clock,
        resolver=platform_resolver(),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as client:
        yield client


async def create(api: httpx.AsyncClient) -> str:
    res = await api.post("/api/v1/subscriptions", json=SUBSCRIPTION)
    assert res.status_code == 201, res.text
    assert res.json()["status"] == "pending"
    return str(res.json()["id"])


async def subscription_changes(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as s:
        rows = (
            await s.execute(
                select(access_log)
                .where(access_log.c.kind == AccessKind.SUBSCRIPTION_CHANGE.value)
                .order_by(access_log.c.seq)
            )
        ).all()
    return [(r.actor, r.role, r.reason) for r in rows]


async def test_the_admin_who_created_it_cannot_activate_it(api, sessions):
    sub_id = await create(api)
    res = await api.post(f"/api/v1/subscriptions/{sub_id}/activate")  # the ops token again
    assert res.status_code == 403
    assert res.headers["content-type"] == "application/problem+json"
    assert "different admin" in res.json()["detail"]
    assert (await api.get(f"/api/v1/subscriptions/{sub_id}")).json()["status"] == "pending"
    # nor around the side: PATCH to active is refused for a subscription never approved
    patched = await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "active"})
    assert patched.status_code == 409
    assert (await api.get(f"/api/v1/subscriptions/{sub_id}")).json()["status"] == "pending"


async def test_no_name_in_the_body_makes_someone_else_the_creator(api):
    res = await api.post("/api/v1/subscriptions", json={**SUBSCRIPTION, "createdBy": "approver"})
    assert res.status_code == 422  # the body names no admin: the API key does


async def test_an_operator_cannot_activate(api):
    sub_id = await create(api)
    res = await api.post(
        f"/api/v1/subscriptions/{sub_id}/activate",
        headers={"authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert res.status_code == 403
    assert (await api.get(f"/api/v1/subscriptions/{sub_id}")).json()["status"] == "pending"


async def test_a_pending_subscription_receives_nothing_until_a_second_admin_activates_it(
    api, sessions, clock
):
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=clock))
    sub_id = await create(api)
    await router.handle_batch([inbound(1)])
    async with sessions() as s:
        destinations = {r.destination for r in (await s.execute(select(delivery))).all()}
    assert sub_id not in destinations and destinations  # the journals got theirs
    res = await api.post(f"/api/v1/subscriptions/{sub_id}/activate", headers=APPROVER_HEADERS)
    assert res.status_code == 200, res.text
    assert res.json()["createdBy"] == "ops" and res.json()["activatedBy"] == "approver"
    await router.handle_batch([inbound(2, patient="b" * 32)])
    async with sessions() as s:
        mine = (await s.execute(select(delivery).where(delivery.c.destination == sub_id))).all()
    assert len(mine) == 1  # the message after activation, not the one before


async def test_creation_activation_and_changes_are_in_the_access_log(api, sessions):
    sub_id = await create(api)
    refused = await api.post(f"/api/v1/subscriptions/{sub_id}/activate")
    assert refused.status_code == 403
    await api.post(f"/api/v1/subscriptions/{sub_id}/activate", headers=APPROVER_HEADERS)
    await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "off"})
    await api.patch(f"/api/v1/subscriptions/{sub_id}", json={"status": "active"})
    await api.delete(f"/api/v1/subscriptions/{sub_id}")
    assert await subscription_changes(sessions) == [
        ("API client ops", "admin", f"created {sub_id} (pending)"),
        ("API client approver", "admin", f"activated {sub_id} (created by ops)"),
        ("API client ops", "admin", f"{sub_id}: active → off"),
        ("API client ops", "admin", f"{sub_id}: off → active"),
        ("API client ops", "admin", f"{sub_id}: active → off"),
    ]
    async with sessions() as s:
        assert (await verify_chain(s)).ok
    for _, _, reason in await subscription_changes(sessions):
        assert "secret" not in reason and "example.se" not in reason


async def test_activation_checks_the_endpoint_again(api, sessions, clock):
    """Taken off the allowlist between the two steps: the second admin's activation is
    refused and the subscription stays pending."""
    sub_id = await create(api)
    narrower = create_app(
        RouterSettings(**TWO_ADMINS, subscription_allowed_hosts=["hooks.elsewhere.se"]),
        sessions=sessions,
        clock=clock,
        resolver=platform_resolver(),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=narrower), base_url="http://router"
    ) as other:
        res = await other.post(f"/api/v1/subscriptions/{sub_id}/activate", headers=APPROVER_HEADERS)
    assert res.status_code == 422
    assert res.json()["errors"][0]["field"] == "body.channel.endpoint"
    assert (await api.get(f"/api/v1/subscriptions/{sub_id}")).json()["status"] == "pending"


async def test_the_store_itself_refuses_activation_by_the_creator(sessions):
    """The two-admin rule holds below the API too: any caller of the store is bound by it."""
    async with sessions.begin() as s:
        created = await subscription_store.create_rest_hook(
            s,
            name="platform",
            criteria=Criteria(frozenset({"admission-notice"}), None),
            endpoint=URL,
            secret=SECRET,
            created_by="ops",
            now=T0,
        )
        assert not await subscription_store.activate(s, created.id, "ops", T0)
        assert await subscription_store.activate(s, created.id, "approver", T0)
