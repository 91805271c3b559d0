"""Records nobody can forge: Treserva silently drops an admission notice, and forged
receipts for it are written straight to the results topic: unsigned, signed with the
forger's own key, and signed with adapter_takecare's real key (a compromised adapter may not
answer for another's destination). The receipt changes nothing: it is
quarantined with a critical incident, the delivery stays unconfirmed, and the confirmation
alert and the fallback notice to the receiving unit still come. Runs on Tansu and, with
BROKER_TEST_KAFKA=apache, on Apache Kafka, where the forger holds a stolen adapter
credential (the only kind of principal that may write the results topic)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from sandbox import gotland_demo
from sandbox.gotland_demo import OPS_MAILBOX, Inbox
from sandbox.scenario import Scenario, wait_for
from sandbox.stack import Stack
from services.messaging import topics
from services.messaging.envelope import (
    EventCode,
    ResponseCode,
    System,
    response_message,
    to_json,
)
from services.messaging.record_signing import (
    SIGNATURE_HEADER,
    RecordSigner,
    load_private,
    new_signing_key,
    parse_signing_key,
    sandbox_signing_key,
)
from tests.support.stacks import admission_deadline_s, e2e_settings, running

pytestmark = [pytest.mark.e2e, pytest.mark.security, pytest.mark.alerts, pytest.mark.timeout(240)]


def _receipt(message_id: str) -> bytes:
    response = response_message(
        request_message_id=message_id,
        event=EventCode.RECEIPT,
        responder=System.TRESERVA,
        code=ResponseCode.OK,
        diagnostics=None,
        response_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
    )
    return to_json(response).encode()


async def _write(stack: Stack, records: list[tuple[bytes, dict[str, str]]], key: str) -> None:
    connection = stack.kafka_connection("adapter_takecare")
    producer = AIOKafkaProducer(**connection.producer_options(), acks="all")
    await producer.start()
    try:
        for value, headers in records:
            await producer.send_and_wait(
                topics.RESULTS,
                value,
                key=key.encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
    finally:
        await producer.stop()


@pytest.fixture
def told(tmp_path: Path, stack_db: str | None) -> Iterator[tuple[Scenario, Stack, Inbox]]:
    """A stack whose router sends alert emails and fallback notices to a real SMTP server."""
    smtp, inbox, receiver, _, router_env = gotland_demo.channels(tmp_path)
    try:
        with running(e2e_settings(tmp_path, stack_db, router_env=router_env)) as stack:
            scenario = Scenario(stack, random.Random(7))
            yield scenario, stack, inbox
            scenario.close()
    finally:
        smtp.stop()
        receiver.shutdown()
        receiver.server_close()


def _takecare_key(stack: Stack) -> str:
    """adapter_takecare's signing key in this stack (the sandbox's)."""
    assert stack.settings.adapter_env.get("RECORD_SIGNING_KEY") is None
    return sandbox_signing_key("adapter_takecare")


def test_a_forged_receipt_never_hides_a_dropped_notice(told: tuple[Scenario, Stack, Inbox]) -> None:
    scenario, stack, inbox = told
    scenario.set_treserva_fault("silent-drop")
    message_id, _ = scenario.post_admission()
    scenario.wait_for_state(message_id, "sent", timeout_s=15, destination="treserva")

    unsigned = _receipt(message_id), {"message-id": message_id}
    # signed as adapter_treserva, but with the forger's own key
    forger = RecordSigner("adapter_treserva", "sandbox-1", load_private(new_signing_key()))
    value = _receipt(message_id)
    headers = {"message-id": message_id}
    headers[SIGNATURE_HEADER] = forger.sign(topics.RESULTS, message_id, headers, value)
    # signed with a real key, but by the adapter that does not deliver to Treserva
    insider = RecordSigner("adapter_takecare", *parse_signing_key(_takecare_key(stack)))
    inside_value = _receipt(message_id)
    inside_headers = {"message-id": message_id}
    inside_headers[SIGNATURE_HEADER] = insider.sign(
        topics.RESULTS, message_id, inside_headers, inside_value
    )
    records = [unsigned, (value, headers), (inside_value, inside_headers)]
    asyncio.run(_write(stack, records, message_id))

    incident = scenario.wait_for_alert("untrusted_record", topics.RESULTS, timeout_s=15)
    assert incident["severity"] == "critical"
    overdue = scenario.wait_for_alert(
        "confirmation_overdue", "treserva", timeout_s=admission_deadline_s() + 15
    )
    assert overdue["event_code"] == "admission-notice"
    detail = scenario.message(message_id)
    assert detail is not None
    assert scenario.delivery(detail, "treserva")["state"] != "confirmed"
    fallback = wait_for(
        "the fallback notice to the receiving unit",
        lambda: next((m for m in inbox.mails if OPS_MAILBOX not in str(m.get("To", ""))), None),
        timeout_s=30,
    )
    assert "inskrivningsmeddelande" in str(fallback["Subject"]).lower()
