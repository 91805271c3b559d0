"""Every process of the stack on real sockets: Tansu, router, adapters, simulators."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.demo import demo_settings
from services.scenario import Scenario
from services.stack import Stack, StackSettings
from tests.support.brokers import stack_broker


@contextmanager
def running(settings: StackSettings) -> Iterator[Stack]:
    """A started stack, stopped however the test ends."""
    s = Stack(settings, echo=lambda _: None)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def e2e_settings(tmp_path: Path, stack_db: str | None, **overrides: object) -> StackSettings:
    """The e2e tests' stack: quick attempt timeouts and retries."""
    return demo_settings(
        tmp_path / "stack",
        database_url=stack_db,
        kafka=stack_broker(),
        attempt_timeout_s=5.0,
        retry_base_s=0.2,
        **overrides,
    )


@pytest.fixture
def stack(tmp_path: Path, stack_db: str | None) -> Iterator[Stack]:
    with running(e2e_settings(tmp_path, stack_db)) as s:
        yield s


@pytest.fixture
def scenario(stack: Stack) -> Iterator[Scenario]:
    s = Scenario(stack, random.Random(7))
    yield s
    s.close()
