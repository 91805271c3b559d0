"""Every process of the stack on real sockets: Tansu, router, adapters, simulators.

A module marked ``shared_stack`` starts one stack for all its tests (a start costs about
12 s); each test leaves it clean (no simulator fault, its subscriptions off, no incident
open) and asserts only on its own messages. A test marked ``own_stack`` gets a stack of
its own: one whose fault would outlive it, such as a notice left unconfirmed.

Every FHIR message a module's stacks put on Kafka is judged by the reference FHIR validator
(tools/fhir-validator: make test's one server, tests/support/validator_session.py, or one per
session when run on its own) when the module ends: an error fails the
module (tests/support/fhir_tap.py). The conftest's stacks' adapters ask the same server in
their ``$validate`` endpoints, as docker-compose.yml wires them. No validator (no Maven to
build it, no Java) fails loudly; it is never skipped.

The PostgreSQL and Apache Kafka passes run the same flows again on another database and
broker; the messages are the same, so they set ``BROKER_TEST_FHIR_TAP=off`` (the Makefile)
and spare CI the validator's JVM there. ``make test`` always taps."""

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.scenario import Scenario
from sandbox.stack import Stack, StackSettings
from tests.support.fhir_tap import FhirTap, tapping
from tests.support.stacks import e2e_settings, running
from tests.support.validator_session import validator_url

_TAP = os.environ.get("BROKER_TEST_FHIR_TAP", "on")
if _TAP not in ("on", "off"):
    raise RuntimeError("BROKER_TEST_FHIR_TAP is on or off")


@pytest.fixture(scope="session")
def fhir_validator_server() -> Iterator[str | None]:
    """The reference FHIR validator's base URL: the run's, or one on a free loopback port."""
    if _TAP == "off":
        yield None
        return
    with validator_url() as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
def fhir_tap(fhir_validator_server: str | None) -> Iterator[FhirTap | None]:
    if fhir_validator_server is None:
        yield None
        return
    with tapping(FhirTap()) as tap:
        yield tap
    failures = tap.judge(fhir_validator_server)
    # shown with -s: what the tap saw (forged records are the router's to refuse)
    print(
        f"\nFHIR tap: {len(tap.messages)} messages judged, {len(failures)} failure(s), "
        f"{tap.unsigned} records no adapter signed"
    )
    if failures:
        shown = "\n".join(failures[:40])
        more = f"\n... and {len(failures) - 40} more" if len(failures) > 40 else ""
        pytest.fail(
            f"{len(failures)} FHIR validation failure(s) in {len(tap.messages)} messages "
            f"the stacks put on Kafka:\n{shown}{more}",
            pytrace=False,
        )


def _settings(data_dir: Path, stack_db: str | None, validator: str | None) -> StackSettings:
    if validator is None:
        return e2e_settings(data_dir, stack_db)
    return e2e_settings(data_dir, stack_db, adapter_env={"FHIR_VALIDATOR_URL": validator})


@pytest.fixture(scope="module")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory,
    module_stack_db: str | None,
    fhir_validator_server: str | None,
):
    data_dir = tmp_path_factory.mktemp("shared")
    with running(_settings(data_dir, module_stack_db, fhir_validator_server)) as s:
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
    validator = request.getfixturevalue("fhir_validator_server")
    with running(_settings(tmp_path, request.getfixturevalue("stack_db"), validator)) as s:
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
