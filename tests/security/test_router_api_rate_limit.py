"""The router's ``/api/`` is rate limited per client (token bucket, like the adapters'
intake): over the rate a 429 with Retry-After and problem details, nothing behind it runs;
another client, the console and /health are not held back; 0 switches it off."""

from __future__ import annotations

import httpx
import pytest

from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.router_api import SUBSCRIPTION, TOKEN, _subscriptions, platform_resolver

pytestmark = pytest.mark.security


def client(app, address="10.0.0.1"):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://router",
        headers=TOKEN,
    )


async def test_over_the_rate_a_client_gets_429_with_retry_after_and_problem_details(sessions):
    app = create_app(
        RouterSettings(rate_limit_per_s=0.01, rate_limit_burst=3),
        sessions=sessions,
        resolver=platform_resolver(),
    )
    async with client(app) as api, client(app, "10.0.0.2") as other:
        for _ in range(3):
            assert (await api.get("/api/v1/alerts")).status_code == 200
        refused = await api.post("/api/v1/subscriptions", json=SUBSCRIPTION)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
        assert "try again" in problem["detail"]
        assert await _subscriptions(sessions) == 0  # nothing stored
        assert (await other.get("/api/v1/alerts")).status_code == 200  # its own bucket
        assert (await api.get("/health")).status_code == 200  # outside /api/
        assert (await api.get("/console/login")).status_code == 200


async def test_zero_switches_it_off_and_the_defaults_allow_busy_clients(sessions):
    off = create_app(RouterSettings(rate_limit_per_s=0, rate_limit_burst=1), sessions=sessions)
    busy = create_app(RouterSettings(), sessions=sessions)
    for app in (off, busy):
        async with client(app) as api:
            codes = {(await api.get("/api/v1/alerts")).status_code for _ in range(150)}
        assert codes == {200}
