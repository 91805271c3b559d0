"""Every process of the stack on real sockets: Tansu, router, adapters, simulators."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.scenario import Scenario
from services.stack import Stack
from tests.support.stacks import e2e_settings, running


@pytest.fixture
def stack(tmp_path: Path, stack_db: str | None) -> Iterator[Stack]:
    with running(e2e_settings(tmp_path, stack_db)) as s:
        yield s


@pytest.fixture
def scenario(stack: Stack) -> Iterator[Scenario]:
    s = Scenario(stack, random.Random(7))
    yield s
    s.close()
