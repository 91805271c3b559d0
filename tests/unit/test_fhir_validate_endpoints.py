"""The FHIR side of ``$validate`` with the validator's fake (services/messaging/fhir_validator):
the native endpoint's verdict joins the validator's issues, says when the FHIR side was not
checked, and answers 503 rather than a false "valid" when the validator is down;
``POST /fhir/Bundle/$validate`` is the validator's verdict, authenticated like the intake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.adapter_takecare.app import create_app
from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN, AdapterTakeCareSettings
from services.adapter_treserva.app import create_app as treserva_app
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.db import make_engine, session_factory
from services.messaging.fhir_validate_http import NOT_CHECKED, UNAVAILABLE
from services.messaging.fhir_validator import FakeFhirValidator, ValidationIssue
from services.messaging.intake import FakeIntakeStore

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NATIVE = CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.input.json"
GOLDEN = CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.fhir.json"
AN_ERROR = ValidationIssue(
    severity="error",
    code="required",
    message="MessageHeader.source.endpoint: minimum required = 1, but only found 0",
    expression="Bundle.entry[0].resource.source.endpoint",
)
A_WARNING = ValidationIssue(
    severity="warning", code="invariant", message="dom-6", expression="Bundle.entry[1].resource"
)

Client = Callable[[FakeFhirValidator | None], Any]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    clients: list[httpx.AsyncClient] = []

    def make(validator: FakeFhirValidator | None) -> httpx.AsyncClient:
        app = create_app(
            AdapterTakeCareSettings(),
            store=FakeIntakeStore(),
            sessions=None,
            clock=lambda: NOW,
            fhir_validator=validator,
        )
        made = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://tc",
            headers={"authorization": f"Bearer {SANDBOX_INTAKE_TOKEN}"},
        )
        clients.append(made)
        return made

    yield make
    for made in clients:
        await made.aclose()


def _native() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(NATIVE.read_text(encoding="utf-8"))
    return doc


def _golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return doc


async def test_native_validate_without_a_validator_says_the_fhir_side_was_not_checked(
    client: Client,
) -> None:
    response = await client(None).post("/takecare/v1/admissions/$validate", json=_native())
    assert response.status_code == 200
    issues = response.json()["issue"]
    assert [i["severity"] for i in issues] == ["information", "information"]
    assert issues[1]["diagnostics"] == NOT_CHECKED


async def test_native_validate_asks_the_validator_about_the_translated_message(
    client: Client,
) -> None:
    validator = FakeFhirValidator((A_WARNING,))
    response = await client(validator).post("/takecare/v1/admissions/$validate", json=_native())
    assert response.status_code == 200
    asked, profile = validator.seen[0]
    assert isinstance(asked, bytes) and profile is None
    bundle = json.loads(asked)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "message"
    assert response.json()["issue"][1] == {
        "severity": "warning",
        "code": "invariant",
        "diagnostics": "dom-6",
        "expression": ["Bundle.entry[1].resource"],
    }


async def test_native_validate_is_422_when_the_fhir_side_has_an_error(client: Client) -> None:
    response = await client(FakeFhirValidator((AN_ERROR,))).post(
        "/takecare/v1/admissions/$validate", json=_native()
    )
    assert response.status_code == 422
    errors = [i for i in response.json()["issue"] if i["severity"] == "error"]
    assert errors == [
        {
            "severity": "error",
            "code": "required",
            "diagnostics": AN_ERROR.message,
            "expression": [AN_ERROR.expression],
        }
    ]


async def test_a_native_contract_violation_never_reaches_the_validator(client: Client) -> None:
    validator = FakeFhirValidator()
    document = _native()
    del document["admissionReason"]
    response = await client(validator).post("/takecare/v1/admissions/$validate", json=document)
    assert response.status_code == 422
    assert validator.seen == []


async def test_native_validate_is_503_not_valid_when_the_validator_is_down(
    client: Client,
) -> None:
    response = await client(FakeFhirValidator(unavailable=True)).post(
        "/takecare/v1/admissions/$validate", json=_native()
    )
    assert response.status_code == 503
    assert response.json()["issue"][0]["diagnostics"] == UNAVAILABLE
    assert response.headers["retry-after"]


async def test_fhir_validate_is_the_validators_verdict(client: Client) -> None:
    validator = FakeFhirValidator((AN_ERROR, A_WARNING))
    response = await client(validator).post("/fhir/Bundle/$validate", json=_golden())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert [i["severity"] for i in response.json()["issue"]] == ["error", "warning"]
    assert validator.seen[0][0] == _golden()

    passed = await client(FakeFhirValidator((A_WARNING,))).post(
        "/fhir/Bundle/$validate", json=_golden()
    )
    assert passed.status_code == 200


@pytest.mark.parametrize(
    ("validator", "status"),
    [(None, 503), (FakeFhirValidator(unavailable=True), 503)],
    ids=["not configured", "unavailable"],
)
async def test_fhir_validate_never_says_valid_without_a_verdict(
    client: Client, validator: FakeFhirValidator | None, status: int
) -> None:
    response = await client(validator).post("/fhir/Bundle/$validate", json=_golden())
    assert response.status_code == status
    assert response.json()["issue"][0]["severity"] == "error"


async def test_fhir_validate_takes_only_a_bundle(client: Client) -> None:
    validator = FakeFhirValidator()
    response = await client(validator).post(
        "/fhir/Bundle/$validate", json={"resourceType": "Patient"}
    )
    assert response.status_code == 422
    assert validator.seen == []


async def test_fhir_validate_wants_the_adapters_own_key(client: Client) -> None:
    """401 without a known key, 403 with another system's, as on the intake."""
    made = client(FakeFhirValidator())
    response = await made.post(
        "/fhir/Bundle/$validate", json=_golden(), headers={"authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    other = treserva_app(
        AdapterTreservaSettings(),
        store=FakeIntakeStore(),
        sessions=session_factory(make_engine("sqlite+aiosqlite://")),
        clock=lambda: NOW,
        fhir_validator=FakeFhirValidator(),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other),
        base_url="http://tr",
        headers={"authorization": f"Bearer {SANDBOX_INTAKE_TOKEN}"},  # TakeCare's key
    ) as wrong:
        assert (await wrong.post("/fhir/Bundle/$validate", json=_golden())).status_code == 403


async def test_a_configured_url_that_does_not_answer_is_503_unavailable() -> None:
    """The app's own client, made from ``fhir_validator_url`` (a closed loopback port)."""
    settings = AdapterTakeCareSettings(fhir_validator_url="http://127.0.0.1:9")
    app = create_app(settings, store=FakeIntakeStore(), sessions=None, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tc",
        headers={"authorization": f"Bearer {SANDBOX_INTAKE_TOKEN}"},
    ) as made:
        response = await made.post("/fhir/Bundle/$validate", json=_golden())
    assert response.status_code == 503
    assert response.json()["issue"][0]["diagnostics"] == UNAVAILABLE
