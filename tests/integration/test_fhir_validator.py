"""The FHIR validator (tools/fhir-validator, sandbox/fhir_validator_process.py) for real: built
from Maven Central, served on a loopback port, asked by the production client. A known-good
golden has no error; spoiled copies come back with an error naming the element."""

from __future__ import annotations

import copy
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.fhir_validator_process import FhirValidatorServer, goldens, run_batch
from services.messaging.fhir_validator import HttpFhirValidator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.fhir_validator,
    pytest.mark.skipif(
        shutil.which("java") is None or shutil.which("mvn") is None,
        reason="the FHIR validator needs java and mvn (make fhir-validator)",
    ),
    pytest.mark.timeout(600),  # a first build fetches HAPI FHIR from Maven Central
]

GOLDEN = (
    Path(__file__).resolve().parents[2]
    / "contracts/fixtures/takecare/admission-notice/personnummer-full.fhir.json"
)


@pytest.fixture(scope="module")
def server() -> Iterator[FhirValidatorServer]:
    started: dict[str, Any] = {}
    ready = threading.Event()
    done = threading.Event()

    # started from a thread that lives as long as the module's tests (PR_SET_PDEATHSIG)
    def keep() -> None:
        try:
            started["server"] = FhirValidatorServer().start()
        except Exception as exc:
            started["error"] = exc
        ready.set()
        done.wait()

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    ready.wait(timeout=580)
    if "error" in started:
        raise started["error"]
    try:
        yield started["server"]
    finally:
        started["server"].stop()
        done.set()
        thread.join(timeout=15)


def _golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN.read_text())
    return doc


def _message_header(bundle: dict[str, Any]) -> dict[str, Any]:
    header: dict[str, Any] = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    return header


async def test_a_golden_has_no_error(server: FhirValidatorServer) -> None:
    async with HttpFhirValidator(server.base_url) as client:
        assert await client.healthy()
        verdict = await client.validate(_golden())
    assert verdict.valid, verdict.errors
    assert verdict.outcome["resourceType"] == "OperationOutcome"


async def test_a_wrong_bundle_type_is_an_error_on_type(server: FhirValidatorServer) -> None:
    spoiled = _golden() | {"type": "messages"}
    async with HttpFhirValidator(server.base_url) as client:
        verdict = await client.validate(spoiled)
    assert not verdict.valid
    assert any(
        i.expression == "type" and "BundleType" in i.message and "messages" in i.message
        for i in verdict.errors
    ), verdict.errors


async def test_a_missing_source_endpoint_is_an_error_naming_it(
    server: FhirValidatorServer,
) -> None:
    spoiled = copy.deepcopy(_golden())
    del _message_header(spoiled)["source"]["endpoint"]
    async with HttpFhirValidator(server.base_url) as client:
        verdict = await client.validate(json.dumps(spoiled).encode())
    assert [i.expression for i in verdict.errors if i.code == "required"] == [
        "Bundle.entry[0].resource.source.endpoint"
    ]
    assert "MessageHeader.source.endpoint: minimum required = 1" in verdict.errors[-1].message


async def test_an_invariant_and_an_unknown_element_are_errors(
    server: FhirValidatorServer,
) -> None:
    spoiled = copy.deepcopy(_golden())
    header = _message_header(spoiled)
    header["focus"][0]["reference"] = "#nowhere"  # ref-1: no contained resource of that id
    header["colour"] = "blue"
    async with HttpFhirValidator(server.base_url) as client:
        verdict = await client.validate(spoiled)
    messages = [(i.expression, i.message) for i in verdict.errors]
    assert any(e == "Bundle.entry[0].resource.focus[0]" and "ref-1" in m for e, m in messages), (
        messages
    )
    assert any("colour" in m for _, m in messages), messages


async def test_an_unknown_profile_is_an_error(server: FhirValidatorServer) -> None:
    async with HttpFhirValidator(server.base_url) as client:
        verdict = await client.validate(
            _golden(), profile="https://carebridge.example.se/fhir/StructureDefinition/none"
        )
    assert [i.code for i in verdict.errors] == ["not-found"]


def test_batch_over_every_golden_has_no_error() -> None:
    files = goldens()
    reports = run_batch(files)
    assert len(reports) == len(files) > 50
    assert [r.file for r in reports if r.errors] == []
