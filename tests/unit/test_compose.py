"""docker-compose.yml describes production and validates against the Compose Specification
(vendored in deploy/, there is no Docker engine here)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft201909Validator

from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.router.settings import RouterSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
APP_SERVICES = {
    "router": RouterSettings,
    "adapter_takecare": AdapterTakeCareSettings,
    "adapter_treserva": AdapterTreservaSettings,
}


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((ROOT / "deploy/compose-spec.schema.json").read_text(encoding="utf-8"))
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft201909Validator(schema).iter_errors(COMPOSE)
    ]
    assert errors == []


def test_kafka_runs_in_kraft_mode_without_zookeeper():
    env = SERVICES["kafka"]["environment"]
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert not any(
        "zookeeper" in name or "zookeeper" in str(s.get("image", ""))
        for name, s in SERVICES.items()
    )


@pytest.mark.parametrize("name", [*APP_SERVICES, "kafka", "postgres"])
def test_every_long_running_service_has_a_healthcheck(name):
    assert SERVICES[name]["healthcheck"]["test"]


@pytest.mark.parametrize(("name", "settings"), APP_SERVICES.items())
def test_broker_services_run_in_production_with_known_settings(name, settings):
    env = SERVICES[name]["environment"]
    prefix = settings.model_config["env_prefix"]
    assert env[f"{prefix}ENVIRONMENT"] == "production"
    known = {prefix + field.upper() for field in settings.model_fields}
    assert set(env) <= known, set(env) - known  # a typo would silently fall back to a default
    assert SERVICES[name]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


def test_no_secret_has_a_literal_or_default_value():
    secret = re.compile(r"PASSWORD|TOKEN|KEY")
    for name, service in SERVICES.items():
        for var, value in (service.get("environment") or {}).items():
            if secret.search(var) and var != "STACK_DATABASE_URL":
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (name, var)


def test_simulators_only_run_in_their_profile():
    for name, service in SERVICES.items():
        is_sim = name.startswith("sim_")
        assert (service.get("profiles") == ["simulators"]) is is_sim, name


def test_every_command_names_a_module_that_exists():
    for service in SERVICES.values():
        command = service.get("command")
        if command and command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, command[2]


# --- monitoring: Prometheus, Grafana and the dashboard ----------------------------------------

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana/dashboards/carebridge.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


async def defined_metric_names(sessions) -> set[str]:
    """Every series name the router's and the adapters' /metrics can serve (scraped)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from services.adapter_takecare.app import create_app as takecare_app
    from services.adapter_treserva.app import create_app as treserva_app
    from services.messaging.db import utcnow
    from services.messaging.intake import FakeIntakeStore
    from services.router.app import create_app as router_app

    apps = [
        router_app(RouterSettings(), sessions=sessions),
        takecare_app(
            AdapterTakeCareSettings(), store=FakeIntakeStore(), sessions=sessions, clock=utcnow
        ),
        treserva_app(
            AdapterTreservaSettings(), store=FakeIntakeStore(), sessions=sessions, clock=utcnow
        ),
    ]
    names: set[str] = set()
    for app in apps:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            await client.get("/health")  # so the request metrics have a sample
            text = (await client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            names |= {family.name + s for s in _SUFFIXES.get(family.type, ("",))}
    return names


def test_the_dashboard_is_valid_json_with_panels_over_the_prometheus_datasource():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert dashboard["uid"] and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert all(t["expr"] for t in panel["targets"]), panel["title"]


async def test_the_dashboard_queries_only_metrics_the_services_define(sessions):
    dashboard = DASHBOARD.read_text(encoding="utf-8")
    used = set(re.findall(r"\bcarebridge_[a-z0-9_]+", dashboard))
    assert used, "the dashboard queries no carebridge metric"
    assert used <= await defined_metric_names(sessions), used - await defined_metric_names(sessions)


def test_prometheus_scrapes_every_broker_service_on_its_port():
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    ports = {
        name: next(v for k, v in SERVICES[name]["environment"].items() if k.endswith("_PORT"))
        for name in APP_SERVICES
    }
    assert targets == {f"{name}:{port}" for name, port in ports.items()}


def test_grafana_is_provisioned_from_the_files_in_deploy():
    mounts = {
        v.split(":")[0] for v in SERVICES["grafana"]["volumes"] + SERVICES["prometheus"]["volumes"]
    }
    for mount in mounts:
        if mount.startswith("./"):
            assert (ROOT / mount).exists(), mount
    assert "./deploy/grafana/dashboards" in mounts and "./deploy/grafana/provisioning" in mounts
