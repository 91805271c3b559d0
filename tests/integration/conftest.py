"""A real Tansu broker for the integration tests (one per test session, in memory)."""

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from sandbox.stack import free_port, tansu_binary


@pytest.fixture(scope="session")
def tansu() -> Iterator[str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, "tansu exited"
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("tansu did not start")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def apache_plaintext() -> Iterator[str]:
    """A real Apache Kafka (KRaft, plaintext listener) for the backend contract tests."""
    from sandbox.apache_kafka import ApacheKafka

    kafka = ApacheKafka()
    kafka.start()
    yield kafka.bootstrap
    kafka.remove()
