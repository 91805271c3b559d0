"""One admission through the in-memory Kafka fake, from TakeCare's HTTP intake to Treserva's
delivery and back: every record carries the caller's trace id with a new span per hop, and
the JSON logs of the run name the message, pseudonym and trace but never the patient."""

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.adapter_takecare.app import OWNER as TAKECARE_OWNER
from services.adapter_takecare.app import create_app as takecare_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.service import DESTINATION as TRESERVA
from services.messaging import topics
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import InMemoryBus
from services.messaging.logs import JsonFormatter
from services.messaging.outbox import OutboxRelay
from services.messaging.tracing import parse
from services.router.routing.deliveries import OUTBOX_OWNER, RoutingRules
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from services.router.settings import RouterSettings
from tests.support.router import started

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
FIXTURES = Path("contracts/fixtures/takecare/admission-notice")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
# what the fixture says about the patient, none of which may reach a log line
PATIENT_DATA = (
    "19121212-1212",
    "191212121212",
    "121212-1212",
    "1212121212",
    "Tolvansson",
    "Tolvan",
    "Strandgatan",
    "621 56",
)


def trace_of(record):
    context = parse(record.headers.get("traceparent"))
    assert context is not None, record.headers
    return context


@pytest.fixture
def admission():
    return json.loads((FIXTURES / "personnummer-full.input.json").read_text(encoding="utf-8"))


async def test_a_traceparent_from_the_intake_reaches_every_hop_and_logs_hold_no_patient_data(
    sessions, caplog, admission
):
    caplog.set_level(logging.INFO)
    bus = InMemoryBus()
    app = takecare_app(
        AdapterTakeCareSettings(),
        store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tc"
    ) as client:
        res = await client.post(
            "/takecare/v1/admissions",
            json=admission,
            headers={
                "authorization": "Bearer sandbox-takecare-key",
                "traceparent": f"00-{TRACE}-{CALLER_SPAN}-01",
            },
        )
    assert res.status_code == 202
    message_id = res.json()["messageId"]
    await OutboxRelay(sessions, bus, TAKECARE_OWNER).publish_pending()

    router = await started(
        Router(
            sessions=sessions,
            rules=RoutingRules(
                policies=RouterSettings().policies(),
                attempt_timeout=timedelta(seconds=30),
                rng=random.Random(1),
            ),
            clock=lambda: NOW,
        )
    )
    router_in = bus.consumer([topics.INBOUND, topics.RESULTS], "router")

    async def route_once():
        await router.handle_batch(await router_in.poll(0))
        await router_in.commit()
        await OutboxRelay(sessions, bus, OUTBOX_OWNER).publish_pending()

    await route_once()
    (command,) = bus.topics[topics.outbound("treserva")]
    deps = DeliveryDeps(
        sessions=sessions, client=FakeJournalClient(), clock=lambda: NOW, destination=TRESERVA
    )
    await handle_delivery_batch([command], deps=deps)
    await OutboxRelay(sessions, bus, TRESERVA.owner).publish_pending()
    await route_once()

    (inbound,) = bus.topics[topics.INBOUND]
    (result,) = bus.topics[topics.RESULTS]
    (to_primary_care,) = bus.topics[topics.outbound("primary-care")]
    hops = [trace_of(r) for r in (inbound, command, to_primary_care, result)]
    assert {h.trace_id for h in hops} == {TRACE}
    assert len({h.span_id for h in hops} | {CALLER_SPAN}) == len(hops) + 1  # a span per hop
    assert command.headers["message-id"] == message_id
    async with sessions() as s:
        state = (
            await s.execute(select(delivery.c.state).where(delivery.c.destination == "treserva"))
        ).scalar_one()
    assert state == "sent"  # the result, on the same trace, was applied

    formatter = JsonFormatter("test")
    lines = [formatter.format(r) for r in caplog.records]
    for line in lines:
        for secret in PATIENT_DATA:
            assert secret not in line, line
    by_msg = {json.loads(line)["msg"]: json.loads(line) for line in lines}
    for msg in ("event accepted", "message accepted", "delivery dispatched", "delivery outcome"):
        doc = by_msg[msg]
        assert (doc["message_id"], doc["trace_id"]) == (message_id, TRACE), doc
        assert doc["pseudonym"] == inbound.key, doc


async def test_an_intake_without_a_valid_traceparent_starts_a_trace_of_its_own(sessions, admission):
    app = takecare_app(
        AdapterTakeCareSettings(),
        store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tc"
    ) as client:
        res = await client.post(
            "/takecare/v1/admissions",
            json=admission,
            headers={"authorization": "Bearer sandbox-takecare-key", "traceparent": "garbage"},
        )
    assert res.status_code == 202
    bus = InMemoryBus()
    await OutboxRelay(sessions, bus, TAKECARE_OWNER).publish_pending()
    (inbound,) = bus.topics[topics.INBOUND]
    assert trace_of(inbound).trace_id != TRACE
