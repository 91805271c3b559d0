"""The statement budget: how many SQL statements the router sends per delivery, per outcome
and per receipt, counted on the engine while it handles Kafka batches of the size a quiet
and a busy hour bring, and each adapter per event taken in and per delivery command. Every
statement is a round trip (and on PostgreSQL a network one), so this is what the batched
pipeline (issue 18) brings down; the test fails when a change sends more than the budget,
on either backend.

An ``executemany`` counts once: it is one call from the router, however the driver carries
it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sandbox.contracts_cli import FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.families.admission_notice import INBOUND
from services.adapter_takecare.primary_care import destination
from services.messaging import topics
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import EventCode, ResponseCode, System
from services.messaging.intake import accept_event
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.intake_tables import intake_record
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import IncomingRecord
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from tests.support.router import T0, Clock, inbound, message_id, result, routing_rules, started

BATCH = 20

# Statements per delivery (an admission notice has two: Treserva and primary care) while a
# batch is accepted and dispatched, per outcome and per receipt; a Kafka batch of one
# admission notice (a quiet hour) and of 20 (a busy one). Before the batched pipeline they
# were 8.1, 6.1 and 5.1 at any batch size (SQLite); set-based, a batch costs about the same
# number of statements whatever its size: 15, 11 and 9 (BEGIN included).
BUDGETS = {  # batch size: (per delivery, per outcome, per receipt)
    1: (8.0, 6.0, 5.0),
    20: (0.5, 0.35, 0.3),
}


@contextlib.contextmanager
def counted(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements sent on ``engine`` inside the block (their SQL, for the message)."""
    sent: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        sent.append(statement.split("\n", 1)[0][:120])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


def _spent(sent: list[str], per: int) -> str:
    return f"{len(sent)} statements for {per}: " + "; ".join(sent)


@pytest.mark.parametrize("batch", sorted(BUDGETS))
async def test_the_router_stays_within_its_statement_budget(engine, sessions, batch):
    per_delivery, per_outcome, per_receipt = BUDGETS[batch]
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=Clock()))
    records = [inbound(i, patient=f"{i:032x}") for i in range(batch)]
    await router.tick()  # a running router has read its clock (a process's first reading
    # is checked against the clock anchor once: services.router.routing.clock_jumps)

    with counted(engine) as sent:
        await router.handle_batch(records)
    async with sessions() as s:
        deliveries = int(await s.scalar(select(func.count()).select_from(delivery)) or 0)
        dispatched = await s.scalar(
            select(func.count()).select_from(delivery).where(delivery.c.state == "dispatched")
        )
    assert deliveries == dispatched == 2 * batch  # Treserva and primary care, all sent
    assert len(sent) / deliveries <= per_delivery, _spent(sent, deliveries)

    outcomes = [
        result(message_id(r), ResponseCode.OK, responder=who)
        for r in records
        for who in (System.TRESERVA, System.PRIMARY_CARE)
    ]
    with counted(engine) as sent:
        await router.handle_batch(outcomes)
    assert len(sent) / len(outcomes) <= per_outcome, _spent(sent, len(outcomes))

    receipts = [
        result(message_id(r), ResponseCode.OK, responder=who, event=EventCode.RECEIPT)
        for r in records
        for who in (System.TRESERVA, System.PRIMARY_CARE)
    ]
    with counted(engine) as sent:
        await router.handle_batch(receipts)
    assert len(sent) / len(receipts) <= per_receipt, _spent(sent, len(receipts))
    async with sessions() as s:
        confirmed = await s.scalar(
            select(func.count()).select_from(delivery).where(delivery.c.state == "confirmed")
        )
    assert confirmed == deliveries


# --- the adapters: an event taken in, a delivery command carried out --------------------------

# Measured at 35370f4 (SQLite, BEGIN counted): 5 per event and 6 per command, each intake
# and each command its own transactions. Group-committed (services.messaging.intake_group),
# an event alone costs 4 (BEGIN, the duplicate check, the intake record, the outbox row: the
# check moved into the write transaction), and 20 events POSTed at the same time share one
# transaction of the same 4 statements: 0.2 per event (3 and 0.15 on PostgreSQL, where BEGIN
# is not a statement). Consent withdrawal (services.messaging.withdrawals) added one SELECT
# per transaction, of the withdrawn stays among the group's: 5 alone, 0.25 per event in 20.
INTAKE_BUDGETS = {  # events POSTed at the same time: statements per event
    1: 5.0,
    20: 0.25,
}
# per command: a read-only check before the POST and, after it, one transaction that checks
# again, records the command as processed and stages the outcome
DELIVERY_BUDGET = 6


@pytest.mark.parametrize("concurrent", sorted(INTAKE_BUDGETS))
async def test_an_adapter_takes_an_event_in_within_its_statement_budget(
    engine, sessions, concurrent
):
    store = GroupedIntakeStore(sessions, "adapter_takecare")
    documents = [
        sample_admission(random.Random(i), now=T0, event_id=f"event-{i}") for i in range(BATCH)
    ]
    with counted(engine) as sent:
        for start in range(0, BATCH, concurrent):
            await asyncio.gather(
                *(
                    accept_event(
                        d,
                        INBOUND,
                        store=store,
                        pseudonym_key="k" * 32,
                        now=T0,
                        regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
                    )
                    for d in documents[start : start + concurrent]
                )
            )
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(intake_record)) == BATCH
    assert len(sent) / BATCH <= INTAKE_BUDGETS[concurrent], _spent(sent, BATCH)


async def test_an_adapter_carries_out_a_delivery_within_its_statement_budget(engine, sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: T0, destination=destination("tc")
    )
    commands = []
    for i in range(BATCH):
        bundle = json.loads(inbound(i, patient=f"{i:032x}").value)
        headers = {
            "message-id": bundle["entry"][0]["resource"]["id"],
            "attempt": "1",
            "delivery-id": str(i),
        }
        commands.append(
            IncomingRecord(
                topics.outbound("primary-care"),
                0,
                i,
                f"{i:032x}",
                json.dumps(bundle).encode(),
                headers,
            )
        )
    with counted(engine) as sent:
        await handle_delivery_batch(commands, deps=deps)
    assert len(client.calls) == BATCH
    assert len(sent) / BATCH <= DELIVERY_BUDGET, _spent(sent, BATCH)
