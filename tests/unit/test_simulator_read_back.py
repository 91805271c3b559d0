"""A simulated journal that pushes no receipts, read back by adapter_treserva's own delivery
and read-back code in process (the journal client over ASGI): a stored notice is confirmed by
read-back; a silently dropped one is found by nobody."""

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from sandbox.simulators import treserva
from sandbox.simulators.journal import FaultMode, JournalState, create_api_app
from services.adapter_treserva.service import DESTINATION
from services.messaging import topics
from services.messaging.db import store_keyring
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import CONFIRM_BY_HEADER, System, read_envelope
from services.messaging.journal_client import HttpJournalClient
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import open_value, outbox
from services.messaging.read_back import ReadBackPoller
from services.messaging.read_back_store import ReadBackTerms, pending_read_back
from tests.support.router import Clock
from tests.support.treserva import fhir

TERMS = ReadBackTerms(first_check_s=1, interval_s=10, window_s=600)


@pytest.fixture
def pushed():
    return []


@pytest.fixture
async def journal(pushed):
    """Treserva's simulator set not to push receipts; a pushed one would land in ``pushed``."""
    state = JournalState()
    settings = treserva.TreservaSimSettings(push_receipts=False)

    def capture(request):
        pushed.append(request)
        return httpx.Response(202, json={})

    app = create_api_app(
        state, treserva.spec(settings), receipt_transport=httpx.MockTransport(capture)
    )
    client = HttpJournalClient(
        "http://treserva", settings.api_token, 5.0, transport=httpx.ASGITransport(app=app)
    )
    yield client, state
    await client.aclose()


async def _deliver_and_read_back(sessions, client, clock) -> str:
    bundle = fhir("personnummer-full.input.json")
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=clock, destination=DESTINATION, read_back=TERMS
    )
    confirm_by = clock() + timedelta(minutes=1)
    record = IncomingRecord(
        topics.outbound("treserva"),
        0,
        1,
        "p" * 32,
        json.dumps(bundle).encode(),
        {
            "message-id": bundle["entry"][0]["resource"]["id"],
            "attempt": "1",
            CONFIRM_BY_HEADER: confirm_by.isoformat(),
        },
    )
    await handle_delivery_batch([record], deps=deps)
    poller = ReadBackPoller(
        sessions=sessions,
        owner="adapter_treserva",
        readers={System.TRESERVA: client},
        terms={System.TRESERVA: TERMS},
        clock=clock,
    )
    while (wait := await poller.seconds_to_next()) is not None:
        clock.advance(wait)
        await poller.check_due()
    return str(bundle["entry"][0]["resource"]["id"])


async def _results(sessions):
    async with sessions() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.id))).all()
        ring = store_keyring(s)
        left = (await s.execute(select(pending_read_back))).all()
    return [read_envelope(open_value(ring, r, r.owner)) for r in rows], left


async def test_a_journal_without_receipts_is_confirmed_by_reading_the_notice_back(
    sessions, journal, pushed
):
    client, state = journal
    mid = await _deliver_and_read_back(sessions, client, Clock())
    envelopes, left = await _results(sessions)
    assert [(e.event_code, e.response_code) for e in envelopes] == [
        ("delivery-outcome", "ok"),
        ("receipt", "ok"),
    ]
    assert envelopes[1].response_to == mid and left == []
    record_id = next(iter(state.records.values()))["recordId"]
    assert f"record {record_id}" in (envelopes[1].outcome_text or "")
    assert pushed == [] and state.stats["receipts_sent"] == 0
    assert (state.stats["read_backs"], state.stats["read_back_misses"]) == (1, 0)


async def test_a_silent_drop_leaves_nothing_to_read_back(sessions, journal, pushed):
    client, state = journal
    state.fault.mode = FaultMode.SILENT_DROP
    await _deliver_and_read_back(sessions, client, Clock())
    envelopes, left = await _results(sessions)
    assert [e.event_code for e in envelopes] == ["delivery-outcome"]  # accepted, never found
    assert left == []  # given up at the deadline: the router's watchdog takes over
    assert state.stats["dropped"] == 1 and state.stats["read_back_misses"] >= 2
