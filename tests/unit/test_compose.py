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
