"""Confirmation by read-back: a delivery Treserva accepted is read back from its API until it
is found (one receipt, as a pushed one) or the confirmation deadline passes (nothing, and the
router's watchdog takes over); errors are tried again; what is pending survives a restart."""

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.adapter_treserva.service import DESTINATION
from services.messaging import topics
from services.messaging.db import make_engine, session_factory, store_keyring
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import CONFIRM_BY_HEADER, ResponseCode, System, read_envelope
from services.messaging.journal_client import (
    FakeJournalClient,
    FatalDeliveryError,
    HttpJournalClient,
    StoredRecord,
    TransientDeliveryError,
)
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import open_value, outbox
from services.messaging.read_back import ReadBackPoller, receipt_id
from services.messaging.read_back_store import (
    PendingReadBack,
    ReadBackTerms,
    pending_read_back,
    remaining,
)
from services.messaging.receipts import Receipt, accept_receipt
from services.router.routing.tables import delivery
from tests.support.incidents import Sink, admission, make_router
from tests.support.router import T0, message_id, result
from tests.support.router import Clock as RouterClock
from tests.support.treserva import NOW, fhir

PATH = "/api/v1/inskrivningsmeddelanden"
TERMS = ReadBackTerms(first_check_s=2, interval_s=30, window_s=600)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Clock:
    """The wall clock (called) and the monotonic clock: time passing moves both, a jump
    (NTP's step, ``date -s``) the wall clock only."""

    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds

    def jump(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def elapsed(self) -> float:
        """Seconds that really passed since the clock was made."""
        return self.mono - 1000.0


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def journal():
    return FakeJournalClient()


def deps_for(sessions, journal, clock, terms=TERMS) -> DeliveryDeps:
    return DeliveryDeps(
        sessions=sessions,
        client=journal,
        clock=clock,
        monotonic=getattr(clock, "monotonic", None),
        destination=DESTINATION,
        read_back=terms,
        read_back_wake=asyncio.Event(),
    )


def poller_for(sessions, journal, clock, terms=TERMS) -> ReadBackPoller:
    return ReadBackPoller(
        sessions=sessions,
        owner="adapter_treserva",
        readers={System.TRESERVA: journal},
        terms={System.TRESERVA: terms},
        clock=clock,
        monotonic=clock.monotonic,
    )


def command(bundle: dict[str, Any], *, confirm_by: datetime | None = None, attempt: int = 1):
    headers = {
        "message-id": bundle["entry"][0]["resource"]["id"],
        "attempt": str(attempt),
        "traceparent": TRACEPARENT,
    }
    if confirm_by is not None:
        headers[CONFIRM_BY_HEADER] = confirm_by.isoformat()
    return IncomingRecord(
        topics.outbound("treserva"), 0, attempt, "p" * 32, json.dumps(bundle).encode(), headers
    )


async def receipts(sessions):
    """The receipt records in the outbox, as the router will read them."""
    async with sessions() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.id))).all()
        ring = store_keyring(s)
    found = [(r, read_envelope(open_value(ring, r, r.owner))) for r in rows]
    return [(r, env) for r, env in found if env.event_code == "receipt"]


async def pending(sessions):
    async with sessions() as s:
        return (await s.execute(select(pending_read_back))).all()


async def delivered(sessions, journal, clock, *, confirm_by=None, terms=TERMS) -> str:
    bundle = fhir("personnummer-full.input.json")
    deps = deps_for(sessions, journal, clock, terms)
    await handle_delivery_batch([command(bundle, confirm_by=confirm_by)], deps=deps)
    assert deps.read_back_wake is not None and deps.read_back_wake.is_set()
    return str(bundle["entry"][0]["resource"]["id"])


async def test_a_record_found_is_confirmed_by_one_receipt_as_a_pushed_one(sessions, journal, clock):
    mid = await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(minutes=15))
    poller = poller_for(sessions, journal, clock)
    assert await poller.check_due() == 0  # not yet: the first check is 2 s after acceptance
    assert await poller.seconds_to_next() == pytest.approx(2.0)
    clock.advance(2)
    assert await poller.check_due() == 1
    ((row, env),) = await receipts(sessions)
    assert (row.topic, row.key, row.owner) == (topics.RESULTS, mid, "adapter_treserva")
    assert (env.event_code, env.response_to, env.response_code) == ("receipt", mid, "ok")
    assert env.source_system == "treserva"
    assert "REC-1" in (env.outcome_text or "")  # the journal's own record id
    assert row.headers["message-id"] == mid
    assert row.headers["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]  # same trace
    assert await pending(sessions) == []
    clock.advance(60)
    assert await poller.check_due() == 0 and journal.finds == 1  # never looked for again
    assert await poller.seconds_to_next() is None
    assert len(await receipts(sessions)) == 1


async def test_a_dropped_record_is_looked_for_until_the_deadline_and_then_no_more(
    sessions, journal, clock
):
    journal.drop = True  # accepted (202), never stored: the silent drop
    await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(seconds=100))
    poller = poller_for(sessions, journal, clock)
    checks_at = []
    while (wait := await poller.seconds_to_next()) is not None:
        clock.advance(wait)
        checks_at.append((clock.now - NOW).total_seconds())
        assert await poller.check_due() == 1
    # at 2 s, then every 30 s, the last look at the deadline itself
    assert checks_at == [2, 32, 62, 92, 100]
    assert journal.finds == 5
    assert await receipts(sessions) == [] and await pending(sessions) == []
    clock.advance(3600)
    assert await poller.check_due() == 0 and journal.finds == 5


async def test_without_a_deadline_in_the_command_the_window_bounds_it(sessions, journal, clock):
    journal.drop = True
    await delivered(sessions, journal, clock)
    ((row,),) = [await pending(sessions)]
    assert row.deadline == NOW + timedelta(seconds=600)


async def test_a_deadline_already_past_still_gets_one_look(sessions, journal, clock):
    await delivered(sessions, journal, clock, confirm_by=NOW - timedelta(minutes=5))
    ((row,),) = [await pending(sessions)]
    assert row.deadline == row.next_check_at == NOW + timedelta(seconds=2)
    clock.advance(2)
    await poller_for(sessions, journal, clock).check_due()
    assert len(await receipts(sessions)) == 1


async def test_errors_of_the_journal_are_tried_again_at_the_next_interval(sessions, journal, clock):
    mid = await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(minutes=15))
    journal.find_fail_with = [
        TransientDeliveryError("HTTP 503", http_status=503),
        TransientDeliveryError("transport: ConnectError"),
        FatalDeliveryError("HTTP 401", http_status=401),
    ]
    poller = poller_for(sessions, journal, clock)
    results = []
    for _ in range(3):
        clock.advance(await poller.seconds_to_next() or 0)
        await poller.check_due()
        ((row,),) = [await pending(sessions)]
        results.append((row.checks, row.last_result, (row.next_check_at - clock.now).seconds))
    assert results == [
        (1, "HTTP 503", 30),
        (2, "transport: ConnectError", 30),
        (3, "HTTP 401", 30),
    ]
    clock.advance(30)
    await poller.check_due()
    ((_, env),) = await receipts(sessions)
    assert env.response_to == mid and await pending(sessions) == []


async def test_pending_read_backs_survive_a_restart(database_url, journal, clock):
    """Scheduled by one process (killed before its first check), found by the next."""
    first = make_engine(database_url)
    mid = await delivered(
        session_factory(first), journal, clock, confirm_by=NOW + timedelta(minutes=15)
    )
    await first.dispose()  # kill -9: nothing in memory survives
    clock.advance(5)
    second = make_engine(database_url)
    try:
        sessions = session_factory(second)
        restarted = FakeJournalClient(stored=dict(journal.stored))
        poller = poller_for(sessions, restarted, clock)
        assert await poller.seconds_to_next() == 0
        assert await poller.check_due() == 1
        ((_, env),) = await receipts(sessions)
        assert env.response_to == mid and restarted.finds == 1
    finally:
        await second.dispose()


async def test_a_pushed_receipt_ends_the_read_back_and_a_late_one_changes_nothing(
    sessions, journal, clock
):
    """Mode both: whichever comes first confirms; the other is harmless."""
    mid = await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(minutes=15))
    pushed = Receipt(receipt_id="KV-TRS-1", message_id=mid, rejected=False, reason=None)
    for _ in range(2):  # the journal pushes it twice
        await accept_receipt(
            pushed,
            responder=System.TRESERVA,
            owner="adapter_treserva",
            sessions=sessions,
            clock=clock,
        )
    assert await pending(sessions) == []
    clock.advance(60)
    assert await poller_for(sessions, journal, clock).check_due() == 0
    assert journal.finds == 0 and len(await receipts(sessions)) == 1


async def test_a_read_back_receipt_is_recorded_once(sessions, clock):
    found = Receipt(
        receipt_id=receipt_id("treserva", "m-1"),
        message_id="m-1",
        rejected=False,
        reason=None,
        record_id="TRS-9",
        recorded_at=NOW,
    )
    outcomes = [
        await accept_receipt(
            found, responder=System.TRESERVA, owner="a", sessions=sessions, clock=clock
        )
        for _ in range(2)
    ]
    assert outcomes == [False, True]  # the second is a duplicate
    ((_, env),) = await receipts(sessions)
    assert (
        env.outcome_text == "read back from the journal, record TRS-9, stored 2026-11-20T09:00:00Z"
    )


async def test_nothing_is_read_back_in_receipt_mode_or_for_a_refused_delivery(
    sessions, journal, clock
):
    bundle = fhir("personnummer-full.input.json")
    receipt_mode = deps_for(sessions, journal, clock)
    receipt_mode.read_back = None
    await handle_delivery_batch([command(bundle)], deps=receipt_mode)
    journal.fail_with = [TransientDeliveryError("HTTP 503", http_status=503)]
    await handle_delivery_batch(
        [command(bundle, attempt=2)], deps=deps_for(sessions, journal, clock)
    )
    assert await pending(sessions) == []


async def test_a_resend_schedules_the_read_back_again_with_its_new_deadline(
    sessions, journal, clock
):
    journal.drop = True
    bundle = fhir("personnummer-full.input.json")
    deps = deps_for(sessions, journal, clock)
    await handle_delivery_batch(
        [command(bundle, confirm_by=NOW + timedelta(seconds=60))], deps=deps
    )
    clock.advance(120)
    await poller_for(sessions, journal, clock).check_due()  # past the deadline: given up
    assert await pending(sessions) == []
    resend_deadline = clock.now + timedelta(minutes=15)
    await handle_delivery_batch([command(bundle, confirm_by=resend_deadline, attempt=2)], deps=deps)
    ((row,),) = [await pending(sessions)]
    assert row.deadline == resend_deadline and row.checks == 0


async def test_the_loop_sleeps_until_the_next_check_is_due(sessions, journal):
    """Real time, short terms: checks happen at their times and the loop does not spin
    between them, nor once nothing is pending."""
    terms = ReadBackTerms(first_check_s=0.05, interval_s=0.1, window_s=60)
    journal.drop = True
    wall = lambda: datetime.now(UTC)  # noqa: E731
    looks = []

    class Counting(ReadBackPoller):
        async def check_due(self) -> int:
            looks.append(time.monotonic())
            return await super().check_due()

    poller = Counting(
        sessions=sessions,
        owner="adapter_treserva",
        readers={System.TRESERVA: journal},
        terms={System.TRESERVA: terms},
        clock=wall,
    )
    loop = asyncio.create_task(poller.run())
    try:
        deps = deps_for(sessions, journal, wall, terms)
        deps.read_back_wake = poller.wake
        bundle = fhir("personnummer-full.input.json")
        await handle_delivery_batch(
            [command(bundle, confirm_by=wall() + timedelta(seconds=1.0))], deps=deps
        )
        deadline = time.monotonic() + 10
        while await pending(sessions):
            assert time.monotonic() < deadline, "the read-back never ended"
            await asyncio.sleep(0.05)
        # first at 0.05 s, then every 0.1 s until 1 s: about 11 looks, each a check (a
        # loaded machine makes fewer, never more: the bounds allow for a slow one)
        assert 3 <= journal.finds <= 13, journal.finds
        assert len(looks) <= journal.finds + 3, (len(looks), journal.finds)
        finds, count = journal.finds, len(looks)
        await asyncio.sleep(0.3)  # idle: nothing pending, nothing scheduled
        assert (journal.finds, len(looks)) == (finds, count)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


def _reader(handler) -> HttpJournalClient:
    return HttpJournalClient("http://treserva", "tok", 5.0, transport=httpx.MockTransport(handler))


async def test_the_http_reader_gets_by_idempotency_key_with_the_broker_credential():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "recordId": "TRS-7",
                "receivedAt": "2026-11-20T10:00:01+01:00",
                "brukare": {"personnummer": "19121212-1212"},  # never read, never logged
            },
        )

    reader = _reader(handler)
    found = await reader.find(PATH, idempotency_key="f17ef11a-5acf/x")
    await reader.aclose()
    assert found == StoredRecord("TRS-7", datetime(2026, 11, 20, 9, 0, 1, tzinfo=UTC))
    assert seen[0].method == "GET"
    assert seen[0].url.raw_path.decode() == f"{PATH}/f17ef11a-5acf%2Fx"
    assert seen[0].headers["authorization"] == "Bearer tok"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(404, json={"title": "no such record"}), None),
        (httpx.Response(200, text="stored"), StoredRecord(None, None)),
        (httpx.Response(503), TransientDeliveryError),
        (httpx.Response(429), TransientDeliveryError),
        (httpx.Response(401), FatalDeliveryError),
        (httpx.ConnectError("refused"), TransientDeliveryError),
        (httpx.ReadTimeout("slow"), TransientDeliveryError),
    ],
)
async def test_the_http_reader_tells_not_there_from_cannot_tell(answer, expected):
    def handler(request):
        if isinstance(answer, Exception):
            raise answer
        return answer

    reader = _reader(handler)
    try:
        if isinstance(expected, type):
            with pytest.raises(expected):
                await reader.find(PATH, idempotency_key="m-1")
        else:
            assert await reader.find(PATH, idempotency_key="m-1") == expected
    finally:
        await reader.aclose()


async def test_the_router_names_until_when_it_waits_in_each_command(sessions):
    """The first command carries the confirmation deadline; a re-send after it, the time of
    the next re-send: the adapter reads back exactly as long as the router waits."""

    clock = RouterClock()
    router = await make_router(sessions, clock, Sink())
    rec = admission(1, admitted_at=T0, patient="01" * 16)
    await router.handle_batch([rec])
    mid = str(message_id(rec))
    await router.handle_batch([result(mid, ResponseCode.OK)])  # accepted, never confirmed
    clock.advance(15 * 60 + 1)
    await router.tick()  # past the deadline: alerted and sent again
    async with sessions() as s:
        sent = [
            r.headers
            for r in (await s.execute(select(outbox).order_by(outbox.c.id))).all()
            if r.topic == topics.outbound("treserva")
        ]
        row = (await s.execute(select(delivery).where(delivery.c.destination == "treserva"))).one()
    first, again = (datetime.fromisoformat(h[CONFIRM_BY_HEADER]) for h in sent)
    assert first == row.confirm_by
    assert again == row.resend_at == clock.now + timedelta(minutes=15)


async def test_a_step_back_of_the_wall_clock_never_delays_a_check_by_its_size(
    sessions, journal, clock
):
    """Planned before the wall clock went back two hours, the next check lies two hours
    ahead; it is made within one interval anyway (services.messaging.clock)."""
    journal.drop = True
    await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(seconds=600))
    poller = poller_for(sessions, journal, clock)
    clock.advance(await poller.seconds_to_next() or 0)
    assert await poller.check_due() == 1
    clock.jump(-2 * 3600)
    wait = await poller.seconds_to_next()
    assert wait is not None and wait <= TERMS.interval_s
    clock.advance(wait)
    assert await poller.check_due() == 1
    assert journal.finds == 2


async def looks_until_the_end(poller: ReadBackPoller, clock: Clock) -> list[float]:
    """Each look the poller makes until nothing is pending, in seconds really passed."""
    looks = []
    while (wait := await poller.seconds_to_next()) is not None:
        clock.advance(wait)
        assert await poller.check_due() == 1
        looks.append(clock.elapsed())
        assert len(looks) < 1000, "the read-back never ended"
    return looks


@pytest.mark.parametrize("jump_s", [2 * 3600, -2 * 3600], ids=["forward", "back"])
async def test_a_jump_of_the_wall_clock_neither_ends_a_read_back_early_nor_prolongs_it(
    sessions, journal, clock, jump_s
):
    """Two hours forward, the deadline (the router's confirm-by, a wall time) had passed
    at the next look, which was the last; two hours back, it lay two hours further off. The
    router moves its own confirm_by by the jump (services.router.routing.clock_jumps); the
    adapter measures the time left on the monotonic clock: it looks until 600 s have really
    passed since it accepted the delivery, then stops."""
    journal.drop = True
    await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(seconds=600))
    poller = poller_for(sessions, journal, clock)
    clock.advance(await poller.seconds_to_next() or 0)
    assert await poller.check_due() == 1  # the first look, at 2 s
    clock.jump(jump_s)
    looks = await looks_until_the_end(poller, clock)
    assert looks[-1] == 600  # the last look at the real deadline, none after it
    # every interval until then (forward, the look planned on the old scale comes at once)
    assert all(0 <= b - a <= TERMS.interval_s for a, b in pairwise(looks))
    assert len(looks) >= 20
    assert await receipts(sessions) == [] and await pending(sessions) == []


async def test_a_record_stored_late_after_a_forward_jump_is_still_found(sessions, journal, clock):
    """Nine minutes after acceptance, two hours of wall clock later: found, confirmed."""
    journal.drop = True
    mid = await delivered(sessions, journal, clock, confirm_by=NOW + timedelta(seconds=600))
    poller = poller_for(sessions, journal, clock)
    clock.advance(await poller.seconds_to_next() or 0)
    assert await poller.check_due() == 1
    clock.jump(2 * 3600)
    while clock.elapsed() < 9 * 60:
        clock.advance(await poller.seconds_to_next() or 0)
        assert await poller.check_due() == 1
    journal.stored[(PATH, mid)] = StoredRecord("TRS-LATE", None)  # the journal catches up
    clock.advance(await poller.seconds_to_next() or 0)
    assert await poller.check_due() == 1
    ((_, env),) = await receipts(sessions)
    assert env.response_to == mid and await pending(sessions) == []


def test_the_time_left_is_measured_on_the_wall_clock_for_a_row_of_another_boot():
    """Scheduled before the host restarted (another monotonic clock), or before the adapter
    kept the monotonic reading: the deadline is a wall time."""
    row = PendingReadBack(
        destination="treserva",
        message_id="m-1",
        path=PATH,
        deadline=NOW + timedelta(seconds=600),
        next_check_at=NOW,
        checks=0,
        last_result=None,
        traceparent=None,
        scheduled_at=NOW,
        scheduled_monotonic=1000.0,
        boot_id="boot-a",
    )
    later = NOW + timedelta(hours=2, seconds=100)  # 100 s later, after a 2 h jump
    assert remaining(row, later, 1100.0, "boot-a") == timedelta(seconds=500)
    by_wall = NOW + timedelta(seconds=600) - later
    assert remaining(row, later, 5.0, "boot-b") == by_wall
    assert remaining(row, later, None, "boot-a") == by_wall
    assert remaining(replace(row, scheduled_monotonic=None), later, 1100.0, "boot-a") == by_wall
