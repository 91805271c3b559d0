"""Settings base class shared by every service.

Configuration is read only here (never ``os.environ`` elsewhere). Each service subclasses
:class:`ServiceSettings` with its own environment prefix. The environment is production
unless the sandbox is chosen explicitly (``<PREFIX>ENVIRONMENT=sandbox``). Outside the sandbox
the settings refuse what :mod:`services.messaging.fail_closed` lists (published secrets, short
keys, plain-HTTP URLs, a PLAINTEXT Kafka channel), naming each setting and never its value;
in the sandbox a service listens on loopback only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messaging import sandbox_secrets
from services.messaging.clock import Clock
from services.messaging.fail_closed import (
    StartupRefused,
    env_name,
    loopback_only,
    plain_http,
    published_hashes,
    published_secrets,
    short_keys,
)
from services.messaging.kafka_connection import KafkaConnection, SaslMechanism, SecurityProtocol
from services.messaging.payload_crypto import SANDBOX_PAYLOAD_KEYS, Keyring
from services.messaging.record_signing import (
    RecordSigner,
    RecordVerifier,
    load_public,
    parse_signing_key,
    sandbox_signing_key,
    sandbox_trusted_keys,
)

SANDBOX_PSEUDONYM_KEY = sandbox_secrets.PSEUDONYM_KEY
# The sandbox source systems' bearer keys (README examples, simulators) and their hashes.
SANDBOX_TAKECARE_KEY = sandbox_secrets.TAKECARE_KEY
SANDBOX_TRESERVA_KEY = sandbox_secrets.TRESERVA_KEY
SANDBOX_TAKECARE_KEY_HASH = "9cfc3a398b4faf4b70559cd4455b8b6c726ccc9395ebaa4ee6ac811189b70b49"
SANDBOX_TRESERVA_KEY_HASH = "e66e0ce8e873328764d82c03a98a81194d96e1489e3078c4c0d14c7c22021a06"

Environment = Literal["sandbox", "test", "production"]
"""``test`` is a deployment for testing (a staging site): everything production refuses is
refused there too. Only ``sandbox`` relaxes anything, and only on loopback."""


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses add their own, set ``env_prefix`` and extend the
    tuples of secret fields below."""

    # never a value in a refusal: a secret given in the environment stays out of the error
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    SERVICE: ClassVar[str] = "service"  # its principal on Kafka and its name as a signer
    SIGNERS: ClassVar[tuple[str, ...]] = ("router", "adapter_takecare", "adapter_treserva")
    # Outside the sandbox: the fields that hold a secret (none may be a published one), the
    # keys among them the broker checks with (at least 32 bytes), and the URLs the service
    # calls (https only). A secret another system issues (a journal's API token, a Kafka or
    # SMTP password) is a secret but not a key: its length is that system's business.
    SECRETS: ClassVar[tuple[str, ...]] = ("pseudonym_key", "metrics_token", "kafka_sasl_password")
    KEYS: ClassVar[tuple[str, ...]] = ("pseudonym_key", "metrics_token")
    URLS: ClassVar[tuple[str, ...]] = ()

    # production unless the sandbox is chosen explicitly: a service started without its
    # environment must not run on the published sandbox secrets
    environment: Environment = "production"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # The Kafka channel (services.messaging.kafka_connection): PLAINTEXT only in the sandbox;
    # SASL_SSL with a SCRAM user per service, or SSL with a client certificate, elsewhere.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    # Apache Kafka supports the idempotent producer; Tansu (the sandbox's) rejects it.
    kafka_idempotent_producer: bool = False
    # Kafka's own floor is 6 s (group.min.session.timeout.ms): the sandbox stack uses it, so
    # a start joins in 3 s on Tansu and a killed member is replaced sooner
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6_000, le=300_000)
    # an empty fetch's wait at the broker (services.messaging.kafka_connection): Apache Kafka
    # answers as soon as a record arrives; the sandbox's Tansu stack sets 50
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=10, le=5_000)
    database_url: str = "sqlite+aiosqlite:///var/carebridge.db"
    pseudonym_key: str = SANDBOX_PSEUDONYM_KEY
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    topic_partitions: int = 3
    # After the broker lost its data (a Tansu restart), re-publish what was published within
    # this window; consumers are idempotent, so more is only slower, never wrong.
    replay_window_s: float = 24 * 3600
    broker_watch_s: float = 2.0
    # Input limits of the HTTP edge: JSON nesting depth, and a token bucket per client
    # (requests a second, and how many at once) kept in process memory; 0 switches it off.
    max_json_depth: int = 32
    rate_limit_per_s: float = 100.0
    rate_limit_burst: int = 1000  # a source's backfill after an outage still goes through
    # Optional TLS for the HTTP server (uvicorn's ssl_* options). With ``ssl_ca_certs`` set
    # every client must show a certificate signed by that CA (mutual TLS, CERT_REQUIRED).
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_ca_certs: str | None = None
    # Or a TLS proxy in front of the service (docs/security.md, Transport and headers):
    # ``behind_tls_proxy`` with the proxy's addresses (JSON list of IPs or networks), the only
    # peers whose X-Forwarded-Proto/-For uvicorn believes.
    behind_tls_proxy: bool = False
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    # What the service holds at rest (services.messaging.payload_crypto): base64 of
    # {"current": key id, "keys": {key id: base64 of 32 bytes}}; older keys stay readable.
    # The router seals message payloads, subscription secrets and its outbox with it; an
    # adapter its outbox.
    payload_keys: str = Field(default=SANDBOX_PAYLOAD_KEYS, repr=False)
    # Every Kafka record it produces is signed with this Ed25519 key, "<key id>:<base64 of 32
    # bytes>" (python -m services.router.ops.cli new-signing-key); unset, the sandbox's key.
    record_signing_key: str | None = Field(default=None, repr=False)
    # The public keys it trusts, JSON {"<service>": {"<key id>": "<base64>"}}: the services it
    # consumes from, two keys each during a rotation; unset, the sandbox's.
    record_trusted_keys: dict[str, dict[str, str]] | None = None
    # With a token, GET /metrics answers 401 unless it comes as "Authorization: Bearer …"
    # (Prometheus: authorization.credentials_file, see deploy/prometheus/prometheus.yml).
    metrics_token: str | None = Field(default=None, min_length=16, repr=False)
    # Sandbox only: a file holding seconds added to the wall clock, the same file for every
    # service of a stack, through which a test moves the whole stack's clock from outside
    # (services.messaging.clock). Refused elsewhere.
    clock_skew_file: Path | None = None

    @field_validator("payload_keys")
    @classmethod
    def _valid_keyring(cls, value: str) -> str:
        try:
            Keyring.from_setting(value)
        except ValueError as exc:  # KeyringError: names a key id and its size, never a key
            raise ValueError(f"{cls.env('payload_keys')}: {exc}") from None
        return value

    @classmethod
    def env(cls, field: str) -> str:
        """The environment variable of ``field``, as refusals name it."""
        return env_name(cls.model_config.get("env_prefix", ""), field)

    def kafka(self) -> KafkaConnection:
        return KafkaConnection(
            self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            idempotent_producer=self.kafka_idempotent_producer,
            session_timeout_ms=self.kafka_session_timeout_ms,
            fetch_max_wait_ms=self.kafka_fetch_max_wait_ms,
        )

    def record_signer(self) -> RecordSigner:
        key_id, private = parse_signing_key(
            self.record_signing_key or sandbox_signing_key(self.SERVICE)
        )
        return RecordSigner(self.SERVICE, key_id, private)

    def record_verifier(self, writers: Mapping[str, frozenset[str]]) -> RecordVerifier:
        """``writers``: topic → the services that may write it (a topic not listed is
        refused)."""
        trusted = self.record_trusted_keys or sandbox_trusted_keys(self.SIGNERS)
        keys = {
            signer: {key_id: load_public(public) for key_id, public in ids.items()}
            for signer, ids in trusted.items()
        }
        return RecordVerifier(keys, writers)

    def keyring(self) -> Keyring:
        return Keyring.from_setting(self.payload_keys)

    def sandbox_key_hashes(self) -> dict[str, Iterable[str]]:
        """Field name → what the field holds now, for every field of key hashes; the hash of
        a published key among them is refused outside the sandbox. Subclasses extend it."""
        return {}

    @property
    def in_sandbox(self) -> bool:
        return self.environment == "sandbox"

    def refusals(self) -> list[str]:
        """What this service refuses outside the sandbox, one line per setting (empty: it
        may start). Subclasses extend it."""
        refusals = published_secrets({self.env(f): getattr(self, f) for f in self.SECRETS})
        refusals += published_hashes(
            {self.env(f): held for f, held in self.sandbox_key_hashes().items()}
        )
        sandbox_keys = set(Keyring.from_setting(SANDBOX_PAYLOAD_KEYS).keys.values())
        if sandbox_keys & set(self.keyring().keys.values()):
            refusals.append(f"{self.env('payload_keys')}: holds the published sandbox key")
        refusals += self._sandbox_record_keys()
        named = {refusal.partition(":")[0] for refusal in refusals}  # one line per setting
        keys = {self.env(f): getattr(self, f) for f in self.KEYS if self.env(f) not in named}
        refusals += short_keys(keys)
        refusals += plain_http({self.env(f): getattr(self, f) for f in self.URLS})
        if self.clock_skew_file is not None:
            refusals.append(f"{self.env('clock_skew_file')}: the clock seam is the sandbox's")
        if self.ssl_certfile is None and not self.behind_tls_proxy:
            refusals.append(
                f"{self.env('ssl_certfile')}, {self.env('ssl_keyfile')}: outside the sandbox "
                f"the service serves HTTPS; set both, or run it behind a TLS proxy "
                f"({self.env('behind_tls_proxy')}, {self.env('forwarded_allow_ips')})"
            )
        if self.metrics_token is None:
            refusals.append(
                f"{self.env('metrics_token')}: outside the sandbox /metrics needs a token"
            )
        if self.kafka_security_protocol == "PLAINTEXT":
            refusals.append(
                f"{self.env('kafka_security_protocol')}: PLAINTEXT is refused outside the "
                f"sandbox; use SASL_SSL ({self.env('kafka_sasl_username')}, "
                f"{self.env('kafka_sasl_password')}) or SSL with a client certificate "
                f"({self.env('kafka_ssl_certfile')}, {self.env('kafka_ssl_keyfile')})"
            )
        return refusals

    def _sandbox_record_keys(self) -> list[str]:
        refusals = []
        sandbox = {p for ids in sandbox_trusted_keys(self.SIGNERS).values() for p in ids.values()}
        trusted = {p for ids in (self.record_trusted_keys or {}).values() for p in ids.values()}
        if self.record_signing_key is None or sandbox_signing_key(self.SERVICE) == (
            self.record_signing_key
        ):
            refusals.append(
                f"{self.env('record_signing_key')}: set this service's own key outside the sandbox"
            )
        if self.record_trusted_keys is None or sandbox & trusted:
            refusals.append(
                f"{self.env('record_trusted_keys')}: list the real public keys outside the sandbox"
            )
        return refusals

    @model_validator(mode="after")
    def _tls_complete(self) -> ServiceSettings:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        if self.ssl_ca_certs is not None and self.ssl_certfile is None:
            raise ValueError("ssl_ca_certs (mutual TLS) needs ssl_certfile and ssl_keyfile")
        return self

    @model_validator(mode="after")
    def _tls_proxy_complete(self) -> ServiceSettings:
        """The TLS proxy's addresses: the only peers whose forwarded headers are believed
        (services.messaging.http_edge)."""
        for address in self.forwarded_allow_ips:
            try:
                network = ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(
                    f"{self.env('forwarded_allow_ips')}: IP addresses or networks of the TLS "
                    "proxy only"
                ) from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"{self.env('forwarded_allow_ips')}: trusting every address trusts anyone"
                )
        if self.behind_tls_proxy and not self.forwarded_allow_ips:
            raise ValueError(
                f"{self.env('behind_tls_proxy')} needs {self.env('forwarded_allow_ips')}: the "
                "addresses of the TLS proxy"
            )
        return self

    def trusted_proxies(self) -> list[str] | None:
        """The TLS proxy's addresses for uvicorn's proxy headers; None: not behind one."""
        return list(self.forwarded_allow_ips) if self.behind_tls_proxy else None

    @model_validator(mode="after")
    def _record_keys(self) -> ServiceSettings:
        try:
            self.record_signer()  # a malformed key is named at start-up
        except ValueError as exc:
            raise ValueError(f"{self.env('record_signing_key')}: {exc}") from None
        for ids in (self.record_trusted_keys or {}).values():
            for public in ids.values():
                try:
                    load_public(public)
                except ValueError as exc:
                    raise ValueError(f"{self.env('record_trusted_keys')}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _kafka_complete(self) -> ServiceSettings:
        self.kafka()  # raises KafkaSecurityError (a ValueError) naming what is incomplete
        return self

    @model_validator(mode="after")
    def _fail_closed(self) -> ServiceSettings:
        if self.in_sandbox:
            refusals = loopback_only(self.env("host"), self.host)
        else:
            refusals = self.refusals()
        if refusals:
            raise StartupRefused(self.SERVICE, refusals)
        return self

    def clock(self) -> Clock:
        return Clock(self.clock_skew_file)
