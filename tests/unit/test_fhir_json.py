"""to_json serialises the document a message was validated from, and it is the same FHIR as
the R4B model's own serialisation (services/messaging/envelope.py: FhirMessage)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID, inbound_family
from services.messaging.envelope import (
    EventCode,
    FhirMessage,
    ResponseCode,
    System,
    fhir_instant,
    response_message,
    to_json,
    validated_message,
)

FIXTURES = Path(__file__).resolve().parents[2] / "contracts" / "fixtures"
NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
INPUTS = sorted(
    p
    for p in FIXTURES.glob("*/*/*.input.json")
    if p.parent.name != "receipt" and not p.name.startswith("refused-")
)


def model_json(bundle: Bundle) -> Any:
    return json.loads(Bundle.model_validate(bundle.model_dump()).model_dump_json(exclude_none=True))


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parts[-3]}/{p.parts[-2]}/{p.stem}")
def test_every_fixture_serialises_as_the_model_does(path: Path) -> None:
    family = inbound_family(System(path.parts[-3]), path.parts[-2])
    assert family is not None
    bundle = family.to_bundle(
        family.parse(
            json.loads(path.read_text()),
            now=FIXTURE_NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        ),
        now=NOW,
        regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
    )
    assert isinstance(bundle, FhirMessage)
    assert json.loads(to_json(bundle)) == model_json(bundle)


@pytest.mark.parametrize("event", [EventCode.DELIVERY_OUTCOME, EventCode.RECEIPT])
@pytest.mark.parametrize("code", list(ResponseCode))
@pytest.mark.parametrize("diagnostics", [None, "HTTP 503 from Treserva"])
def test_response_messages_are_valid_fhir_serialised_as_the_model_does(
    event: EventCode, code: ResponseCode, diagnostics: str | None
) -> None:
    """Control messages are built without the FHIR models (envelope.response_message): every
    shape they take validates against them and serialises as they would."""
    bundle = response_message(
        request_message_id=str(uuid.uuid4()),
        event=event,
        responder=System.TRESERVA,
        code=code,
        diagnostics=diagnostics,
        response_id=str(uuid.uuid4()),
        now=NOW,
    )
    sent = json.loads(to_json(bundle))
    validated = Bundle.model_validate(sent)  # raises if it is not valid FHIR R4B
    assert sent == json.loads(validated.model_dump_json(exclude_none=True))


def test_nulls_are_left_out_and_a_plain_bundle_uses_the_model() -> None:
    document = {
        "resourceType": "Bundle",
        "id": "b1",
        "type": "message",
        "timestamp": fhir_instant(NOW),
        "identifier": None,
    }
    assert "identifier" not in json.loads(to_json(validated_message(dict(document))))
    plain = Bundle.model_validate({k: v for k, v in document.items() if v is not None})
    assert not isinstance(plain, FhirMessage)
    assert json.loads(to_json(plain)) == json.loads(plain.model_dump_json(exclude_none=True))


def test_an_invalid_document_is_refused_as_before() -> None:
    with pytest.raises(ValueError):
        validated_message({"resourceType": "Bundle", "type": "message", "timestamp": "soon"})


def test_instants_are_written_as_the_models_write_them() -> None:
    for at in (NOW, NOW + timedelta(microseconds=5), NOW.astimezone(timezone(timedelta(hours=1)))):
        bundle = Bundle.model_validate(
            {"resourceType": "Bundle", "type": "message", "timestamp": at}
        )
        assert fhir_instant(at) == json.loads(bundle.model_dump_json())["timestamp"]
