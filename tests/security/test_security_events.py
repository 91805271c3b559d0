"""Security events join the access log's chain (issue 19, item 7): a refused token on the
ops API (address and path, never the token; at most one entry per address a minute, so the
log is no denial-of-service vector), payload-key rotation, pruning, replays and closed
deliveries, each written in the action's own transaction."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.router.audit.access_log import AccessKind, access_log, verify_chain
from services.router.ops.app import create_app
from services.router.ops.refused_tokens import RefusalLimiter
from services.router.settings import RouterSettings
from tests.support.console_client import log_in
from tests.support.console_data import seed
from tests.support.router import Clock

pytestmark = pytest.mark.security

OPS = {"authorization": "Bearer sandbox-ops-token"}
GUESS = "guessed-token-0123456789-SECRET"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def app(sessions, clock, ticks):
    built = create_app(RouterSettings(), sessions=sessions, clock=clock)
    built.state.refused_tokens.monotonic = ticks
    return built


def client(app, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://router")


async def entries(sessions, kind: AccessKind | None = None) -> list[Any]:
    async with sessions() as s:
        query = select(access_log).order_by(access_log.c.seq)
        if kind is not None:
            query = query.where(access_log.c.kind == kind.value)
        return list((await s.execute(query)).all())


# --- refused tokens -----------------------------------------------------------------------


async def test_a_refused_token_is_recorded_with_address_and_path_never_the_token(app, sessions):
    async with client(app) as api:
        res = await api.get(
            "/api/v1/messages?limit=5", headers={"authorization": f"Bearer {GUESS}"}
        )
    assert res.status_code == 401
    (entry,) = await entries(sessions)
    assert entry.kind == AccessKind.TOKEN_REFUSED.value
    assert entry.role == "unauthenticated" and "203.0.113.7" in entry.actor
    assert entry.reason == "API token refused from 203.0.113.7 on GET /api/v1/messages"
    assert entry.pseudonym is None and entry.message_id is None
    row = " ".join(str(v) for v in entry._mapping.values())
    assert GUESS not in row and GUESS[:8] not in row and "SECRET" not in row
    async with sessions() as s:
        assert (await verify_chain(s)).ok


async def test_at_most_one_entry_per_address_a_minute(app, sessions, ticks):
    wrong = {"authorization": f"Bearer {GUESS}"}
    async with client(app) as api:
        for _ in range(20):
            assert (await api.get("/api/v1/alerts", headers=wrong)).status_code == 401
        ticks.at += 30
        await api.post("/api/v1/replays", json={}, headers=wrong)  # an admin path: the same
    async with client(app, "198.51.100.4") as other:
        await other.get("/api/v1/alerts", headers=wrong)  # another address: its own entry
    found = await entries(sessions)
    assert [e.actor for e in found] == [
        "unknown client at 203.0.113.7",
        "unknown client at 198.51.100.4",
    ]
    assert "(20 more refusals not recorded" in found[1].reason  # named in the next entry
    ticks.at += 60  # a minute after the first address's entry: it is recorded again
    async with client(app) as api:
        await api.get("/api/v1/alerts", headers=wrong)
    found = await entries(sessions)
    assert len(found) == 3 and found[2].reason.endswith("on GET /api/v1/alerts")


async def test_no_header_and_a_valid_key_leave_no_entry(app, sessions):
    async with client(app) as api:
        assert (await api.get("/api/v1/alerts")).status_code == 401
        assert (await api.get("/api/v1/alerts", headers=OPS)).status_code == 200
    assert await entries(sessions) == []


def test_the_limiter_caps_entries_a_minute_in_all_and_the_addresses_it_holds():
    limiter = RefusalLimiter(max_per_minute=3, max_addresses=2)
    admitted = [limiter.admit(f"10.0.0.{n}", at=0.0) for n in range(5)]
    assert admitted == [True, True, True, False, False] and limiter.suppressed == 2
    assert len(limiter._last) <= 2  # sprayed addresses cost bounded memory
    assert limiter.admit("10.0.0.9", at=61.0)  # a new minute


# --- admin actions ------------------------------------------------------------------------


async def test_payload_key_rotation_and_pruning_are_recorded(app, sessions):
    async with client(app) as api:
        rotated = await api.post("/api/v1/payload-keys/rotate", json={"limit": 50}, headers=OPS)
        pruned = await api.post("/api/v1/payloads/prune", json={"limit": 10}, headers=OPS)
    assert rotated.status_code == pruned.status_code == 200
    (key,) = await entries(sessions, AccessKind.KEY_CHANGE)
    assert (key.actor, key.role) == ("API client ops", "admin")
    assert key.reason.startswith("payload-key rotation: 0 re-sealed under key sandbox-1")
    (prune,) = await entries(sessions, AccessKind.ADMIN_ACTION)
    assert prune.reason == "payload pruning: 0 payload(s) pruned (batch of at most 10)"


async def test_api_replays_and_closes_are_recorded_in_their_transaction(app, sessions, clock):
    seeded = await seed(sessions, clock)
    async with client(app) as api:
        replayed = await api.post(
            "/api/v1/replays",
            json={"messageIds": [seeded.dead], "operator": "Åsa", "reason": "enheten rättad"},
            headers=OPS,
        )
        refused = await api.post(  # a 422 changes nothing: nothing is recorded
            "/api/v1/replays", json={"operator": "Åsa", "reason": "allt"}, headers=OPS
        )
    assert replayed.status_code == 200 and refused.status_code == 422
    (entry,) = await entries(sessions, AccessKind.ADMIN_ACTION)
    assert entry.actor == "API client ops" and entry.role == "admin"  # never the body's "operator"
    assert entry.reason == f"replay: 1 replayed [{seeded.dead}], 0 refused; why: enheten rättad"


async def test_a_console_replay_is_recorded(app, sessions, clock):
    seeded = await seed(sessions, clock)
    async with client(app) as browser:
        csrf = await log_in(browser)
        res = await browser.post(
            f"/console/messages/{seeded.dead}/replay",
            data={"reason": "Treserva rättade enheten", "csrf": csrf},
        )
    assert res.status_code == 303
    (entry,) = await entries(sessions, AccessKind.ADMIN_ACTION)
    assert (entry.actor, entry.role) == ("ops (console)", "operator")
    assert entry.reason.startswith("replay: 1 replayed")


async def test_the_console_lists_security_events_without_a_patient(app, sessions, clock):
    wrong = {"authorization": f"Bearer {GUESS}"}
    async with client(app) as browser:
        await browser.get("/api/v1/alerts", headers=wrong)
        await log_in(browser)
        every = (await browser.get("/console/audit")).text
        security = (await browser.get("/console/audit?category=security")).text
        views = (await browser.get("/console/audit?category=patient-data")).text
    row = '<tr class="security-event">'
    assert row in every and "token-refused" in every
    assert "ingen patient" in every or "no patient" in every  # not an empty pseudonym
    assert row in security and "API token refused from 203.0.113.7" in security
    assert row not in views and "token-refused" not in views
    assert GUESS not in every
