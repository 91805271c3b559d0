"""adapter_treserva: admission translation, the journal client's error classes, delivery
handling (the shared delivery service with Treserva as destination) and receipts."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sandbox.contracts_cli import golden_path, render
from services.adapter_treserva.app import create_app
from services.adapter_treserva.families.admission_notice import to_native
from services.adapter_treserva.service import DESTINATION
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import topics
from services.messaging.contracts import violations
from services.messaging.db import store_keyring
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import read_envelope
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore
from services.messaging.journal_client import (
    FakeJournalClient,
    FatalDeliveryError,
    HttpJournalClient,
    TransientDeliveryError,
)
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import open_value, outbox
from services.messaging.tracing import parse as parse_traceparent
from tests.support.translation import _translate
from tests.support.treserva import FIXTURES, NOW, fhir


def to_treserva_notice(bundle):
    return to_native(bundle)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_translation_matches_golden_and_the_treserva_contract(path):
    bundle = _translate(json.loads(path.read_text(encoding="utf-8")))
    notice = to_treserva_notice(bundle)
    assert violations("treserva/admission-notice.schema.json", notice) == []
    assert render(notice) == golden_path(path, "treserva").read_text(encoding="utf-8")


def test_protected_identity_has_no_address_and_coordination_numbers_are_flagged():
    protected = to_treserva_notice(fhir("protected-identity.input.json"))
    assert protected["brukare"]["skyddadIdentitet"] is True
    assert "folkbokforingsadress" not in protected["brukare"]
    samordning = to_treserva_notice(fhir("samordningsnummer-optional-missing.input.json"))
    assert samordning["brukare"]["samordningsnummer"] is True
    assert samordning["beraknadUtskrivning"] is None and samordning["boendesituation"] is None


def test_a_message_without_patient_is_a_translation_error():
    doc = fhir("personnummer-full.input.json")
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] != "Patient"]
    with pytest.raises(TranslationError):
        to_treserva_notice(doc)


def _client(handler):
    return HttpJournalClient("http://treserva", "tok", 5.0, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (202, None),
        (200, None),
        (201, None),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (429, TransientDeliveryError),
        (408, TransientDeliveryError),
        (400, FatalDeliveryError),
        (401, FatalDeliveryError),
        (422, FatalDeliveryError),
    ],
)
async def test_client_classifies_answers(status, expected):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(status, json={"recordId": "TRS-1"})

    client = _client(handler)
    if expected is None:
        receipt = await client.post("/api/v1/x", {"a": 1}, idempotency_key="m-1")
        assert receipt.http_status == status and receipt.record_id == "TRS-1"
    else:
        with pytest.raises(expected) as err:
            await client.post("/api/v1/x", {"a": 1}, idempotency_key="m-1")
        assert err.value.http_status == status
    assert seen[0].headers["idempotency-key"] == "m-1" and seen[0].url.path == "/api/v1/x"
    assert seen[0].headers["authorization"] == "Bearer tok"
    await client.aclose()


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_connection_failures_are_transient(exc):
    def handler(request):
        raise exc

    client = _client(handler)
    with pytest.raises(TransientDeliveryError):
        await client.post("/api/v1/x", {}, idempotency_key="m")
    await client.aclose()


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def command(bundle: dict[str, Any], *, attempt=1, key="p" * 32, offset=0):
    return IncomingRecord(
        topics.outbound("treserva"),
        0,
        offset,
        key,
        json.dumps(bundle).encode(),
        {
            "message-id": bundle["entry"][0]["resource"].get("id", ""),
            "attempt": str(attempt),
            "delivery-id": "7",
            "event": "admission-notice",
            "traceparent": TRACEPARENT,
        },
    )


async def results(sessions):
    async with sessions() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.id))).all()
        ring = store_keyring(s)
    return [(r, read_envelope(open_value(ring, r, r.owner))) for r in rows]


@pytest.fixture
def deps(sessions):
    return DeliveryDeps(
        sessions=sessions, client=FakeJournalClient(), clock=lambda: NOW, destination=DESTINATION
    )


async def test_a_delivery_posts_once_and_reports_ok(deps, sessions):
    bundle = fhir("personnummer-full.input.json")
    await handle_delivery_batch([command(bundle)], deps=deps)
    await handle_delivery_batch([command(bundle)], deps=deps)  # Kafka redelivery
    assert len(deps.client.calls) == 1
    path, key, document = deps.client.calls[0]
    assert (path, key) == ("/api/v1/inskrivningsmeddelanden", bundle["entry"][0]["resource"]["id"])
    assert violations("treserva/admission-notice.schema.json", document) == []
    ((row, env),) = await results(sessions)
    assert row.topic == topics.RESULTS and row.key == bundle["entry"][0]["resource"]["id"]
    headers = dict(row.headers)
    hop = parse_traceparent(headers.pop("traceparent"))
    assert hop is not None and hop.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # same trace
    assert hop.span_id != "00f067aa0ba902b7"  # a new span for this hop
    assert headers == {
        "message-id": bundle["entry"][0]["resource"]["id"],
        "attempt": "1",
        "delivery-id": "7",
    }
    assert (env.event_code, env.response_to, env.response_code) == (
        "delivery-outcome",
        bundle["entry"][0]["resource"]["id"],
        "ok",
    )
    assert "Tolvan" not in row.payload and "19121212" not in row.payload


async def test_transient_and_fatal_failures_are_reported_as_such(deps, sessions):
    bundle = fhir("personnummer-full.input.json")
    deps.client.fail_with = [
        TransientDeliveryError("HTTP 503", http_status=503),
        FatalDeliveryError("HTTP 422", http_status=422),
    ]
    await handle_delivery_batch([command(bundle, attempt=1)], deps=deps)
    await handle_delivery_batch([command(bundle, attempt=2)], deps=deps)
    codes = [(env.response_code, env.outcome_text) for _, env in await results(sessions)]
    assert codes == [("transient-error", "HTTP 503"), ("fatal-error", "HTTP 422")]


async def test_garbage_never_crashes_the_consumer(deps, sessions):
    bad = IncomingRecord(
        topics.outbound("treserva"),
        0,
        1,
        "k",
        b"\x00not json",
        {"message-id": "11111111-1111-1111-1111-111111111111", "attempt": "1"},
    )
    anonymous = IncomingRecord(topics.outbound("treserva"), 0, 2, "k", b"{}", {})
    await handle_delivery_batch([bad, anonymous], deps=deps)
    ((_, env),) = await results(sessions)
    assert env.response_code == "fatal-error" and deps.client.calls == []


async def test_one_patients_commands_keep_their_order(deps):
    first = fhir("personnummer-full.input.json")
    second = fhir("protected-identity.input.json")
    await handle_delivery_batch([command(first, offset=1), command(second, offset=2)], deps=deps)
    assert [c[1] for c in deps.client.calls] == [
        first["entry"][0]["resource"]["id"],
        second["entry"][0]["resource"]["id"],
    ]


async def test_a_family_the_destination_does_not_take_is_a_fatal_outcome(deps, sessions):
    bundle = fhir("personnummer-full.input.json")
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "delivery-outcome"
    await handle_delivery_batch([command(bundle)], deps=deps)
    ((_, env),) = await results(sessions)
    assert env.response_code == "fatal-error" and deps.client.calls == []
    assert "takes no delivery-outcome" in (env.outcome_text or "")


@pytest.fixture
async def receipts_client(sessions):
    app = create_app(
        AdapterTreservaSettings(), store=FakeIntakeStore(), sessions=sessions, clock=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://a",
        headers={"authorization": "Bearer sandbox-treserva-key"},
    ) as c:
        yield c


def receipt(**overrides):
    return {
        "kvittensId": "KV-1",
        "meddelandeId": "f17ef11a-5acf-5382-a6cb-f9f0af5b8493",
        "treservaId": "TRS-1",
        "status": "registrerad",
        "tidpunkt": "2026-11-20T09:00:01+01:00",
        **overrides,
    }


async def test_a_receipt_becomes_one_ok_response_for_the_router(receipts_client, sessions):
    first = await receipts_client.post("/treserva/v1/kvittenser", json=receipt())
    again = await receipts_client.post("/treserva/v1/kvittenser", json=receipt())
    assert first.status_code == again.status_code == 202
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    ((_row, env),) = await results(sessions)
    assert (env.event_code, env.response_code) == ("receipt", "ok")


async def test_a_refusal_after_acceptance_is_a_fatal_response(receipts_client, sessions):
    res = await receipts_client.post(
        "/treserva/v1/kvittenser",
        json=receipt(kvittensId="KV-2", status="avvisad", orsak="Brukaren saknas i Treserva"),
    )
    assert res.status_code == 202
    ((_, env),) = await results(sessions)
    assert env.response_code == "fatal-error" and "saknas" in (env.outcome_text or "")


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": receipt(), "headers": {"authorization": "Bearer nope"}}, 401),
        ({"content": "x", "headers": {"content-type": "text/plain"}}, 415),
        ({"json": receipt(status="kanske")}, 422),
        ({"json": {**receipt(), "orsak": "x" * 600_000}}, 413),
        ({"json": receipt(status="avvisad")}, 422),  # a refusal must say why
    ],
)
async def test_bad_receipts_are_refused(receipts_client, sessions, kwargs, status):
    res = await receipts_client.post("/treserva/v1/kvittenser", **kwargs)
    assert res.status_code == status
    assert res.json()["resourceType"] == "OperationOutcome"
    assert await results(sessions) == []


async def test_a_superseded_version_is_delivered_marked_and_only_for_versioned_families(sessions):
    from dataclasses import replace

    from services.messaging.envelope import EventCode
    from services.messaging.native import OutboundFamily

    lists = OutboundFamily(
        family="medication-list",
        events=(EventCode.MEDICATION_LIST,),
        path="/api/v1/lakemedelslistor",
        schema="treserva/medication-list.schema.json",
        to_native=lambda doc: {"meddelandeId": doc["entry"][0]["resource"]["id"]},
    )
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions,
        client=client,
        clock=lambda: NOW,
        destination=replace(DESTINATION, families=(lists, *DESTINATION.families)),
    )
    newer = "0b7c2f4e-91d5-5a0e-8d1c-3f2a6b9e4c70"
    versioned = fhir("personnummer-full.input.json")
    versioned["entry"][0]["resource"]["eventCoding"]["code"] = "medication-list"
    plain = fhir("protected-identity.input.json")
    records = [command(versioned, offset=1), command(plain, offset=2, key="q" * 32)]
    for record in records:
        record.headers["superseded-by"] = newer
    await handle_delivery_batch(records, deps=deps)
    by_path = {path: document for path, _, document in client.calls}
    assert by_path["/api/v1/lakemedelslistor"]["ersattAv"] == newer
    assert "ersattAv" not in by_path["/api/v1/inskrivningsmeddelanden"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TransientDeliveryError("timeout"), "transport"),
        (TransientDeliveryError("transport: ConnectError"), "transport"),
        (TransientDeliveryError("HTTP 503", http_status=503), "transport"),
        (TransientDeliveryError("HTTP 429", http_status=429), "transport"),
        (TransientDeliveryError("HTTP 500", http_status=500), "response"),
    ],
)
async def test_a_transient_outcome_says_whether_the_destination_or_the_message_failed(
    deps, sessions, error, kind
):
    """The router's circuit counts a failure of the destination as a whole whoever the
    patient, an error answer to one message once per patient."""
    deps.client.fail_with = [error]
    await handle_delivery_batch([command(fhir("personnummer-full.input.json"))], deps=deps)
    ((row, env),) = await results(sessions)
    assert env.response_code == "transient-error" and row.headers["failure"] == kind


@pytest.fixture
def lakemedelslista():
    path = Path("contracts/fixtures/treserva/medication-list")
    return json.loads((path / "hemsjukvard-samordningsnummer-dst.input.json").read_text("utf-8"))


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
async def test_a_dose_that_is_no_number_is_422_naming_the_field(
    receipts_client, lakemedelslista, value
):
    """Python's json reads NaN and Infinity, and the schema's exclusiveMinimum lets NaN by."""
    doc = lakemedelslista
    doc["rader"][0]["dosering"]["dos"] = {"varde": 1, "enhet": "st"}
    body = json.dumps(doc).replace('"varde": 1,', f'"varde": {value},', 1)
    res = await receipts_client.post(
        "/treserva/v1/lakemedelslistor",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 422
    assert [i["expression"] for i in res.json()["issue"]] == [["rader.0.dosering.dos.varde"]]
