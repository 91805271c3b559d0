"""Issue 21, messaging details: the MessageHeader's fullUrl is ``urn:uuid:<its id>`` (and so
is any entry's whose resource has an id), ``Bundle.id`` names one send and never the message,
and the readers take the message id from the MessageHeader."""

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.contracts_cli import FIXTURE_REGIONAL_RESERVE_OID
from services.adapter_takecare.families.admission_notice import INBOUND
from services.messaging.envelope import (
    BUSINESS_KEY_SYSTEM,
    BusinessKey,
    EventCode,
    ResponseCode,
    System,
    message_id_for,
    message_id_of,
    placeholder_bundle_id,
    read_envelope,
    response_message,
    sent_as,
    to_json,
)
from services.messaging.fhir_parts import TranslationError, message_bundle, message_id_in, refs
from services.messaging.intake import FakeIntakeStore, accept_event
from services.messaging.supersession import mark_superseded, superseded_by
from services.messaging.vocabulary import SUPERSEDED_BY_URL, SUPERSEDED_TAG_SYSTEM, URI_SYSTEM

GOLDENS = sorted(Path("contracts/fixtures").rglob("*.fhir.json"))
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
KEY = BusinessKey("takecare", "tc-identity-1", 1)


def test_there_are_goldens_to_check():
    assert len(GOLDENS) >= 60


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: str(p.relative_to("contracts/fixtures")))
def test_every_golden_entry_with_an_id_has_it_as_its_fullurl(path):
    bundle = json.loads(path.read_text(encoding="utf-8"))
    header = bundle["entry"][0]
    assert header["resource"]["resourceType"] == "MessageHeader"
    assert header["fullUrl"] == f"urn:uuid:{header['resource']['id']}"
    for entry in bundle["entry"]:
        own = entry["resource"].get("id")
        if own is not None:
            assert entry["fullUrl"] == f"urn:uuid:{own}", entry["resource"]["resourceType"]
        assert entry["fullUrl"].startswith("urn:uuid:")
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: str(p.relative_to("contracts/fixtures")))
def test_a_golden_bundle_id_is_the_placeholder_never_the_message_id(path):
    bundle = json.loads(path.read_text(encoding="utf-8"))
    message_id = bundle["entry"][0]["resource"]["id"]
    assert bundle["id"] == placeholder_bundle_id(message_id) != message_id
    assert read_envelope(path.read_bytes()).message_id == message_id
    if "identifier" in bundle:  # the business key stays on the message
        key = BusinessKey.parse(bundle["identifier"]["value"])
        assert bundle["identifier"]["system"] == BUSINESS_KEY_SYSTEM
        assert message_id_for(key) == message_id


def _message(resources):
    return message_bundle(
        key=KEY,
        event=EventCode.ADMINISTRATIVE_MESSAGE,
        source=System.TAKECARE,
        now=NOW,
        focus=["communication"],
        resources=resources,
    )


def test_the_builder_refuses_a_resource_whose_id_disagrees_with_its_fullurl():
    own = {"resourceType": "Communication", "status": "completed", "id": "not-its-fullurl"}
    with pytest.raises(TranslationError, match="fullUrl must be urn:uuid"):
        _message([("communication", own)])


def test_the_builder_points_references_at_the_header_by_its_id():
    bundle = json.loads(to_json(_message([("communication", _communication())])))
    message_id = message_id_for(KEY)
    assert refs(KEY)("header") == f"urn:uuid:{message_id}" == bundle["entry"][0]["fullUrl"]
    assert bundle["entry"][1]["fullUrl"] == refs(KEY)("communication")
    assert message_id_in(bundle) == message_id != bundle["id"]


def test_a_response_message_follows_the_same_rule():
    response = json.loads(
        to_json(
            response_message(
                request_message_id=message_id_for(KEY),
                event=EventCode.RECEIPT,
                responder=System.TRESERVA,
                code=ResponseCode.FATAL_ERROR,
                diagnostics="brukare saknas",
                response_id="5d0c6f53-6f71-4f0e-9b5b-0d3c9f7e2a11",
                now=NOW,
            )
        )
    )
    header = response["entry"][0]
    assert header["fullUrl"] == "urn:uuid:5d0c6f53-6f71-4f0e-9b5b-0d3c9f7e2a11"
    assert response["id"] == placeholder_bundle_id(header["resource"]["id"])
    assert read_envelope(json.dumps(response)).message_id == header["resource"]["id"]


def test_sending_stamps_the_bundle_id_and_leaves_the_message_as_it_was():
    bundle = _message([("communication", _communication())])
    before = to_json(bundle)
    first, second = (json.loads(sent_as(bundle, i)) for i in ("send-1", "send-2"))
    assert (first["id"], second["id"]) == ("send-1", "send-2")
    assert {message_id_in(first), message_id_in(second)} == {message_id_of(bundle)}
    assert (
        first["identifier"]
        == second["identifier"]
        == {
            "system": BUSINESS_KEY_SYSTEM,
            "value": str(KEY),
        }
    )
    assert {**first, "id": None} == {**json.loads(before), "id": None}
    assert to_json(bundle) == before


def test_the_envelope_reads_the_message_id_from_the_header_not_bundle_id():
    sent = json.loads(sent_as(_message([("communication", _communication())]), "a-send"))
    assert read_envelope(json.dumps(sent)).message_id == message_id_for(KEY)


ADMISSION = Path("contracts/fixtures/takecare/admission-notice/personnummer-full.input.json")


@pytest.fixture
def admission():
    return json.loads(ADMISSION.read_text(encoding="utf-8"))


async def test_each_intake_publication_is_a_send_with_its_own_bundle_id(admission):
    store = FakeIntakeStore()
    sends = itertools.count(1)
    for n in (1, 2):
        document = dict(admission)
        document["eventId"] = f"tc-identity-{n}"
        accepted = await accept_event(
            document,
            INBOUND,
            store=store,
            pseudonym_key="k" * 32,
            now=NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            bundle_ids=lambda: f"publication-{next(sends)}",
        )
        record = store.outbox[-1]
        value = json.loads(record.value)
        assert value["id"] == f"publication-{n}"
        assert record.headers["message-id"] == accepted.message_id == message_id_in(value)
        assert read_envelope(record.value).message_id == accepted.message_id


def test_a_superseded_mark_is_an_extension_and_no_display_names_an_id():
    bundle = json.loads(to_json(_message([("communication", _communication())])))
    newer = "0b0e6bd8-4d4e-5c3a-9a7e-000000000002"
    mark_superseded(bundle, newer)
    mark_superseded(bundle, newer)  # marking twice marks once
    assert bundle["meta"]["tag"] == [{"system": SUPERSEDED_TAG_SYSTEM, "code": "superseded"}]
    assert bundle["entry"][0]["resource"]["extension"] == [
        {
            "url": SUPERSEDED_BY_URL,
            "valueIdentifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{newer}"},
        }
    ]
    assert superseded_by(bundle) == newer
    assert newer not in json.dumps(list(_displays(bundle)))
    assert (
        superseded_by(json.loads(to_json(_message([("communication", _communication())])))) is None
    )


def _displays(node):
    if isinstance(node, dict):
        if isinstance(node.get("display"), str):
            yield node["display"]
        for value in node.values():
            yield from _displays(value)
    elif isinstance(node, list):
        for value in node:
            yield from _displays(value)


def _communication():
    return {"resourceType": "Communication", "status": "completed"}
