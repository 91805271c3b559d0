"""`make validate` and an adapter's ``POST /fhir/Bundle/$validate`` give the same verdict as
the reference FHIR validator (issue 21): the spoiled messages of contracts/fhir-negative/
(or, while that set does not exist, a handful spoiled here from a golden) go through both,
the batch mode of the jar behind ``make validate`` and the validator's server behind the
endpoint; each is rejected by both with the same errors (severity, location, message), and
the golden passes both. The batch mode runs in a JVM of its own once, over every spoiled
message and the golden; then `make validate` with ``FHIR_VALIDATOR_URL`` asks the run's server
instead (tests/support/validator_session.py). Fails loudly when the validator cannot be built
or started."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import contracts_cli
from sandbox.fhir_validator_process import SERVER_URL_ENV
from services.adapter_takecare.app import create_app
from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN, AdapterTakeCareSettings
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.fhir_validator import (
    FhirVerdict,
    HttpFhirValidator,
    error_set,
    verdict_from_outcome,
)
from services.messaging.intake import FakeIntakeStore
from tests.support.validator_session import validator_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.fhir_validator,
    pytest.mark.timeout(900),  # a JVM for the batch mode, and perhaps a first build
]

NEGATIVE = CONTRACTS_DIR / "fhir-negative"
GOLDEN = CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.fhir.json"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return doc


def _header(bundle: dict[str, Any]) -> dict[str, Any]:
    header: dict[str, Any] = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    return header


def _spoiled_here() -> dict[str, dict[str, Any]]:
    wrong_type = _golden() | {"type": "document"}
    no_endpoint = copy.deepcopy(_golden())
    del _header(no_endpoint)["source"]["endpoint"]
    unknown = copy.deepcopy(_golden())
    _header(unknown)["colour"] = "blue"
    broken_reference = copy.deepcopy(_golden())
    _header(broken_reference)["focus"][0]["reference"] = f"#{uuid.uuid4()}"
    return {
        "wrong-bundle-type": wrong_type,
        "missing-source-endpoint": no_endpoint,
        "unknown-element": unknown,
        "broken-reference": broken_reference,
    }


def spoiled_messages() -> dict[str, dict[str, Any]]:
    """Name → spoiled FHIR message: the negative set of contracts/fhir-negative/ and four
    more spoiled here."""
    negative = {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(NEGATIVE.glob("*.fhir.json"))
    }
    return negative | {f"here-{name}.fhir.json": m for name, m in _spoiled_here().items()}


@pytest.fixture(scope="module")
def validator_server() -> Iterator[str]:
    with validator_url() as url:  # no skip: no validator is a failure
        yield url


@pytest.fixture
async def adapter(validator_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with HttpFhirValidator(validator_server) as validator:
        app = create_app(
            AdapterTakeCareSettings(environment="sandbox"),
            store=FakeIntakeStore(),
            sessions=None,
            clock=lambda: NOW,
            fhir_validator=validator,
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://adapter",
            headers={"authorization": f"Bearer {SANDBOX_INTAKE_TOKEN}"},
        ) as client:
            yield client


def _make_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: dict[str, Any]
) -> tuple[int, FhirVerdict]:
    """`make validate FILE=<message>`: the CLI in process, its stdout the OperationOutcome."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(message, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    code = contracts_cli.main(["validate", "fhir", str(path)])
    return code, verdict_from_outcome(json.loads(capsys.readouterr().out))


async def _endpoint(client: httpx.AsyncClient, message: dict[str, Any]) -> tuple[int, FhirVerdict]:
    response = await client.post(
        "/fhir/Bundle/$validate",
        content=json.dumps(message).encode(),
        headers={"content-type": "application/fhir+json"},
    )
    assert response.headers["content-type"].startswith("application/fhir+json")
    return response.status_code, verdict_from_outcome(response.json())


def _make_validate_many(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], messages: dict[str, dict[str, Any]]
) -> tuple[int, dict[str, FhirVerdict]]:
    """`make validate FILE="a b …"`: the CLI in process with every message at once (one JVM),
    its stdout one JSON line per file, ``{"file", "outcome"}``."""
    paths = {}
    for name, message in messages.items():
        paths[name] = path = tmp_path / name
        path.write_text(json.dumps(message, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    code = contracts_cli.main(["validate", "fhir", *map(str, paths.values())])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_file = {line["file"]: verdict_from_outcome(line["outcome"]) for line in lines}
    return code, {name: by_file[str(path)] for name, path in paths.items()}


async def test_spoiled_messages_get_the_same_rejection_from_both(
    adapter: httpx.AsyncClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The jar's batch mode in a JVM of its own (no FHIR_VALIDATOR_URL) against the server:
    the same errors for every spoiled message, the same warnings for the golden."""
    monkeypatch.delenv(SERVER_URL_ENV, raising=False)
    spoiled = spoiled_messages()
    assert len(spoiled) >= 24
    cli_code, by_cli = _make_validate_many(
        tmp_path, capsys, spoiled | {"golden.fhir.json": _golden()}
    )
    assert cli_code == 1 and set(by_cli) == set(spoiled) | {"golden.fhir.json"}
    for name, message in spoiled.items():
        status, by_endpoint = await _endpoint(adapter, message)
        assert status == 422, name
        assert error_set(by_cli[name]), name
        assert error_set(by_cli[name]) == error_set(by_endpoint), name
    status, golden = await _endpoint(adapter, _golden())
    assert status == 200 and by_cli["golden.fhir.json"].valid and golden.valid
    warnings = {(i.expression, i.message) for i in by_cli["golden.fhir.json"].warnings}
    assert warnings == {(i.expression, i.message) for i in golden.warnings}


async def test_spoiled_messages_match_what_the_negative_set_expects(
    adapter: httpx.AsyncClient,
) -> None:
    """expected.json: file name → the expected error, a substring of its message or an
    object of ``message`` and/or ``expression``/``location`` substrings."""
    expected_file = NEGATIVE / "expected.json"  # written by contracts_cli --update
    expected: dict[str, Any] = json.loads(expected_file.read_text(encoding="utf-8"))
    for name, want in expected.items():
        message = json.loads((NEGATIVE / name).read_text(encoding="utf-8"))
        _, verdict = await _endpoint(adapter, message)
        found = [(f"{i.expression} {i.location}", i.message) for i in verdict.errors]
        assert any(_matches(want, where, text) for where, text in found), (name, want, found)


def _matches(want: Any, where: str, text: str) -> bool:
    if isinstance(want, str):
        return want in text or want in where
    at = want.get("expression") or want.get("location") or ""
    return str(want.get("message", "")) in text and str(at) in where


async def test_the_golden_passes_both(
    adapter: httpx.AsyncClient,
    validator_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`make validate` asking a running server (FHIR_VALIDATOR_URL) exits 0 on the golden."""
    monkeypatch.setenv(SERVER_URL_ENV, validator_server)
    cli_code, by_cli = _make_validate(tmp_path, capsys, "golden", _golden())
    status, by_endpoint = await _endpoint(adapter, _golden())
    assert (cli_code, status) == (0, 200)
    assert by_cli.valid and by_endpoint.valid
    warnings = {(i.expression, i.message) for i in by_cli.warnings}
    assert warnings == {(i.expression, i.message) for i in by_endpoint.warnings}


async def test_a_native_document_is_judged_on_its_fhir_side_too(
    adapter: httpx.AsyncClient,
) -> None:
    document = json.loads(
        (
            CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.input.json"
        ).read_text(encoding="utf-8")
    )
    response = await adapter.post("/takecare/v1/admissions/$validate", json=document)
    assert response.status_code == 200, response.text
    issues = response.json()["issue"]
    assert issues[0]["diagnostics"].startswith("valid ")
    assert not any("not checked" in i["diagnostics"] for i in issues)
    assert all(i["severity"] in ("information", "warning") for i in issues)
