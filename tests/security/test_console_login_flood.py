"""A flood of console log-ins does not stall the router: argon2 runs in two worker threads
(services.router.ops.console.accounts.verify_off_loop), not on the event loop that also
serves the API and the adapters' confirmations.

The test times what the review measured: an admission notice's confirmation (its Treserva
outcome and receipt, handled by the router as a Kafka batch is), due every 20 ms on the event
loop that serves the console, with and without 40 log-ins at once. With the hashes on the
loop each of them (tens of milliseconds unloaded, a quarter to half a second on a busy 2-core
machine) holds up every confirmation due meanwhile; in threads at the loop's own priority,
two hashes' eight lanes outran the loop (331 ms against 88 ms); at a lower priority the
median stays within twice the quiet median, plus 50 ms for the noise of a loaded machine."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from services.messaging.envelope import EventCode, ResponseCode, System
from services.router.ops.app import create_app
from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from services.router.routing.handlers import Router
from services.router.settings import RouterSettings
from tests.support.router import (
    Clock,
    deliveries,
    inbound,
    message_id,
    result,
    routing_rules,
    started,
)

pytestmark = pytest.mark.security

FLOOD = 40
FLOOR_S = 0.05
# a request every 20 ms or so, as traffic would come: back to back, the probes alone would
# keep the loop (and the GIL) busy and starve the hashing threads
PACE_S = 0.02


async def log_in(c: httpx.AsyncClient) -> int:
    res = await c.post("/console/login", data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"]})
    return res.status_code


async def confirmed_in(router: Router, mid: str) -> float:
    """How late a confirmation due in :data:`PACE_S` is done: the Treserva outcome and its
    receipt for ``mid``, handled as the router handles a batch of the results topic."""
    due = time.perf_counter() + PACE_S
    await asyncio.sleep(PACE_S)
    await router.handle_batch(
        [
            result(mid, ResponseCode.OK, responder=System.TRESERVA),
            result(mid, ResponseCode.OK, responder=System.TRESERVA, event=EventCode.RECEIPT),
        ]
    )
    return time.perf_counter() - due


async def test_forty_log_ins_at_once_leave_confirmations_as_fast_as_without(sessions):
    app = create_app(RouterSettings(), sessions=sessions)
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=Clock()))
    notices = [inbound(seed, patient=f"{seed:032x}") for seed in range(1, 121)]
    await router.handle_batch(notices)  # routed and sent: each waits for its confirmation
    waiting = [message_id(n) for n in notices]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as c:
        assert await log_in(c) == 303  # the first of each path (thread start, imports) paid
        quiet = [await confirmed_in(router, waiting.pop()) for _ in range(20)]
        flood = [asyncio.create_task(log_in(c)) for _ in range(FLOOD)]
        during: list[float] = []
        started_at = time.perf_counter()
        while not all(f.done() for f in flood) and waiting:
            during.append(await confirmed_in(router, waiting.pop()))
        took = time.perf_counter() - started_at
        assert [await f for f in flood] == [303] * FLOOD
    confirmed = [d for d in await deliveries(sessions) if d.state == "confirmed"]
    assert len(confirmed) == len(quiet) + len(during)  # each timing was a real confirmation
    assert len(during) >= 5, during  # measured while the hashes ran, not after them
    base, loaded = statistics.median(quiet), statistics.median(during)
    assert loaded <= 2 * base + FLOOR_S, (
        f"a confirmation took {loaded * 1000:.1f} ms (median of {len(during)}) during "
        f"{FLOOD} log-ins ({took:.1f} s), {base * 1000:.1f} ms without"
    )
