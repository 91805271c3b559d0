"""A real stack under a supervisor (as `make run` has), for fault injection.

Each test injects one fault and then checks the promise: every accepted message is confirmed
once at the simulated journal (by business key), per-patient order holds, nothing is stuck,
and the recovery time is reported (test-output/reliability-results.json, docs/guarantees.md)."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.gotland_demo import Inbox, channels
from sandbox.scenario import Scenario
from sandbox.stack import Stack
from tests.support.postgres import EphemeralPostgres
from tests.support.stacks import fault_settings, supervise


@pytest.fixture
def supervised(tmp_path: Path, stack_db: str | None) -> Iterator[Stack]:
    with supervise(fault_settings(tmp_path / "stack", database_url=stack_db)) as stack:
        yield stack


@pytest.fixture
def scenario(supervised: Stack) -> Iterator[Scenario]:
    s = Scenario(supervised, random.Random(7))
    yield s
    s.close()


@pytest.fixture
def postgres() -> Iterator[EphemeralPostgres]:
    """A private PostgreSQL server the test may restart (never the machine's shared one)."""
    server = EphemeralPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[tuple[Inbox, dict[str, str]]]:
    """A local SMTP server and alert-webhook receiver: the inbox, and the ROUTER_ALERT_*
    settings that point a stack's router at them (the fallback-email fault tests)."""
    smtp, inbox, receiver, _hooks, env = channels(tmp_path)
    try:
        yield inbox, env
    finally:
        smtp.stop()
        receiver.shutdown()
        receiver.server_close()
