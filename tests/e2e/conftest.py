"""Every process of the stack on real sockets: Tansu, router, adapters, simulators.

A module marked ``shared_stack`` starts one stack for all its tests (a start costs about
12 s); each test leaves it clean (no simulator fault, its subscriptions off, no incident
open) and asserts only on its own messages. A test marked ``own_stack`` gets a stack of
its own: one whose fault would outlive it, such as a notice left unconfirmed."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.scenario import Scenario
from sandbox.stack import Stack
from tests.support.stacks import e2e_settings, running


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory, module_stack_db: str | None):
    with running(e2e_settings(tmp_path_factory.mktemp("shared"), module_stack_db)) as s:
        yield s


def _shares(request: pytest.FixtureRequest) -> bool:
    return (
        request.node.get_closest_marker("shared_stack") is not None
        and request.node.get_closest_marker("own_stack") is None
    )


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if _shares(request):
        yield request.getfixturevalue("shared_stack")
        return
    with running(e2e_settings(tmp_path, request.getfixturevalue("stack_db"))) as s:
        yield s


@pytest.fixture
def scenario(request: pytest.FixtureRequest, stack: Stack) -> Iterator[Scenario]:
    s = Scenario(stack, random.Random(request.node.nodeid))  # distinct patients per test
    try:
        yield s
        if _shares(request):
            s.leave_clean()
    finally:
        s.close()
