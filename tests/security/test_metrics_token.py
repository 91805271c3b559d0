"""``/metrics`` behind an optional bearer token (``<PREFIX>METRICS_TOKEN``), in every
service, and the production Prometheus configured to send it."""

import httpx
import pytest
import yaml

from services.adapter_takecare.app import create_app as takecare_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.app import create_app as treserva_app
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.db import utcnow
from services.messaging.intake import FakeIntakeStore
from services.router.ops.app import create_app as router_app
from services.router.settings import RouterSettings
from tests.support.compose import DEPLOY, SERVICES

pytestmark = pytest.mark.security

TOKEN = "scrape-token-0123456789abcdef"


def apps(sessions, token):
    return {
        "router": router_app(RouterSettings(metrics_token=token), sessions=sessions),
        "adapter_takecare": takecare_app(
            AdapterTakeCareSettings(metrics_token=token),
            store=FakeIntakeStore(),
            sessions=sessions,
            clock=utcnow,
        ),
        "adapter_treserva": treserva_app(
            AdapterTreservaSettings(metrics_token=token),
            store=FakeIntakeStore(),
            sessions=sessions,
            clock=utcnow,
        ),
    }


async def scrape(app, headers=None):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        return await client.get("/metrics", headers=headers or {})


@pytest.mark.parametrize("name", ["router", "adapter_takecare", "adapter_treserva"])
async def test_with_a_token_a_scrape_without_it_is_refused(sessions, name):
    app = apps(sessions, TOKEN)[name]
    for headers in (
        None,
        {"authorization": "Bearer wrong-token-0123456789abc"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": f"Bearer {TOKEN}x"},
    ):
        res = await scrape(app, headers)
        assert res.status_code == 401, headers
        assert res.headers["www-authenticate"].startswith("Bearer")
        assert "carebridge_" not in res.text
    ok = await scrape(app, {"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "carebridge_http_requests" in ok.text


@pytest.mark.parametrize("name", ["router", "adapter_takecare", "adapter_treserva"])
async def test_without_a_token_metrics_stay_open(sessions, name):
    res = await scrape(apps(sessions, None)[name])
    assert res.status_code == 200 and "carebridge_" in res.text


def test_a_short_token_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        RouterSettings(metrics_token="short")


def test_production_prometheus_sends_the_token_every_service_checks():
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    files = set()
    for job in config["scrape_configs"]:
        auth = job["authorization"]
        assert auth.get("type", "Bearer") == "Bearer", job["job_name"]
        files.add(auth["credentials_file"])
    (credentials_file,) = files
    prometheus = SERVICES["prometheus"]
    assert prometheus["environment"]["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")
    launch = " ".join(prometheus["entrypoint"] + prometheus.get("command", []))
    assert f'"$$METRICS_TOKEN" > {credentials_file}' in launch  # the file it reads is written
    for name, prefix in (
        ("router", "ROUTER_"),
        ("adapter_takecare", "ADAPTER_TAKECARE_"),
        ("adapter_treserva", "ADAPTER_TRESERVA_"),
    ):
        assert SERVICES[name]["environment"][f"{prefix}METRICS_TOKEN"].startswith(
            "${METRICS_TOKEN:?"
        )
