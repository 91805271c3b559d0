"""The router's JSON API takes the intake's body limits too: size, media type, depth; and a
valid request still goes through (the webhook secret and the console are untouched)."""

from __future__ import annotations

import json

import httpx
import pytest

from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.router_api import SUBSCRIPTION, TOKEN, _subscriptions, platform_resolver

pytestmark = pytest.mark.security


@pytest.fixture
async def api(sessions):
    app = create_app(
        RouterSettings(max_body_bytes=8192), sessions=sessions, resolver=platform_resolver()
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (json.dumps({**SUBSCRIPTION, "name": "x" * 9000}), "application/json", 413, "exceeds"),
        (json.dumps(SUBSCRIPTION), "application/xml", 415, "Content-Type"),
        (json.dumps(SUBSCRIPTION), "application/x-www-form-urlencoded", 415, "Content-Type"),
        ("[" * 40 + "]" * 40, "application/json", 400, "nests deeper"),
    ],
    ids=["oversized", "xml", "form", "nested"],
)
async def test_hostile_bodies_are_refused_before_parsing(
    api, sessions, body, content_type, status, says
):
    res = await api.post(
        "/api/v1/subscriptions", content=body, headers={"content-type": content_type}
    )
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/problem+json"  # as every API refusal
    assert res.json()["status"] == status and says in res.json()["detail"]
    assert await _subscriptions(sessions) == 0


async def test_a_valid_request_still_goes_through(api, sessions):
    res = await api.post("/api/v1/subscriptions", json=SUBSCRIPTION)
    assert res.status_code == 201, res.text
    assert await _subscriptions(sessions) == 1
    assert (await api.get("/api/v1/subscriptions")).status_code == 200
