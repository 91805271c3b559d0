"""How a service reaches Kafka: the bootstrap servers and the security of the channel.

Every Kafka client a service makes (producer, consumer, admin, the epoch reader, the lag
probe) takes its options from one :class:`KafkaConnection`, so no client can be left on a
plaintext channel while the others are secured. Three channels exist:

``PLAINTEXT``  the sandbox only (Tansu on loopback); refused at start-up everywhere else
``SSL``        TLS; with a client certificate the certificate is the principal
``SASL_SSL``   TLS plus a SCRAM-SHA-512 user name and password as the principal

The idempotent producer is a setting, not a guess: Apache Kafka supports it, Tansu rejects
its InitProducerId request.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


class KafkaSecurityError(ValueError):
    """The channel's settings are incomplete or not allowed where the service runs."""


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    bootstrap: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None  # None: the system's trusted CAs
    ssl_certfile: str | None = None  # a client certificate (mutual TLS)
    ssl_keyfile: str | None = None
    idempotent_producer: bool = False
    # a consumer group member not heard from for this long is replaced; Tansu also takes
    # half of it to answer a join, which every service start waits for
    session_timeout_ms: int = 10_000
    # how long the broker holds a fetch that finds nothing new. Apache Kafka answers the
    # moment a record arrives, so a long wait costs no latency and spares an idle consumer
    # twenty empty fetches a second; Tansu answers only when the wait is over, so the
    # sandbox's stack asks for 50 ms (each of a notice's six hops waits up to that long)
    fetch_max_wait_ms: int = 500

    def __post_init__(self) -> None:
        for problem in self.problems():
            raise KafkaSecurityError(problem)

    def problems(self) -> list[str]:
        """What is missing for the chosen channel, each naming the setting."""
        found: list[str] = []
        if self.security_protocol == "SASL_SSL" and not (self.sasl_username and self.sasl_password):
            found.append("kafka_sasl_username and kafka_sasl_password are needed for SASL_SSL")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            found.append("kafka_ssl_certfile and kafka_ssl_keyfile go together")
        if self.security_protocol == "PLAINTEXT" and (self.sasl_username or self.ssl_certfile):
            found.append("kafka_security_protocol is PLAINTEXT but credentials are set")
        return found

    def consumer_options(self) -> dict[str, int]:
        """A group member's liveness (heartbeats at a third of the session timeout) and how
        long an empty fetch waits."""
        return {
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.session_timeout_ms // 3,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
        }

    @property
    def encrypted(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    @property
    def principal(self) -> str:
        """Who the broker sees, for logs and error messages (never a secret)."""
        if self.security_protocol == "SASL_SSL":
            return f"User:{self.sasl_username}"
        if self.ssl_certfile:
            return "the client certificate's subject"
        return "User:ANONYMOUS"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.encrypted:
            options["ssl_context"] = _ssl_context(
                self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile
            )
        if self.security_protocol == "SASL_SSL":
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def producer_options(self) -> dict[str, Any]:
        return {**self.client_options(), "enable_idempotence": self.idempotent_producer}


@lru_cache(maxsize=8)
def _ssl_context(cafile: str | None, certfile: str | None, keyfile: str | None) -> ssl.SSLContext:
    """One context per set of files: loading a CA bundle costs milliseconds per client."""
    context: ssl.SSLContext = create_ssl_context(cafile=cafile, certfile=certfile, keyfile=keyfile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def plaintext(bootstrap: str) -> KafkaConnection:
    """The sandbox's and the tests' connection to a local broker."""
    return KafkaConnection(bootstrap)
