"""A receipt's evidence (kvittens): the receiving journal's own record id and time are kept
from the native receipt, carried by the control message and stored on the delivery, on the
router's batch path and its one-by-one path. A receipt without them (an adapter from before)
still confirms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from services.adapter_takecare.families.receipt import parse_receipt as takecare_receipt
from services.adapter_treserva.families.receipt import parse_receipt as treserva_receipt
from services.messaging.envelope import (
    EventCode,
    ReceiverEvidence,
    ResponseCode,
    System,
    read_envelope,
    to_json,
)
from services.messaging.receipts import Receipt, to_response
from services.router.routing.deliveries import apply_result
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from tests.support.router import Clock, inbound, message_id, result, routing_rules, started

MID = "f17ef11a-5acf-5382-a6cb-f9f0af5b8493"
CET = timezone(timedelta(hours=1))
AT = datetime(2026, 11, 20, 9, 13, 1, 250000, tzinfo=CET)


def test_treserva_receipt_keeps_its_record_id_and_time():
    found = treserva_receipt(
        {
            "kvittensId": "KV-1",
            "meddelandeId": MID,
            "treservaId": "TRS-1001",
            "status": "registrerad",
            "tidpunkt": "2026-11-20T09:13:01.250+01:00",
        }
    )
    assert (found.record_id, found.recorded_at) == ("TRS-1001", AT)
    bare = treserva_receipt(
        {
            "kvittensId": "KV-2",
            "meddelandeId": MID,
            "status": "registrerad",
            "tidpunkt": "2026-11-20T09:13:01.250+01:00",
            "treservaId": "",
        }
    )
    assert bare.record_id is None  # an empty id is no evidence


def test_takecare_receipt_keeps_its_record_id_and_time():
    found = takecare_receipt(
        {
            "receiptId": "R-1",
            "messageId": MID,
            "recordId": "TC-4711",
            "status": "registered",
            "at": "2026-11-20T09:13:01.250+01:00",
        }
    )
    assert (found.record_id, found.recorded_at) == ("TC-4711", AT)


def test_the_evidence_travels_in_the_control_message_as_valid_fhir():
    receipt = Receipt("KV-1", MID, rejected=False, reason=None, record_id="TRS-1", recorded_at=AT)
    text = to_json(to_response(receipt, responder=System.TRESERVA, now=AT))
    Bundle.model_validate(json.loads(text))  # raises if it is not valid FHIR R4B
    env = read_envelope(text)
    assert env.evidence == ReceiverEvidence("TRS-1", AT)
    assert env.outcome_text is None  # a pushed receipt has no OperationOutcome


def test_an_older_receipt_without_evidence_is_read_as_before():
    old = Receipt("KV-1", MID, rejected=False, reason=None)
    env = read_envelope(to_json(to_response(old, responder=System.TRESERVA, now=AT)))
    assert env.evidence == ReceiverEvidence() and not env.evidence
    assert env.response_code is ResponseCode.OK


def test_unreadable_evidence_is_left_out_never_a_refusal():
    receipt = Receipt("KV-1", MID, rejected=False, reason=None, record_id="TRS-1", recorded_at=AT)
    doc = json.loads(to_json(to_response(receipt, responder=System.TRESERVA, now=AT)))
    doc["entry"][0]["resource"]["response"]["extension"][1]["valueInstant"] = "yesterday"
    env = read_envelope(json.dumps(doc))
    assert env.evidence == ReceiverEvidence("TRS-1", None)


async def routed(sessions, clock):
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=clock))
    record = inbound(1, patient=f"{1:032x}")
    await router.handle_batch([record])
    return router, message_id(record)


async def treserva_row(sessions, mid):
    async with sessions() as s:
        return (
            await s.execute(
                select(delivery).where(
                    delivery.c.message_id == mid, delivery.c.destination == "treserva"
                )
            )
        ).one()


def receipt_record(mid, evidence=None):
    return result(
        mid, ResponseCode.OK, event=EventCode.RECEIPT, responder=System.TRESERVA, evidence=evidence
    )


async def test_the_batch_path_stores_the_receivers_record_id_and_time(sessions):
    router, mid = await routed(sessions, Clock())
    await router.handle_batch([receipt_record(mid, ReceiverEvidence("TRS-9", AT))])
    row = await treserva_row(sessions, mid)
    assert row.state == "confirmed"
    assert row.receiver_record_id == "TRS-9"
    assert row.receiver_recorded_at == AT.astimezone(UTC)


async def test_the_one_by_one_path_stores_them_too(sessions):
    clock = Clock()
    _router, mid = await routed(sessions, clock)
    record = receipt_record(mid, ReceiverEvidence("TRS-10", AT))
    async with sessions.begin() as s:
        await apply_result(s, read_envelope(record.value), record, routing_rules(), clock.now)
    row = await treserva_row(sessions, mid)
    assert (row.state, row.receiver_record_id) == ("confirmed", "TRS-10")
    assert row.receiver_recorded_at == AT.astimezone(UTC)


async def test_a_receipt_without_evidence_still_confirms(sessions):
    router, mid = await routed(sessions, Clock())
    await router.handle_batch([receipt_record(mid)])
    row = await treserva_row(sessions, mid)
    assert row.state == "confirmed" and row.confirmed_at is not None
    assert (row.receiver_record_id, row.receiver_recorded_at) == (None, None)


async def test_a_later_receipt_fills_in_missing_evidence_and_never_overwrites_it(sessions):
    """Mode "both": whichever comes first confirms; the evidence the first lacked comes from
    the second, in the same batch or a later one, and a third changes nothing."""
    router, mid = await routed(sessions, Clock())
    await router.handle_batch(
        [receipt_record(mid), receipt_record(mid, ReceiverEvidence(None, AT))]
    )
    row = await treserva_row(sessions, mid)
    assert row.state == "confirmed"
    assert (row.receiver_record_id, row.receiver_recorded_at) == (None, AT.astimezone(UTC))
    await router.handle_batch([receipt_record(mid, ReceiverEvidence("TRS-5", AT + timedelta(1)))])
    row = await treserva_row(sessions, mid)
    assert (row.receiver_record_id, row.receiver_recorded_at) == ("TRS-5", AT.astimezone(UTC))


async def test_the_one_by_one_path_fills_in_late_evidence_too(sessions):
    clock = Clock()
    router, mid = await routed(sessions, clock)
    await router.handle_batch([receipt_record(mid)])
    record = receipt_record(mid, ReceiverEvidence("TRS-6", AT))
    async with sessions.begin() as s:
        await apply_result(s, read_envelope(record.value), record, routing_rules(), clock.now)
    row = await treserva_row(sessions, mid)
    assert (row.receiver_record_id, row.receiver_recorded_at) == ("TRS-6", AT.astimezone(UTC))
