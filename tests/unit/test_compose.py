"""docker-compose.yml describes production and validates against the Compose Specification
(vendored in deploy/, there is no Docker engine here)."""

import importlib.util
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft201909Validator

from sandbox.kafka_certs import BrokerCerts
from sandbox.kafka_config import admin_properties, server_properties
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import kafka_acls, topics
from services.messaging.broker_epoch import EPOCH_TOPIC
from services.messaging.settings import ServiceSettings
from services.router.settings import RouterSettings
from tests.support.compose import COMPOSE, DEPLOY, ROOT, SERVICES

APP_SERVICES: dict[str, type[ServiceSettings]] = {
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
    not_secret = {
        "CAREBRIDGE_DATABASE_URL",
        "KAFKA_SSL_KEYSTORE_TYPE",
        "KAFKA_SSL_KEYSTORE_LOCATION",
        # a path, not a key
        *(f"{p}SSL_KEYFILE" for p in ("ROUTER_", "ADAPTER_TAKECARE_", "ADAPTER_TRESERVA_")),
    }
    for name, service in SERVICES.items():
        for var, value in (service.get("environment") or {}).items():
            if secret.search(var) and var not in not_secret:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (name, var)
            # a password inside a value (Kafka's JAAS settings) comes from the environment too
            for inline in re.findall(r"(?:password|user_\w+)=\"([^\"]*)\"", str(value)):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", inline), (name, var)


@pytest.mark.parametrize(("name", "settings"), APP_SERVICES.items())
def test_every_url_a_service_calls_is_given_without_a_plain_http_default(name, settings):
    """In production a service refuses a plain-http URL (tests/security/test_fail_closed.py):
    compose asks for each one, never falls back to a simulator's http:// address."""
    env = SERVICES[name]["environment"]
    for field in settings.URLS:  # the router's alert webhook is off unless set
        value = str(env.get(settings.env(field), "${UNSET:? https://}"))
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*https://[^}]*\}", value), (name, field)


def test_simulators_only_run_in_their_profile():
    for name, service in SERVICES.items():
        is_sim = name.startswith("sim_")
        assert (service.get("profiles") == ["simulators"]) is is_sim, name


def test_the_production_image_holds_the_services_and_no_sandbox():
    """Only the simulators run the sandbox image; the services and the migration job run the
    production stage, which copies services/ and never sandbox/ (simulators, stack, demos)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    production = dockerfile.split("FROM production AS sandbox")[0]
    assert "COPY services" in production and "sandbox" not in production.split("AS production")[1]
    for name, service in SERVICES.items():
        is_sim = name.startswith("sim_")
        target = service.get("build", {}).get("target") if "build" in service else None
        if service.get("image", "").startswith("carebridge"):
            assert target == ("sandbox" if is_sim else "production"), name
            module = (service.get("command") or ["", "", "services.router"])[2]
            assert module.startswith("sandbox.") is is_sim, (name, module)


def test_each_adapter_has_its_own_reference_validator_on_its_loopback():
    """The FHIR validator binds 127.0.0.1 only: each adapter's runs in that adapter's network
    namespace, publishes nothing, and the adapter's $validate asks it there."""
    for adapter, prefix in (("adapter_takecare", "TAKECARE"), ("adapter_treserva", "TRESERVA")):
        validator = SERVICES[f"fhir-validator-{adapter.removeprefix('adapter_')}"]
        assert validator["build"]["dockerfile"] == "tools/fhir-validator/Dockerfile"
        assert validator["network_mode"] == f"service:{adapter}"
        assert "ports" not in validator
        url = SERVICES[adapter]["environment"][f"ADAPTER_{prefix}_FHIR_VALIDATOR_URL"]
        assert url == "http://127.0.0.1:8090"
        assert (ROOT / validator["build"]["dockerfile"]).read_text().count('--port", "8090') == 1


def test_every_command_names_a_module_that_exists():
    for service in SERVICES.values():
        command = service.get("command")
        if command and command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, command[2]


# --- Kafka: SASL_SSL, SCRAM users, ACLs, signed records (as the tests run Apache Kafka) -----

KAFKA = SERVICES["kafka"]
KAFKA_DIR = ROOT / "deploy/kafka"
PRINCIPAL_OF = {name: settings.SERVICE for name, settings in APP_SERVICES.items()}
# not turned into server.properties by the apache/kafka image (KafkaDockerWrapper)
_IMAGE_EXCLUDED = {
    *(f"KAFKA_{x}_OPTS" for x in ("HEAP", "LOG4J", "JMX", "JVM_PERFORMANCE", "GC_LOG")),
    *("KAFKA_OPTS", "KAFKA_VERSION", "KAFKA_JMX_HOSTNAME", "KAFKA_TOOLS_LOG4J_LOGLEVEL"),
    *("KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS"),
}


def interpolate(value: object) -> str:
    """Compose's interpolation: every ``${NAME:?…}`` given the value ``<name>-value``, every
    ``${NAME:-default}`` its default."""
    text = re.sub(r"\$\{([A-Z_]+):-([^}]*)\}", lambda m: m[2], str(value))
    text = re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: f"{m[1].lower()}-value", text)
    assert "${" not in text.replace("$${", ""), text  # no other form is used
    return text.replace("$$", "$")


def environment(name: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in SERVICES[name]["environment"].items()}


def image_properties(env: dict[str, str]) -> dict[str, str]:
    """server.properties as the apache/kafka image renders KAFKA_* variables: ``_`` → ``.``,
    ``__`` → ``_``, ``___`` → ``-``, lower case."""
    return {
        var.replace("KAFKA_", "")
        .lower()
        .replace("_", ".")
        .replace("...", "-")
        .replace("..", "_"): value
        for var, value in env.items()
        if var.startswith("KAFKA_") and var not in _IMAGE_EXCLUDED
    }


def properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def listeners(value: str) -> dict[str, tuple[str, str]]:
    """``NAME://host:port,…`` → name → (host, port)."""
    found = {}
    for item in value.split(","):
        name, address = item.split("://")
        host, port = address.rsplit(":", 1)
        found[name] = (host, port)
    return found


def mounts(service: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Container path → (host path, options) of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *options = str(volume).split(":")
        found[target] = (source, ",".join(options))
    return found


BROKER = image_properties(environment("kafka"))
ADMIN_PASSWORD = "kafka_admin_password-value"
PROTOCOLS = dict(x.split(":") for x in BROKER["listener.security.protocol.map"].split(","))
CONTROLLERS = set(BROKER["controller.listener.names"].split(","))
CLIENT_LISTENERS = {
    name: address
    for name, address in listeners(BROKER["listeners"]).items()
    if name not in CONTROLLERS
}
ADVERTISED = listeners(BROKER["advertised.listeners"])


def test_kafka_serves_clients_only_over_sasl_ssl_with_scram_and_denies_without_an_acl():
    assert "PLAINTEXT" not in PROTOCOLS.values()  # no listener, client or controller, in clear
    assert CLIENT_LISTENERS and set(ADVERTISED) == set(CLIENT_LISTENERS)
    for name in CLIENT_LISTENERS:
        assert PROTOCOLS[name] == "SASL_SSL", name
        prefix = f"listener.name.{name.lower()}"
        assert BROKER[f"{prefix}.sasl.enabled.mechanisms"] == "SCRAM-SHA-512", name
        assert "ScramLoginModule" in BROKER[f"{prefix}.scram-sha-512.sasl.jaas.config"], name
    assert PROTOCOLS[BROKER["inter.broker.listener.name"]] == "SASL_SSL"
    assert BROKER["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    # the controller listener carries no client: SASL (the admin only) on the loopback
    for name, (host, _) in listeners(BROKER["listeners"]).items():
        if name in CONTROLLERS:
            assert PROTOCOLS[name] in {"SASL_PLAINTEXT", "SASL_SSL"}, name
            assert host in {"localhost", "127.0.0.1"} or PROTOCOLS[name] == "SASL_SSL", name
    assert BROKER["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert BROKER["allow.everyone.if.no.acl.found"] == "false"
    assert BROKER["super.users"] == "User:admin"
    assert BROKER["auto.create.topics.enable"] == "false"
    assert "ports" not in KAFKA  # reachable on the compose network only


def test_kafka_security_is_the_configuration_the_tests_run():
    """The same keys as sandbox/kafka_config.py's broker (minus its mutual-TLS listener)."""
    secrets = mounts(KAFKA)["/etc/kafka/secrets"]
    assert secrets == ("./deploy/kafka/secrets", "ro")
    certs = BrokerCerts(
        ca_file=Path(BROKER["ssl.truststore.location"]),
        keystore_file=Path(BROKER["ssl.keystore.location"]),
        ca_key_file=Path("/nonexistent"),
    )
    tested = properties(
        server_properties(
            port=9093,
            controller_port=9094,
            mtls_port=9095,
            data_dir=Path(BROKER["log.dirs"]),
            admin_password=ADMIN_PASSWORD,
            certs=certs,
        )
    )
    tested_map = dict(x.split(":") for x in tested["listener.security.protocol.map"].split(","))
    assert {k: v for k, v in tested_map.items() if k != "MTLS"} == PROTOCOLS
    same = [
        key
        for key in tested
        if key.startswith(("sasl.", "listener.name.client.", "listener.name.controller."))
        or key.startswith(("ssl.keystore.", "ssl.truststore.", "authorizer.", "super."))
        or key in {"allow.everyone.if.no.acl.found", "inter.broker.listener.name"}
        or key in {"controller.listener.names", "process.roles", "node.id"}
    ]
    assert len(same) > 15
    assert {k: BROKER.get(k) for k in same} == {k: tested[k] for k in same}
    for path in (certs.ca_file, certs.keystore_file):
        assert path.parent == Path("/etc/kafka/secrets"), path


def test_kafka_image_has_the_major_version_the_tests_run():
    pom = (KAFKA_DIR / "pom.xml").read_text(encoding="utf-8")
    tested = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert tested is not None
    for name in ("kafka", "kafka-init"):
        repository, tag = SERVICES[name]["image"].split(":")
        assert repository == "apache/kafka", name
        assert tag.split(".")[0] == tested[1].split(".")[0], (name, tag, tested[1])
    assert SERVICES["kafka-init"]["image"] == KAFKA["image"]


def healthcheck_option(name: str) -> str:
    words = shlex.split(KAFKA["healthcheck"]["test"][1])
    return words[words.index(name) + 1]


def run_kafka_command(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """Kafka's start command with the image's tools replaced by recorders: the argv of the
    storage format, the properties it formatted with, and the admin's client settings."""
    shell, flags, script = KAFKA["command"]
    assert shell == "bash"
    record = tmp_path / "recorded"
    storage = tmp_path / "kafka-storage.sh"
    storage.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$@" > {record}.args\n'
        'while [ $# -gt 0 ]; do [ "$1" = --config ] && cp "$2" '
        f"{record}.properties; shift; done\n"
    )
    run = tmp_path / "run"
    run.write_text(f"#!/usr/bin/env bash\ntouch {tmp_path}/started\n")
    for tool in (storage, run):
        tool.chmod(0o755)
    # the container's temporary directory, where it writes the admin's client settings
    container_tmp = f"{Path(healthcheck_option('--command-config')).parent}/"
    script = interpolate(script).replace(container_tmp, f"{tmp_path}/")
    script = script.replace("/opt/kafka/bin/kafka-storage.sh", str(storage))
    script = script.replace("/etc/kafka/docker/run", str(run))
    env = {"PATH": os.environ["PATH"], **environment("kafka")}
    subprocess.run([shell, flags, script], env=env, check=True, timeout=30)
    assert (tmp_path / "started").exists()  # and then the image's own start
    args = (tmp_path / "recorded.args").read_text().splitlines()
    return args, properties((tmp_path / "recorded.properties").read_text()), tmp_path


def test_kafka_formats_its_storage_with_the_admins_scram_credential(tmp_path):
    """The admin needs a SCRAM credential before anyone can connect: the storage is formatted
    with it, from the properties the image renders (then the image finds it formatted)."""
    args, formatted, directory = run_kafka_command(tmp_path)
    assert args[0] == "format" and "--ignore-formatted" in args
    assert args[args.index("--cluster-id") + 1] == KAFKA["environment"]["CLUSTER_ID"]
    assert args[args.index("--add-scram") + 1] == (
        f"SCRAM-SHA-512=[name=admin,password={ADMIN_PASSWORD}]"
    )
    assert formatted == BROKER
    assert not (directory / "format.properties").exists()  # it held the admin's password
    admin = directory / "admin.properties"
    assert admin.stat().st_mode & 0o077 == 0
    tested = admin_properties(ADMIN_PASSWORD, Path(BROKER["ssl.truststore.location"]))
    assert properties(admin.read_text()) == properties(tested)


def test_kafka_healthcheck_asks_the_broker_as_the_admin_over_sasl_ssl():
    test = KAFKA["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    words = shlex.split(test[1])
    assert words[0].endswith("/kafka-broker-api-versions.sh")
    host, port = ADVERTISED[BROKER["inter.broker.listener.name"]]
    assert words[words.index("--bootstrap-server") + 1] == f"{host}:{port}"
    config = words[words.index("--command-config") + 1]
    assert f"> {config}\n" in KAFKA["command"][2]  # what the start command writes, 0600


@pytest.mark.parametrize(("name", "settings"), APP_SERVICES.items())
def test_broker_services_use_sasl_ssl_as_their_own_principal_and_sign_records(name, settings):
    env = SERVICES[name]["environment"]
    prefix = settings.model_config["env_prefix"]
    principal = PRINCIPAL_OF[name]
    assert principal == name and principal in kafka_acls.PRINCIPALS
    host, port = next(iter(ADVERTISED.values()))
    assert env[f"{prefix}KAFKA_BOOTSTRAP"] == f"{host}:{port}"
    assert env[f"{prefix}KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env.get(f"{prefix}KAFKA_SASL_MECHANISM", "SCRAM-SHA-512") == "SCRAM-SHA-512"
    assert env[f"{prefix}KAFKA_SASL_USERNAME"] == principal
    assert env[f"{prefix}KAFKA_SASL_PASSWORD"].startswith(
        f"${{KAFKA_{principal.upper()}_PASSWORD:?"
    )
    assert not {f"{prefix}KAFKA_SSL_CERTFILE", f"{prefix}KAFKA_SSL_KEYFILE"} & set(env)
    cafile = env[f"{prefix}KAFKA_SSL_CAFILE"]
    assert mounts(SERVICES[name])[cafile] == (
        BROKER["ssl.truststore.location"].replace("/etc/kafka/secrets", "./deploy/kafka/secrets"),
        "ro",
    )
    assert env[f"{prefix}KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert env[f"{prefix}RECORD_SIGNING_KEY"].startswith(
        f"${{{principal.upper()}_RECORD_SIGNING_KEY:?"
    )
    assert env[f"{prefix}RECORD_TRUSTED_KEYS"].startswith("${RECORD_TRUSTED_KEYS:?")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_broker_services_start_after_the_kafka_init_step(name):
    assert SERVICES[name]["depends_on"]["kafka-init"] == {
        "condition": "service_completed_successfully"
    }
    init = SERVICES["kafka-init"]
    assert init["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert init.get("restart", "no") == "no"  # one-shot


def test_acls_sh_is_the_generated_acl_table():
    text = (KAFKA_DIR / "acls.sh").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    expected = kafka_acls.acl_commands(
        kafka_acls.service_acls(), bootstrap="$BOOTSTRAP", config="$ADMIN_CONFIG"
    )
    assert lines == expected, "regenerate deploy/kafka/acls.sh: see its header"


def run_init(tmp_path: Path) -> tuple[list[list[str]], str]:
    """deploy/kafka/init.sh with kafka-init's environment and Kafka's tools replaced by
    recorders: every call's argv, and the admin's client settings it used."""
    init = SERVICES["kafka-init"]
    assert init["command"] == ["bash", "/opt/carebridge/init.sh"]
    targets = mounts(init)
    assert targets["/opt/carebridge/init.sh"] == ("./deploy/kafka/init.sh", "ro")
    assert targets["/opt/carebridge/acls.sh"] == ("./deploy/kafka/acls.sh", "ro")
    assert targets[init["environment"]["CA_FILE"]][1] == "ro"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for tool in ("kafka-configs.sh", "kafka-topics.sh", "kafka-acls.sh"):
        (bin_dir / tool).write_text(
            "#!/usr/bin/env bash\n"
            f'printf "%s\\t" "$(basename "$0")" "$@" >> {calls}; echo >> {calls}\n'
            'while [ $# -gt 0 ]; do [ "$1" = --command-config ] && cp "$2" '
            f"{tmp_path}/admin.properties; shift; done\n"
        )
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **environment("kafka-init")}
    subprocess.run(["bash", str(KAFKA_DIR / "init.sh")], env=env, check=True, timeout=60)
    argvs = [line.rstrip("\t").split("\t") for line in calls.read_text().splitlines()]
    return argvs, (tmp_path / "admin.properties").read_text()


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_kafka_init_creates_the_principals_the_topics_and_the_acls(tmp_path):
    argvs, admin = run_init(tmp_path)
    env = environment("kafka-init")
    bootstrap = env["BOOTSTRAP"]
    assert bootstrap == ":".join(next(iter(ADVERTISED.values())))
    assert properties(admin) == properties(admin_properties(ADMIN_PASSWORD, Path(env["CA_FILE"])))
    assert {option(a, "--bootstrap-server") for a in argvs} == {bootstrap}
    # each service's SCRAM user, with the very password the service logs in with
    users = {
        option(a, "--entity-name"): option(a, "--add-config")
        for a in argvs
        if a[0] == "kafka-configs.sh"
    }
    assert set(users) == set(kafka_acls.PRINCIPALS)
    for name, settings in APP_SERVICES.items():
        password = environment(name)[f"{settings.model_config['env_prefix']}KAFKA_SASL_PASSWORD"]
        assert users[PRINCIPAL_OF[name]] == f"SCRAM-SHA-512=[password={password}]", name
    # every topic a service uses, none created by a service (they hold no Create)
    created = [a for a in argvs if a[0] == "kafka-topics.sh"]
    assert all("--if-not-exists" in a and option(a, "--replication-factor") == "1" for a in created)
    partitions = ServiceSettings.model_fields["topic_partitions"].default
    assert {option(a, "--topic"): int(option(a, "--partitions")) for a in created} == {
        **{topic: partitions for topic in topics.all_topics()},
        EPOCH_TOPIC: 1,
    }
    # the ACL table, as the admin (deploy/kafka/acls.sh, sourced)
    config = tmp_path / "admin.properties"
    acls = [
        a[:3] + [str(config) if x == option(a, "--command-config") else x for x in a[3:]]
        for a in argvs
        if a[0] == "kafka-acls.sh"
    ]
    expected = kafka_acls.acl_commands(
        kafka_acls.service_acls(), bootstrap=bootstrap, config=str(config)
    )
    assert acls == [shlex.split(line) for line in expected]


def test_kafka_init_refuses_a_password_unsafe_for_jaas_and_scram(tmp_path):
    env = {"PATH": os.environ["PATH"], **environment("kafka-init"), "ROUTER_PASSWORD": 'x"y'}
    done = subprocess.run(
        ["bash", str(KAFKA_DIR / "init.sh")], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0 and "ROUTER_PASSWORD" in done.stderr


# --- monitoring: Prometheus, Grafana and the dashboard ----------------------------------------

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
    from services.router.ops.app import create_app as router_app

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
        # the services' HTTPS CA is not in git, like Kafka's secrets (deploy/README.md)
        if mount.startswith("./") and not mount.startswith("./deploy/tls/"):
            assert (ROOT / mount).exists(), mount
    assert "./deploy/grafana/dashboards" in mounts and "./deploy/grafana/provisioning" in mounts


@pytest.mark.parametrize(("name", "settings"), APP_SERVICES.items())
def test_broker_services_serve_https_from_deploy_tls(name, settings):
    """Outside the sandbox a service refuses to start without HTTPS: compose has each serve
    TLS itself, checked by its health check and by Prometheus against the same CA."""
    env = SERVICES[name]["environment"]
    prefix = settings.model_config["env_prefix"]
    assert env[f"{prefix}SSL_CERTFILE"] == f"/run/secrets/tls/{name}.pem"
    assert env[f"{prefix}SSL_KEYFILE"] == f"/run/secrets/tls/{name}.key"
    assert mounts(SERVICES[name])["/run/secrets/tls"] == ("./deploy/tls", "ro")
    check = " ".join(SERVICES[name]["healthcheck"]["test"])
    assert "https://localhost:" in check and "cafile='/run/secrets/tls/ca.pem'" in check
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == name]
    ca = job["tls_config"]["ca_file"]
    assert job["scheme"] == "https"
    assert mounts(SERVICES["prometheus"])[ca] == ("./deploy/tls/ca.pem", "ro")
