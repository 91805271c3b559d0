"""A private Apache Kafka broker (KRaft, one node) for tests and the sandbox.

Tansu (sandbox/stack.py) is the embedded default; this is the real thing, the way the design's
trust boundary wants it in production: TLS, SCRAM-SHA-512 users (or client certificates) and
ACLs enforced by Kafka's StandardAuthorizer. The broker is assembled from Maven Central
(deploy/kafka/pom.xml, ``make kafka``, cached in .cache/kafka-<version>/libs) and run as
``java -cp 'libs/*' kafka.Kafka server.properties``: one JVM as broker and controller, with its
log in a private directory that survives ``restart()``.

    with ApacheKafka(security="sasl_ssl", users={"alice": "alice-secret"}) as kafka:
        kafka.create_topics(["t"])
        kafka.create_acls([AclBinding("User:alice", "topic", "t", "literal", "Write")])
        settings = kafka.client_settings("alice")  # bootstrap, sasl_*, ssl_cafile

Call ``start()`` from a thread that outlives the broker: PR_SET_PDEATHSIG ends the JVM when
the thread that started it exits (that is what keeps a dead test run from leaving a JVM).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from aiokafka.protocol.admin import CreateAclsRequest_v1
from aiokafka.protocol.api import Request

from sandbox.kafka_certs import BrokerCerts, write_broker_certs, write_client_cert
from sandbox.kafka_config import (
    SCRAM,
    acl_creations,
    server_properties,
)
from sandbox.stack import _die_with_parent, free_port
from services.messaging.kafka_acls import AclBinding
from services.messaging.kafka_connection import KafkaConnection
from services.messaging.private_files import open_private_append

__all__ = ["AclBinding", "ApacheKafka", "KafkaError", "ensure_assembly", "kafka_version"]

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J_CONFIG = ROOT / "deploy" / "kafka" / "log4j2.xml"
STARTED = "Kafka Server started"  # logged at INFO by kafka.server.KafkaRaftServer
JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
# a tool (StorageTool) is a short run: start fast, small heap
TOOL_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
_SAFE = re.compile(r"[A-Za-z0-9._-]+")  # fits --add-scram, JAAS and properties unquoted

Security = Literal["plaintext", "sasl_ssl"]


class KafkaError(RuntimeError):
    """The broker could not be assembled, formatted, started or administered."""


def kafka_version() -> str:
    """The Kafka version deploy/kafka/pom.xml pins (the Makefile reads the same property)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if found is None:
        raise KafkaError(f"no <kafka.version> in {POM}")
    return found.group(1).strip()


def ensure_assembly() -> Path:
    """The directory of the broker's jars; assembles it first, exactly as ``make kafka`` does
    (same mvn command, same stamp file), if it is missing or older than the pom."""
    cache = ROOT / ".cache" / f"kafka-{kafka_version()}"
    libs, stamp = cache / "libs", cache / ".assembled"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:  # two test processes must not both run mvn
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.stat().st_mtime >= POM.stat().st_mtime:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError("Apache Kafka is not assembled and mvn is missing: run `make kafka`")
        argv = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
        argv.append(f"-DoutputDirectory={libs}")
        done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise KafkaError(f"`make kafka` (mvn) failed:\n{done.stdout[-3000:]}{done.stderr}")
        stamp.touch()
        return libs


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka: untyped
    """Every entry in one CreateAcls request, v1 (Kafka 4 takes v1 to v3; aiokafka's own
    CreateAclsRequest carries a single ACL)."""

    API_KEY = 30

    def __init__(self, creations: list[tuple[int, str, int, str, str, int, int]]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


class ApacheKafka:
    """One broker+controller JVM on free ports, with a private log directory.

    ``security="plaintext"``: one PLAINTEXT client listener. ``security="sasl_ssl"``: the client
    listener is SASL_SSL with SCRAM-SHA-512 (``users`` plus ``admin``, the only super user), and
    the StandardAuthorizer denies whatever no ACL allows.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        security: Security = "plaintext",
        users: Mapping[str, str] | None = None,
        port: int | None = None,
        startup_timeout_s: float = 90.0,
    ) -> None:
        if users and "admin" in users:
            raise ValueError("the admin user is the launcher's own; pick another name")
        self.users = {"admin": secrets.token_urlsafe(24), **(users or {})}
        for text in (*self.users, *self.users.values()):
            if not _SAFE.fullmatch(text):
                raise ValueError(f"user names and passwords must match {_SAFE.pattern}")
        self.libs = ensure_assembly()
        self.security: Security = security
        self.directory = directory or Path(tempfile.mkdtemp(prefix="apache-kafka-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.startup_timeout_s = startup_timeout_s
        self.port, self.controller_port = port or free_port(), free_port()
        self.mtls_port = free_port() if security == "sasl_ssl" else 0
        self.log_file = self.directory / "broker.log"
        self._certs: BrokerCerts | None = None
        if security == "sasl_ssl":
            self._certs = write_broker_certs(self.directory / "tls")
        self._process: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running JVM (after :meth:`start`)."""
        if self._process is None:
            raise KafkaError("the broker has not been started")
        return self._process

    # --- what clients need ----------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """host:port of the client listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the broker's certificate (``security="sasl_ssl"`` only)."""
        if self._certs is None:
            raise KafkaError("a plaintext broker has no CA")
        return self._certs.ca_file

    def client_settings(self, user: str = "admin", *, client_cert: bool = False) -> dict[str, str]:
        """What an aiokafka client needs, as strings (ready to become environment variables;
        the names are KafkaConnection's). ``client_cert``: mutual TLS on its own listener
        instead of SCRAM, as ``User:<user>`` (any name: the certificate is made here)."""
        if self._certs is None:
            return {"bootstrap": self.bootstrap, "security_protocol": "PLAINTEXT"}
        if client_cert:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", user):
                raise ValueError(f"no client certificate for the name {user!r}")
            cert_file, key_file = write_client_cert(self._certs, user)
            return {
                "bootstrap": f"127.0.0.1:{self.mtls_port}",
                "security_protocol": "SSL",
                "ssl_cafile": str(self._certs.ca_file),
                "ssl_certfile": str(cert_file),
                "ssl_keyfile": str(key_file),
            }
        return {
            "bootstrap": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM,
            "sasl_username": user,
            "sasl_password": self.users[user],
            "ssl_cafile": str(self._certs.ca_file),
        }

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Format the storage (first start only), start the JVM and wait until it serves."""
        if self._process is not None and self._process.poll() is None:
            return
        if not self._formatted:
            self._format()
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open_private_append(self.log_file) as log:
            self._process = subprocess.Popen(  # noqa: S603
                self._java(JVM_OPTS, "kafka.Kafka", str(self.directory / "server.properties")),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        self._wait_started(offset)

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after ``grace_s``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def kill(self) -> None:
        """SIGKILL: the broker dies as in a crash (the log stays on disk)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    def restart(self) -> None:
        """Stop and start again on the same ports and the same log directory."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Kill the broker and delete its directory (log, certificates, configuration)."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ApacheKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no broker log)"
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # --- administration -------------------------------------------------------------------
    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        """Create topics as the admin (replication factor 1); existing ones are left alone."""
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        topics = [NewTopic(name, partitions, 1) for name in names]

        async def create() -> None:
            admin = AIOKafkaAdminClient(**self._aiokafka_kwargs("admin"))
            await admin.start()
            try:
                response = await admin.create_topics(topics)
            finally:
                await admin.close()
            for name, code, *_ in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise KafkaError(f"creating topic {name} failed with error code {code}")

        with ThreadPoolExecutor(1) as pool:  # works inside a running event loop as well
            pool.submit(asyncio.run, create()).result()

    def create_acls(self, bindings: Iterable[AclBinding]) -> None:
        """Add ALLOW ACLs as the admin, in one CreateAcls request over the admin protocol
        (Kafka's AclCommand took a JVM start per product of principals, operations and
        resources: 13 for the service table, about 40 s of CPU per stack on 2 cores)."""
        from aiokafka.admin import AIOKafkaAdminClient

        if self._certs is None:
            raise KafkaError("ACLs need security='sasl_ssl' (a plaintext broker has no authorizer)")
        creations = acl_creations(bindings)

        async def create() -> list[tuple[int, str | None]]:
            admin = AIOKafkaAdminClient(**self._aiokafka_kwargs("admin"))
            await admin.start()
            try:
                response = await admin._send_request(_CreateAcls(creations))
            finally:
                await admin.close()
            return [(code, message) for code, message in response.creation_responses]

        with ThreadPoolExecutor(1) as pool:  # works inside a running event loop as well
            answers = pool.submit(asyncio.run, create()).result()
        failed = [
            f"{creation}: error {code} {message or ''}"
            for creation, (code, message) in zip(creations, answers, strict=True)
            if code != 0
        ]
        if failed:
            raise KafkaError("creating ACLs failed:\n" + "\n".join(failed))

    # --- helpers --------------------------------------------------------------------------
    def _java(self, opts: list[str], main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaError("java is missing (Apache Kafka needs Java 17 or newer)")
        log4j = f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"
        return [java, *opts, log4j, "-cp", f"{self.libs}/*", main, *args]

    def _format(self) -> None:
        properties = self.directory / "server.properties"
        properties.touch(mode=0o600)  # it holds the admin's password
        properties.write_text(
            server_properties(
                port=self.port,
                controller_port=self.controller_port,
                mtls_port=self.mtls_port,
                data_dir=self.directory / "data",
                admin_password=self.users["admin"],
                certs=self._certs,
            )
        )
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's Uuid.randomUuid: no leading dash
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        args = ["format", "--config", str(properties), "--cluster-id", cluster_id]
        args.append("--ignore-formatted")
        if self._certs is not None:  # SCRAM credentials go into the first metadata records
            for name, password in self.users.items():
                args += ["--add-scram", f"{SCRAM}=[name={name},password={password}]"]
        argv = self._java(TOOL_OPTS, "kafka.tools.StorageTool", *args)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise KafkaError(f"formatting the Kafka storage failed:\n{done.stdout}{done.stderr}")
        self._formatted = True

    def _aiokafka_kwargs(self, user: str) -> dict[str, object]:
        """The same client options every service builds (KafkaConnection)."""
        return KafkaConnection(**self.client_settings(user)).client_options()  # type: ignore[arg-type]

    def _wait_started(self, offset: int) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        process = self._process
        assert process is not None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise KafkaError(f"Kafka exited with {process.returncode}:\n{self.log_tail()}")
            with self.log_file.open("rb") as log:
                log.seek(offset)
                started = STARTED.encode() in log.read()
            if started:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
            time.sleep(0.1)
        self.kill()
        raise KafkaError(f"Kafka did not start in {self.startup_timeout_s}s:\n{self.log_tail()}")
