"""Code and contracts must not drift apart: schemas, fixtures, AsyncAPI and OpenAPI."""

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import yaml
from jsonschema import Draft202012Validator

from sandbox import contracts_cli
from sandbox.contracts_cli import check_fixtures, check_openapi, check_schemas, contract_names
from services.messaging import topics
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.envelope import EventCode
from services.messaging.kafka import IncomingRecord
from services.messaging.kafka_acls import service_acls
from services.messaging.quarantine import QuarantineNotice
from services.router.routing.deliveries import delivery_event
from services.router.routing.domain import DeliveryState


def _asyncapi():
    return yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))


def test_asyncapi_documents_exactly_the_topics_in_code():
    doc = _asyncapi()
    assert doc["asyncapi"].startswith("3.")
    documented = {channel["address"] for channel in doc["channels"].values()}
    assert documented == set(topics.all_topics())


def test_asyncapi_tags_exactly_the_public_topics_as_public():
    tags = {
        channel["address"]: {t["name"] for t in channel.get("tags", [])}
        for channel in _asyncapi()["channels"].values()
    }
    assert {address for address, names in tags.items() if "public" in names} == set(topics.PUBLIC)
    assert all(names in ({"public"}, {"internal"}) for names in tags.values()), tags


def test_asyncapi_states_each_topics_audience_as_the_acl_table_grants_it():
    acls = service_acls()
    for channel in _asyncapi()["channels"].values():
        address, audience = channel["address"], channel["x-audience"]

        def holders(operation: str, address: str = address) -> set[str]:
            return {
                b.principal.removeprefix("User:")
                for b in acls
                if b.resource_type == "topic" and b.name == address and b.operation == operation
            }

        assert set(audience["write"]) == holders("Write"), address
        readers = {r for r in audience["read"] if not r.startswith("any reader")}
        assert readers == holders("Read"), address
        public = address in topics.PUBLIC
        assert public == any(r.startswith("any reader") for r in audience["read"]), address


def test_the_public_topic_carries_no_patient_data():
    row = SimpleNamespace(
        message_id="f17ef11a-5acf-5382-a6cb-f9f0af5b8493",
        destination="treserva",
        event_code="admission-notice",
        pseudonym="0123456789abcdef0123456789abcdef",
        payload=b"sealed",
    )
    record = delivery_event(row, DeliveryState.CONFIRMED, datetime(2026, 12, 6, tzinfo=UTC))
    value = json.loads(record.value)
    doc = _asyncapi()
    schema = doc["components"]["messages"]["deliveryEvent"]["payload"]
    properties = {**schema["properties"], "family": doc["components"]["schemas"]["EventCode"]}
    Draft202012Validator({**schema, "properties": properties}).validate(value)
    assert record.topic == topics.EVENTS and record.key == row.message_id
    assert set(value) == {"type", "messageId", "family", "destination", "state", "at"}
    assert row.pseudonym not in record.value and "sealed" not in record.value


def test_the_quarantine_notice_is_as_documented_and_carries_no_patient_data():
    notice = QuarantineNotice.of(
        IncomingRecord(
            topics.outbound("treserva"),
            2,
            17,
            "0123456789abcdef0123456789abcdef",
            b"{}",
            {"message-id": "m-1"},
            untrusted="UnknownSigningKey: no trusted key 'k' of signer 'x'",
        )
    ).to_record(quarantined_by="adapter_treserva")
    message = _asyncapi()["components"]["messages"]["quarantineNotice"]
    Draft202012Validator(message["payload"]).validate(json.loads(notice.value))
    Draft202012Validator(message["headers"]).validate(notice.headers)
    assert notice.topic == topics.RESULTS and notice.key == f"{topics.outbound('treserva')}/2/17"
    assert "0123456789abcdef" not in notice.value and "m-1" not in notice.value


def test_asyncapi_documents_every_event_code():
    text = (CONTRACTS_DIR / "asyncapi.yaml").read_text(encoding="utf-8")
    enum = _asyncapi()["components"]["schemas"]["EventCode"]["enum"]
    assert set(enum) == {code.value for code in EventCode}
    assert all(code.value in text for code in EventCode)


def test_every_schema_is_valid_draft_2020_12_and_there_are_enough():
    results = check_schemas()
    assert [r for r in results if r.status != "ok"] == []
    assert len(contract_names()) >= 8


def test_every_fixture_matches_its_golden_output():
    results = check_fixtures()
    assert [(r.subject, r.check, r.status) for r in results if r.status != "ok"] == []
    files = list((CONTRACTS_DIR / "fixtures").rglob("*.json"))
    assert len(files) >= 40


def test_checked_in_openapi_matches_every_app():
    assert [(r.subject, r.status) for r in check_openapi() if r.status != "ok"] == []


def test_a_changed_golden_is_reported(tmp_path, monkeypatch):
    """The drift check can fail: copy one fixture, spoil its golden, and look."""
    source = next(
        (CONTRACTS_DIR / "fixtures" / "takecare" / "admission-notice").glob("*.input.json")
    )
    target = tmp_path / "takecare" / "admission-notice"
    target.mkdir(parents=True)
    (target / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    golden = json.loads(source.with_name(source.name.replace(".input", ".fhir")).read_text())
    golden["timestamp"] = "1999-01-01T00:00:00Z"
    (target / source.name.replace(".input", ".fhir")).write_text(json.dumps(golden))
    monkeypatch.setattr(contracts_cli, "FIXTURES", tmp_path)
    statuses = {r.check: r.status for r in check_fixtures()}
    assert statuses[source.name.replace(".input", ".fhir")] == "DIFFERS"
    assert statuses[source.name.replace(".input", ".treserva")] == "MISSING"


@pytest.mark.parametrize(
    ("contract", "change", "expected"),
    [
        (
            "takecare/admission-notice",
            {"patient": {"personalIdentityNumber": "191212121213"}},
            ("patient.personalIdentityNumber", "identifier"),
        ),
        ("takecare/admission-notice", {"admissionReason": None}, ("admissionReason", "type")),
        ("treserva/receipt", {"status": "kanske"}, ("status", "enum")),
    ],
)
def test_validate_names_the_field_and_rule(tmp_path, capsys, contract, change, expected):
    if contract.startswith("takecare"):
        doc = json.loads(
            (
                CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.input.json"
            ).read_text(encoding="utf-8")
        )
    else:
        doc = {
            "kvittensId": "KV-1",
            "meddelandeId": "6f1d3c52-2b7e-5c1a-9a43-0c9b1f6e8d21",
            "status": "registrerad",
            "tidpunkt": "2026-11-20T09:00:00+01:00",
        }
    for key, value in change.items():
        if isinstance(value, dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert contracts_cli.main(["validate", contract, str(path)]) == 1
    out = capsys.readouterr().out
    field, rule = expected
    assert f"{field}: [{rule}]" in out


def test_validate_accepts_a_valid_document(capsys):
    path = CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.input.json"
    argv = ["validate", "takecare/admission-notice", str(path), "--native-only"]
    assert contracts_cli.main(argv) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_reports_schema_and_check_digit_problems_together(tmp_path, capsys):
    doc = json.loads(
        (
            CONTRACTS_DIR / "fixtures/takecare/admission-notice/personnummer-full.input.json"
        ).read_text(encoding="utf-8")
    )
    doc["patient"]["personalIdentityNumber"] = "191212121213"
    del doc["admissionReason"]
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert contracts_cli.main(["validate", "takecare/admission-notice", str(path)]) == 1
    out = capsys.readouterr().out
    assert "admissionReason: [required]" in out
    assert "patient.personalIdentityNumber: [identifier]" in out
