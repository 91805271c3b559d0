"""The router's statement budget: how many SQL statements it sends per delivery, per outcome
and per receipt, counted on the engine while it handles Kafka batches of the size a busy
hour brings. Every statement is a round trip (and on PostgreSQL a network one), so this is
what the batched pipeline (issue 18) brings down; the test fails when a change sends more
than the budget, on either backend.

An ``executemany`` counts once: it is one call from the router, however the driver carries
it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.messaging.envelope import EventCode, ResponseCode, System
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from tests.support.router import Clock, inbound, message_id, result, routing_rules, started

BATCH = 20  # admission notices for 20 patients in one Kafka batch
# Statements per delivery (an admission notice has two: Treserva and primary care) while a
# batch is accepted and dispatched; per outcome; per receipt. Measured before the batched
# pipeline (SQLite): 8.1, 6.1 and 5.1.
BUDGET_PER_DELIVERY = 8.5
BUDGET_PER_OUTCOME = 6.5
BUDGET_PER_RECEIPT = 5.5


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


async def test_the_router_stays_within_its_statement_budget(engine, sessions):
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=Clock()))
    records = [inbound(i, patient=f"{i:032x}") for i in range(BATCH)]

    with counted(engine) as sent:
        await router.handle_batch(records)
    async with sessions() as s:
        deliveries = int(await s.scalar(select(func.count()).select_from(delivery)) or 0)
        dispatched = await s.scalar(
            select(func.count()).select_from(delivery).where(delivery.c.state == "dispatched")
        )
    assert deliveries == dispatched == 2 * BATCH  # Treserva and primary care, all sent
    assert len(sent) / deliveries <= BUDGET_PER_DELIVERY, _spent(sent, deliveries)

    outcomes = [
        result(message_id(r), ResponseCode.OK, responder=who)
        for r in records
        for who in (System.TRESERVA, System.PRIMARY_CARE)
    ]
    with counted(engine) as sent:
        await router.handle_batch(outcomes)
    assert len(sent) / len(outcomes) <= BUDGET_PER_OUTCOME, _spent(sent, len(outcomes))

    receipts = [
        result(message_id(r), ResponseCode.OK, responder=who, event=EventCode.RECEIPT)
        for r in records
        for who in (System.TRESERVA, System.PRIMARY_CARE)
    ]
    with counted(engine) as sent:
        await router.handle_batch(receipts)
    assert len(sent) / len(receipts) <= BUDGET_PER_RECEIPT, _spent(sent, len(receipts))
    async with sessions() as s:
        confirmed = await s.scalar(
            select(func.count()).select_from(delivery).where(delivery.c.state == "confirmed")
        )
    assert confirmed == deliveries
