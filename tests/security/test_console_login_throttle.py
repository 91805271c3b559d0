"""Wrong passwords at the console's log-in are throttled per name and per address
(services.router.ops.console.throttle): 429 with Retry-After, a wait that grows, the same
answer for a name that does not exist, state in the database (every replica sees it), and
one access-log entry per lock rather than one per refused request."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from services.router.audit.access_log import access_log
from services.router.ops.app import create_app
from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from services.router.settings import RouterSettings
from tests.support.router import Clock

pytestmark = pytest.mark.security


@pytest.fixture
def clock():
    return Clock()


def client(app, address="10.0.0.7"):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url="http://router"
    )


@pytest.fixture
def app(sessions, clock):
    return create_app(RouterSettings(), sessions=sessions, clock=clock)


async def attempt(c, user, password="not-the-password"):  # noqa: S107 (a wrong one)
    return await c.post("/console/login", data={"user": user, "password": password})


async def fail(c, user, times):
    for _ in range(times):
        assert (await attempt(c, user)).status_code == 401


async def test_five_wrong_passwords_for_a_name_and_the_next_attempt_waits(app, clock):
    async with client(app) as c:
        await fail(c, "ops", 5)
        refused = await attempt(c, "ops", SANDBOX_PASSWORDS["ops"])  # even the right one
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert 'id="login-throttled"' in refused.text and "carebridge_console" not in str(
            refused.cookies
        )
        clock.advance(10)
        assert (await attempt(c, "ops")).headers["retry-after"] == "20"
        assert (await attempt(c, "viewer", SANDBOX_PASSWORDS["viewer"])).status_code == 303
        clock.advance(20)
        # the wait is over: one more try, and a wrong one doubles the next wait
        assert (await attempt(c, "ops")).status_code == 401
        assert (await attempt(c, "ops")).headers["retry-after"] == "60"
        clock.advance(60)
        assert (await attempt(c, "ops")).status_code == 401
        assert (await attempt(c, "ops")).headers["retry-after"] == "120"


async def test_a_name_that_does_not_exist_gets_the_same_answer(app, clock):
    async with client(app) as c:
        await fail(c, "ops", 5)
        await fail(c, "nobody-here", 5)
        known, unknown = await attempt(c, "ops"), await attempt(c, "nobody-here")
    assert known.status_code == unknown.status_code == 429
    assert known.headers["retry-after"] == unknown.headers["retry-after"]
    assert known.text == unknown.text


async def test_the_right_password_clears_the_names_failures(app, clock):
    async with client(app) as c:
        await fail(c, "ops", 4)
        assert (await attempt(c, "ops", SANDBOX_PASSWORDS["ops"])).status_code == 303
        await fail(c, "ops", 5)  # counted from zero again: five more before a wait
        assert (await attempt(c, "ops")).status_code == 429


async def test_failures_older_than_the_window_no_longer_count(app, clock):
    async with client(app) as c:
        await fail(c, "ops", 5)
        clock.advance(15 * 60 + 1)
        assert (await attempt(c, "ops")).status_code == 401


async def test_one_address_guessing_many_names_is_throttled_and_others_are_not(sessions, clock):
    app = create_app(
        RouterSettings(console_login_failures_per_address=3), sessions=sessions, clock=clock
    )
    async with client(app, "10.0.0.66") as guesser, client(app, "10.0.0.7") as colleague:
        for name in ("anna", "bo", "cecilia"):
            assert (await attempt(guesser, name)).status_code == 401
        refused = await attempt(guesser, "david")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        # the good password of a name never tried from there does not get past the wait
        assert (await attempt(guesser, "ops", SANDBOX_PASSWORDS["ops"])).status_code == 429
        assert (await attempt(colleague, "ops", SANDBOX_PASSWORDS["ops"])).status_code == 303


async def test_the_throttle_holds_across_replicas(sessions, clock):
    one = create_app(RouterSettings(), sessions=sessions, clock=clock)
    two = create_app(RouterSettings(), sessions=sessions, clock=clock)
    async with client(one) as a, client(two) as b:
        await fail(a, "ops", 3)
        await fail(b, "ops", 2)
        assert (await attempt(a, "ops")).status_code == 429
        assert (await attempt(b, "ops")).status_code == 429


async def test_a_lock_is_logged_once_not_per_refused_request(app, sessions, clock):
    async with client(app) as c:
        await fail(c, "ops", 5)
        for _ in range(10):
            assert (await attempt(c, "ops")).status_code == 429
    async with sessions() as s:
        rows = (await s.execute(select(access_log).order_by(access_log.c.seq))).all()
    assert [r.kind for r in rows] == ["login-failed"] * 6
    assert [r.reason for r in rows][-1] == "throttled for 30 s, from 10.0.0.7"
    assert {r.actor for r in rows} == {"ops"}
