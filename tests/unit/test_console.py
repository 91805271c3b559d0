"""The console in process (httpx.ASGITransport): log-in, roles, CSRF, every page renders
from a real delivery log, and every view of patient data is access-logged first."""

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from services.router.audit.access_log import access_log
from services.router.ops.app import create_app
from services.router.ops.console import sessions as console_sessions
from services.router.ops.console.accounts import (
    SANDBOX_PASSWORDS,
    Role,
    authenticate,
    hash_password,
    verify_password,
)
from services.router.ops.console.labels import LABELS
from services.router.routing.clock_jumps import clock_jump
from services.router.routing.tables import message
from services.router.settings import RouterSettings
from tests.support.console_client import found, log_in
from tests.support.console_data import seed
from tests.support.router import Clock


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def seeded(sessions, clock):
    return await seed(sessions, clock)


@pytest.fixture
async def browser_like(sessions, clock):
    app = create_app(RouterSettings(), sessions=sessions, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as client:
        yield client


# the views of patient data; the log-ins before them are security events on the same log
PATIENT_DATA_VIEWS = select(access_log).where(
    access_log.c.kind.in_(["payload-view", "personnummer-search"])
)


def test_passwords_are_salted_argon2id_hashes():
    one, two = hash_password("correct horse"), hash_password("correct horse")
    assert one != two and one.startswith("$argon2id$")
    assert verify_password("correct horse", one)
    assert not verify_password("wrong horse", one)
    assert not verify_password("correct horse", "scrypt$garbage")


async def test_a_cookie_that_names_no_stored_session_is_refused(browser_like):
    # the old signed cookies, a guess, a stored session's id changed by one character
    await log_in(browser_like)
    good = browser_like.cookies[console_sessions.COOKIE]
    for cookie in ("e30.0000", "x" * 43, good[:-1] + ("A" if good[-1] != "A" else "B")):
        browser_like.cookies.set(console_sessions.COOKIE, cookie, path="/console")
        assert (await browser_like.get("/console/")).status_code == 303
    browser_like.cookies.set(console_sessions.COOKIE, good, path="/console")
    assert (await browser_like.get("/console/")).status_code == 200


def test_authenticate_knows_only_the_configured_accounts():
    users = RouterSettings().console_users
    ops = authenticate(users, "ops", SANDBOX_PASSWORDS["ops"])
    assert ops is not None and ops.role is Role.OPERATOR
    assert authenticate(users, "ops", "nope") is None
    assert authenticate(users, "nobody", SANDBOX_PASSWORDS["ops"]) is None


def test_the_sandbox_accounts_and_secret_are_refused_in_production():
    with pytest.raises(ValueError, match="ROUTER_CONSOLE_SECRET: holds a published sandbox"):
        RouterSettings(
            environment="production",
            ops_token="a-real-token-of-some-length-0123456789",
            pseudonym_key="a-real-pseudonym-key-of-length-0123456789",
        )


def test_every_label_exists_in_swedish_and_english():
    assert all(sv.strip() and en.strip() for sv, en in LABELS.values())


async def test_pages_need_a_log_in_and_a_wrong_password_is_refused(browser_like):
    res = await browser_like.get("/console/messages?state=sent")
    assert res.status_code == 303
    assert res.headers["location"] == "/console/login?next=%2Fconsole%2Fmessages%3Fstate%3Dsent"
    bad = await browser_like.post("/console/login", data={"user": "ops", "password": "x"})
    assert bad.status_code == 401 and "Fel användarnamn eller lösenord" in bad.text
    assert console_sessions.COOKIE not in bad.cookies


async def test_the_session_cookie_is_httponly_and_strict(browser_like):
    res = await browser_like.post(
        "/console/login", data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"]}
    )
    cookie = res.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie


async def test_the_dashboard_shows_states_destinations_and_open_incidents(browser_like, seeded):
    await log_in(browser_like)
    page = (await browser_like.get("/console/")).text
    assert found(r'<tr class="state-dead_letter">.*?<td>(\d+)</td>', page) == "1"
    assert "treserva" in page and "primary-care" in page
    api = (
        await browser_like.get(
            "/api/v1/dashboard", headers={"authorization": "Bearer sandbox-ops-token"}
        )
    ).json()
    assert {(a["kind"], a["destination"]) for a in api["incidents"]} == {
        ("delivery_failed", "treserva"),
        ("confirmation_overdue", "treserva"),
        ("confirmation_overdue", "primary-care"),  # B and C were never confirmed there
    }
    assert page.count('id="incident-') == api["openIncidents"] == 3
    assert api["states"]["dead_letter"] == 1


async def test_search_filters_and_the_message_timeline(browser_like, seeded):
    await log_in(browser_like)
    dead = (await browser_like.get("/console/messages?state=dead_letter")).text
    assert seeded.dead in dead and seeded.confirmed not in dead
    by_key = await browser_like.get(f"/console/messages?business_key={seeded.business_key_a}")
    assert seeded.confirmed in by_key.text and seeded.dead not in by_key.text
    detail = (await browser_like.get(f"/console/messages/{seeded.dead}")).text
    assert "fatal-error" in detail and "pending → dispatched" in detail
    assert 'action="/console/messages/' + seeded.dead + '/replay"' in detail
    bad = await browser_like.get("/console/messages?since=yesterday")
    assert bad.status_code == 422 and "not a date or time" in bad.text


async def test_a_personnummer_search_is_logged_with_its_reason_before_it_runs(
    browser_like, seeded, sessions
):
    csrf = await log_in(browser_like)
    res = await browser_like.post(
        "/console/messages/by-personnummer",
        data={"personnummer": seeded.personnummer, "reason": "Hemtjänsten ringde", "csrf": csrf},
    )
    assert res.status_code == 303
    assert res.headers["location"] == f"/console/messages?pseudonym={seeded.pseudonym_b}"
    found = (await browser_like.get(res.headers["location"])).text
    assert seeded.dead in found and seeded.confirmed not in found
    assert seeded.personnummer not in found
    async with sessions() as s:
        (entry,) = (await s.execute(PATIENT_DATA_VIEWS)).all()
    assert (entry.actor, entry.kind, entry.pseudonym, entry.reason) == (
        "ops",
        "personnummer-search",
        seeded.pseudonym_b,
        "Hemtjänsten ringde",
    )
    wrong = await browser_like.post(
        "/console/messages/by-personnummer",
        data={"personnummer": "191212121213", "reason": "test", "csrf": csrf},
    )
    assert wrong.status_code == 422 and "Luhn" in wrong.text


async def test_opening_a_payload_needs_a_reason_and_is_logged(browser_like, seeded, sessions):
    csrf = await log_in(browser_like)
    url = f"/console/messages/{seeded.confirmed}/payload"
    assert (await browser_like.post(url, data={"reason": "x", "csrf": csrf})).status_code == 422
    async with sessions() as s:
        assert (await s.execute(PATIENT_DATA_VIEWS)).all() == []
    shown = await browser_like.post(url, data={"reason": "Kontroll av avvikelse", "csrf": csrf})
    assert shown.status_code == 200 and '"resourceType": "Bundle"' in shown.text
    async with sessions() as s:
        (entry,) = (await s.execute(PATIENT_DATA_VIEWS)).all()
        stored = await s.scalar(select(message.c.pseudonym).where(message.c.id == seeded.confirmed))
    assert (entry.kind, entry.message_id, entry.pseudonym) == (
        "payload-view",
        seeded.confirmed,
        stored,
    )
    audit = (await browser_like.get("/console/audit")).text
    assert "Kontroll av avvikelse" in audit


async def test_forms_without_the_session_csrf_token_are_refused(browser_like, seeded):
    await log_in(browser_like)
    res = await browser_like.post(
        f"/console/messages/{seeded.dead}/replay", data={"reason": "fixed", "csrf": "0" * 32}
    )
    assert res.status_code == 403
    assert res.headers["content-type"].startswith("text/html") and "reload it" in res.text
    api = await browser_like.get("/api/v1/messages/nope", headers={"authorization": "Bearer x"})
    assert api.status_code == 401 and api.headers["content-type"] == "application/problem+json"


async def test_a_viewer_sees_metadata_but_cannot_replay_or_open_a_payload(browser_like, seeded):
    csrf = await log_in(browser_like, "viewer")
    detail = (await browser_like.get(f"/console/messages/{seeded.dead}")).text
    assert "/replay" not in detail and "Din roll får inte göra detta" in detail
    for path in (
        f"/console/messages/{seeded.dead}/replay",
        f"/console/messages/{seeded.dead}/payload",
    ):
        res = await browser_like.post(path, data={"reason": "curious", "csrf": csrf})
        assert res.status_code == 403


async def test_replay_acknowledge_and_resolve_from_the_console(browser_like, seeded, sessions):
    csrf = await log_in(browser_like)
    res = await browser_like.post(
        f"/console/messages/{seeded.dead}/replay",
        data={"reason": "Treserva rättade enheten", "csrf": csrf},
    )
    assert res.status_code == 303 and "replayed+1" in res.headers["location"]
    detail = (await browser_like.get(res.headers["location"])).text
    assert "replayed 1" in detail and "dead_letter → pending" in detail
    incidents = (await browser_like.get("/console/incidents?state=open")).text
    first = found(r'id="incident-(\d+)"', incidents)
    ack = await browser_like.post(
        f"/console/incidents/{first}/acknowledge", data={"note": "Jag tar den", "csrf": csrf}
    )
    assert ack.status_code == 303
    again = await browser_like.post(
        f"/console/incidents/{first}/acknowledge", data={"note": "Jag tar den", "csrf": csrf}
    )
    assert again.status_code == 409
    done = await browser_like.post(
        f"/console/incidents/{first}/resolve", data={"note": "Åtgärdat", "csrf": csrf}
    )
    assert done.status_code == 303
    listed = (await browser_like.get("/console/incidents?state=resolved")).text
    assert f'id="incident-{first}"' in listed and "Åtgärdat" in listed


async def test_deviations_page_and_its_exports(browser_like, seeded):
    await log_in(browser_like)
    page = (await browser_like.get("/console/deviations")).text
    assert "delivery_failed" in page and 'id="export-csv"' in page
    csv_export = await browser_like.get("/console/deviations/export.csv")
    assert csv_export.headers["content-type"].startswith("text/csv")
    assert csv_export.content.startswith(b"\xef\xbb\xbf")
    assert (await browser_like.get("/console/deviations?month=2026-13")).status_code == 422


async def test_english_labels_on_request(browser_like, seeded):
    await log_in(browser_like)
    page = await browser_like.get("/console/?lang=en")
    assert "Deliveries by state" in page.text and '<html lang="en">' in page.text
    assert "Leveranser per status" in (await browser_like.get("/console/?lang=sv")).text


async def test_free_text_is_escaped(browser_like, seeded, sessions):
    csrf = await log_in(browser_like)
    await browser_like.post(
        f"/console/messages/{seeded.dead}/replay",
        data={"reason": "<script>alert(1)</script>", "csrf": csrf},
    )
    audit = (await browser_like.get("/console/audit")).text
    assert "<script>alert(1)</script>" not in audit
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in audit


class FixedLag:
    def __init__(self, lag):
        self._lag = lag

    async def lag(self):
        if isinstance(self._lag, Exception):
            raise self._lag
        return self._lag


async def test_the_dashboard_shows_each_destinations_consumer_lag_or_says_unknown(
    sessions, clock, seeded
):
    from services.messaging import topics

    app = create_app(RouterSettings(), sessions=sessions, clock=clock)
    app.state.consumer_lag = FixedLag(
        {
            ("adapter_treserva.treserva", topics.outbound("treserva")): 7,
            ("router", topics.INBOUND): 3,
        }
    )
    token = {"authorization": "Bearer sandbox-ops-token"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=token
    ) as client:
        found = (await client.get("/api/v1/dashboard")).json()["destinations"]
        assert {d["destination"]: d["consumerLag"] for d in found} == {
            "primary-care": 0,
            "takecare": 0,  # nothing waiting: shown, healthy
            "treserva": 7,
        }
        app.state.consumer_lag = FixedLag(ConnectionError("broker away"))
        found = (await client.get("/api/v1/dashboard")).json()["destinations"]
        assert {d["consumerLag"] for d in found} == {None}
        await log_in(client)
        assert "okänd" in (await client.get("/console/")).text


@pytest.mark.security
async def test_a_pruned_payload_is_shown_as_pruned_and_its_metadata_stays(
    browser_like, seeded, sessions, clock
):
    from services.router.audit.retention import prune_payloads

    clock.advance(91 * 24 * 3600)
    async with sessions.begin() as s:
        assert await prune_payloads(s, clock(), retention=timedelta(days=90)) >= 1
    csrf = await log_in(browser_like)
    page = await browser_like.post(
        f"/console/messages/{seeded.confirmed}/payload",
        data={"reason": "Kontroll efter lagringstid", "csrf": csrf},
    )
    assert page.status_code == 200 and 'id="payload-pruned"' in page.text
    assert '"resourceType": "Bundle"' not in page.text
    assert 'id="deliveries"' in page.text and "confirmed" in page.text  # metadata stays
    async with sessions() as s:
        (entry,) = (await s.execute(PATIENT_DATA_VIEWS)).all()
    assert entry.message_id == seeded.confirmed


async def test_the_dashboard_tells_of_a_clock_jump_while_alerts_are_held(
    browser_like, sessions, clock
):
    """Issue 17: a jump of the wall clock is shown on the dashboard, newest first, with the
    timers it moved and, while it lasts, until when new alerts are held; a day later the
    section is gone."""
    await log_in(browser_like)
    assert 'id="clock-jumps"' not in (await browser_like.get("/console/")).text
    async with sessions.begin() as s:
        await s.execute(
            clock_jump.insert(),
            [
                {
                    "detected_at": clock() - timedelta(hours=3),
                    "seconds": -1800.0,
                    "boot_id": "host-a",
                    "timers_moved": 2,
                    "alerts_held_until": clock() - timedelta(hours=2, minutes=45),
                },
                {
                    "detected_at": clock() - timedelta(minutes=1),
                    "seconds": 7200.0,
                    "boot_id": "host-a",
                    "timers_moved": 8,
                    "alerts_held_until": clock() + timedelta(minutes=14),
                },
            ],
        )
    page = (await browser_like.get("/console/")).text
    section = found(r'(<section aria-labelledby="jump-h" id="clock-jumps">.*?</section>)', page)
    items = re.findall(r"<li>(.*?)</li>", section, re.S)
    assert len(items) == 2
    newest, older = items
    assert "+7200 s" in newest and "flyttade tidsgränser: 8" in newest
    assert "nya larm väntar till" in newest  # still held
    assert "-1800 s" in older and "flyttade tidsgränser: 2" in older
    assert "nya larm väntar till" not in older  # its hold is over
    clock.advance(25 * 3600)
    assert 'id="clock-jumps"' not in (await browser_like.get("/console/")).text
