"""Group commit of the intake (services.messaging.intake_group) on a real database: concurrent
events share one transaction, and each caller still gets the answer it would have had alone
(stored, a repeat, a conflicting resend, or the error of its transaction)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from sandbox.contracts_cli import FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.families.admission_notice import INBOUND
from services.messaging import topics
from services.messaging.envelope import BusinessKey
from services.messaging.intake import (
    Accepted,
    ConflictingResend,
    IntakeEntry,
    accept_event,
    payload_digest,
)
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.intake_tables import intake_record
from services.messaging.kafka import OutgoingRecord
from services.messaging.outbox import outbox
from tests.support.router import T0

OWNER = "adapter_takecare"
PATIENT = "p" * 32


@dataclass
class Sent:
    """What reached the database inside a block: transactions begun and statements sent."""

    transactions: int = 0
    statements: list[str] = field(default_factory=list)


@contextlib.contextmanager
def counted(engine: AsyncEngine) -> Iterator[Sent]:
    sent = Sent()

    def begun(_conn) -> None:  # every backend, whether or not BEGIN is a statement
        sent.transactions += 1

    def executed(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        sent.statements.append(statement.split("\n", 1)[0][:80])

    event.listen(engine.sync_engine, "begin", begun)
    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "begin", begun)
        event.remove(engine.sync_engine, "before_cursor_execute", executed)


def native(
    event_id: str, *, content: str = "first", message_id: str | None = None
) -> tuple[IntakeEntry, OutgoingRecord]:
    """An event as accept_event hands it to the store, each with a message id of its own."""
    mid = message_id or str(uuid.uuid4())
    entry = IntakeEntry(
        message_id=mid,
        key=BusinessKey("takecare", event_id, 1),
        payload_sha256=payload_digest({"event": event_id, "content": content}),
        event_code="admission",
        pseudonym=PATIENT,
        received_at=T0,
    )
    return entry, OutgoingRecord(topics.INBOUND, PATIENT, "{}", {"message-id": mid})


async def record_all(
    store: GroupedIntakeStore, events: list[tuple[IntakeEntry, OutgoingRecord]]
) -> list[Accepted | BaseException]:
    return await asyncio.gather(*(store.record(e, o) for e, o in events), return_exceptions=True)


async def stored(sessions) -> tuple[set[str], list[str]]:
    """The intake records' message ids, and the outbox rows' message ids in id order."""
    async with sessions() as s:
        ids = set((await s.scalars(select(intake_record.c.message_id))).all())
        headers = (await s.scalars(select(outbox.c.headers).order_by(outbox.c.id))).all()
    return ids, [h["message-id"] for h in headers]


async def test_concurrent_intakes_are_each_stored_and_answered_in_one_transaction(engine, sessions):
    store = GroupedIntakeStore(sessions, OWNER)
    documents = [
        sample_admission(random.Random(i), now=T0, event_id=f"event-{i}") for i in range(50)
    ]
    with counted(engine) as sent:
        answers = await asyncio.gather(
            *(
                accept_event(
                    d,
                    INBOUND,
                    store=store,
                    pseudonym_key="k" * 32,
                    now=T0,
                    regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
                )
                for d in documents
            )
        )
    assert not any(a.duplicate for a in answers)
    mids = [a.message_id for a in answers]
    assert len(set(mids)) == 50
    intake_ids, outbox_ids = await stored(sessions)
    assert intake_ids == set(mids) and sorted(outbox_ids) == sorted(mids)
    # one at a time they took 50 duplicate checks and 50 writes: 100 transactions, 250 statements
    assert sent.transactions == 1, sent
    # BEGIN (SQLite), SELECT, SELECT of the withdrawn stays (consent), INSERT, INSERT
    assert len(sent.statements) <= 5, sent


async def test_a_group_takes_at_most_max_group_events(engine, sessions):
    store = GroupedIntakeStore(sessions, OWNER, max_group=8)
    events = [native(f"event-{i}") for i in range(20)]
    with counted(engine) as sent:
        answers = await record_all(store, events)
    assert [a.message_id for a in answers if isinstance(a, Accepted)] == [
        e.message_id for e, _ in events
    ]
    assert sent.transactions == 3  # 8, 8 and 4
    intake_ids, outbox_ids = await stored(sessions)
    assert outbox_ids == [e.message_id for e, _ in events]  # in the order they came
    assert intake_ids == set(outbox_ids)


async def test_a_lone_event_is_written_at_once_and_later_ones_form_the_next_group(engine, sessions):
    store = GroupedIntakeStore(sessions, OWNER)
    late = [native(f"late-{i}") for i in range(3)]
    arrived: list[asyncio.Task[Accepted]] = []

    def arrive_during_the_write(_conn) -> None:
        if not arrived:  # while the first group's transaction is open
            arrived.extend(asyncio.create_task(store.record(e, o)) for e, o in late)

    lone = native("lone")
    with counted(engine) as sent:
        event.listen(engine.sync_engine, "begin", arrive_during_the_write)
        try:
            first = await store.record(*lone)
            answers = await asyncio.gather(*arrived)
        finally:
            event.remove(engine.sync_engine, "begin", arrive_during_the_write)
    assert first == Accepted(lone[0].message_id, duplicate=False)
    assert [a.message_id for a in answers] == [e.message_id for e, _ in late]
    assert sent.transactions == 2  # the lone event alone, then the three that came meanwhile


async def test_repeats_inside_a_group_and_across_groups_get_the_first_message_id(engine, sessions):
    store = GroupedIntakeStore(sessions, OWNER)
    a1, a2, b, a3 = native("a"), native("a"), native("b"), native("a")
    with counted(engine) as sent:
        first = await record_all(store, [a1, a2, b, a3])
    assert sent.transactions == 1  # told apart in the group, not by a failed insert
    assert first == [
        Accepted(a1[0].message_id, duplicate=False),
        Accepted(a1[0].message_id, duplicate=True),
        Accepted(b[0].message_id, duplicate=False),
        Accepted(a1[0].message_id, duplicate=True),
    ]
    b2, c, c2 = native("b"), native("c"), native("c")
    second = await record_all(store, [b2, c, c2])
    assert second == [
        Accepted(b[0].message_id, duplicate=True),
        Accepted(c[0].message_id, duplicate=False),
        Accepted(c[0].message_id, duplicate=True),
    ]
    intake_ids, outbox_ids = await stored(sessions)
    assert outbox_ids == [a1[0].message_id, b[0].message_id, c[0].message_id]
    assert intake_ids == set(outbox_ids)


async def test_a_conflicting_resend_is_refused_to_its_own_caller_only(engine, sessions):
    store = GroupedIntakeStore(sessions, OWNER)
    await store.record(*native("stored"))
    a, changed_a, b, changed_stored = (
        native("a"),
        native("a", content="changed"),
        native("b"),
        native("stored", content="changed"),
    )
    with counted(engine) as sent:
        answers = await record_all(store, [a, changed_a, b, changed_stored])
    assert sent.transactions == 1
    assert answers[0] == Accepted(a[0].message_id, duplicate=False)
    assert isinstance(answers[1], ConflictingResend)
    assert answers[1].message_id == a[0].message_id
    assert answers[2] == Accepted(b[0].message_id, duplicate=False)
    assert isinstance(answers[3], ConflictingResend)
    intake_ids, _ = await stored(sessions)
    assert {a[0].message_id, b[0].message_id} <= intake_ids
    assert changed_a[0].message_id not in intake_ids


class OutboxDown(Exception):
    """The fault injected into the outbox insert."""


async def test_a_failed_group_write_reaches_every_caller_and_stores_nothing(engine, sessions):
    store = GroupedIntakeStore(sessions, OWNER)
    failures = [OutboxDown("outbox insert failed")]

    def fail_the_outbox_insert(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("INSERT INTO outbox") and failures:
            raise failures.pop()

    events = [native("a"), native("b"), native("a"), native("c", content="x")]
    event.listen(engine.sync_engine, "before_cursor_execute", fail_the_outbox_insert)
    try:
        answers = await asyncio.wait_for(record_all(store, events), timeout=10)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fail_the_outbox_insert)
    assert all(isinstance(a, OutboxDown) for a in answers), answers
    assert await stored(sessions) == (set(), [])  # the intake records were rolled back
    again = await record_all(store, events)  # and the store goes on with the next group
    assert [a.duplicate for a in again if isinstance(a, Accepted)] == [False, False, True, False]


async def test_a_group_losing_a_unique_race_is_stored_one_by_one(sessions):
    """IntegrityError in the group: each event is recorded on its own and answered for itself
    (here one event reuses a stored message id, as a writer in another process might)."""
    store = GroupedIntakeStore(sessions, OWNER)
    taken = native("taken")
    await store.record(*taken)
    a, a_again, clash, changed_a = (
        native("a"),
        native("a"),
        native("clash", message_id=taken[0].message_id),
        native("a", content="changed"),
    )
    answers = await record_all(store, [a, a_again, clash, changed_a])
    assert answers[0] == Accepted(a[0].message_id, duplicate=False)
    assert answers[1] == Accepted(a[0].message_id, duplicate=True)
    assert isinstance(answers[2], IntegrityError)
    assert isinstance(answers[3], ConflictingResend)
    intake_ids, outbox_ids = await stored(sessions)
    assert outbox_ids == [taken[0].message_id, a[0].message_id]
    assert intake_ids == set(outbox_ids)


async def test_a_caller_cancelled_before_its_group_is_written_stores_nothing(sessions):
    store = GroupedIntakeStore(sessions, OWNER)
    events = [native("a"), native("b"), native("c")]
    tasks = [asyncio.create_task(store.record(e, o)) for e, o in events]
    await asyncio.sleep(0)  # all three are queued; the writer has not run yet
    tasks[1].cancel()
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(answers[1], asyncio.CancelledError)
    intake_ids, _ = await stored(sessions)
    assert intake_ids == {events[0][0].message_id, events[2][0].message_id}


@pytest.mark.parametrize("max_group", [1, 3])
async def test_every_future_is_answered_whatever_the_group_size(sessions, max_group):
    store = GroupedIntakeStore(sessions, OWNER, max_group=max_group)
    events = [native(f"e{i % 4}") for i in range(10)]
    answers = await asyncio.wait_for(record_all(store, events), timeout=10)
    assert sum(isinstance(a, Accepted) and not a.duplicate for a in answers) == 4
    assert all(isinstance(a, Accepted) for a in answers)
