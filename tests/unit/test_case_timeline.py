"""The case timeline (issue 20): the router keeps each message's case id, the ops API
answers ``GET /api/v1/cases/{case_id}`` (a viewer's read, access-logged) and the console
shows the case as one timeline, linked from each message's page. The router is driven in
process with the contract fixtures of one stay, told by both journals."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sandbox.contracts_cli import FIXTURE_REGIONAL_RESERVE_OID, inbound_family
from services.messaging import topics
from services.messaging.case import stay_case_id
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.envelope import System, to_json
from services.messaging.identifiers import pseudonym
from services.messaging.kafka import IncomingRecord
from services.messaging.keys import hash_key
from services.messaging.settings import SANDBOX_PSEUDONYM_KEY
from services.router.audit.access_log import access_log
from services.router.ops.app import create_app
from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.routing.tables import message
from services.router.settings import RouterSettings
from tests.support.router import Clock

FIXTURES = CONTRACTS_DIR / "fixtures"
STAY = "VT-889301"  # one stay, as the fixtures of both journals tell it
CASE = stay_case_id(STAY)
# (journal, family, fixture, hours after the first): in the order the sources sent them
OF_THE_STAY = [
    (System.TAKECARE, "admission-notice", "protected-identity", 0),
    (System.TRESERVA, "admission-answer", "hemtjanst-hemsjukvard-kontakt-med-hsa", 1),
    (System.TAKECARE, "discharge-readiness", "reserve-number-protected-identity", 2),
    (System.TRESERVA, "ready-to-receive", "utskrivningsklar-besvarad", 3),
    (System.TAKECARE, "discharge-notice", "reserve-number-protected-identity-optional-missing", 4),
]
OTHER_STAY = (System.TAKECARE, "admission-notice", "personnummer-full", 1)
VIEWER = "viewer-key-0123456789"
CLIENTS = {"monitoring": {"role": "viewer", "key_hashes": [hash_key(VIEWER)]}}
_offsets = iter(range(10**9))


def _record(source: System, family: str, name: str, hours: int, clock: Clock) -> IncomingRecord:
    doc: Any = json.loads(
        (FIXTURES / source.value / family / f"{name}.input.json").read_text(encoding="utf-8")
    )
    inbound = inbound_family(source, family)
    assert inbound is not None
    region = FIXTURE_REGIONAL_RESERVE_OID
    sent = clock() - timedelta(hours=10) + timedelta(hours=hours)
    event = inbound.parse(doc, now=sent, regional_reserve_oid=region)
    bundle = to_json(inbound.to_bundle(event, now=sent, regional_reserve_oid=region))
    key = pseudonym(SANDBOX_PSEUDONYM_KEY, event.patient_identifier().in_region(region))
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), key, bundle.encode(), {})


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _router(sessions, clock) -> Router:
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(hours=6),
        rng=random.Random(1),
    )
    router = Router(sessions=sessions, rules=rules, clock=clock)
    await router.sync_subscriptions()
    return router


@pytest.fixture
async def case_log(sessions, clock) -> dict[str, Any]:
    router = await _router(sessions, clock)
    records = [_record(*item, clock) for item in OF_THE_STAY]
    other = _record(*OTHER_STAY, clock)
    # received out of the order they were sent: the timeline follows the sources' clocks
    for batch in ([records[3], other], [records[1], records[4]], [records[0], records[2]]):
        await router.handle_batch(batch)
        clock.advance(60)
    await router.tick()
    return {
        "ids": [json.loads(r.value)["entry"][0]["resource"]["id"] for r in records],
        "other": json.loads(other.value)["entry"][0]["resource"]["id"],
        "pseudonyms": {r.key for r in records},
    }


@pytest.fixture
async def client(sessions, clock):
    settings = RouterSettings.model_validate({"api_clients": CLIENTS})
    app = create_app(settings, sessions=sessions, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as http:
        yield http


async def _case_views(sessions) -> list[Any]:
    async with sessions() as s:
        return list(
            (
                await s.execute(
                    select(access_log)
                    .where(access_log.c.kind == "case-view")
                    .order_by(access_log.c.seq)
                )
            ).all()
        )


async def test_the_router_keeps_each_messages_case_id(sessions, case_log):
    async with sessions() as s:
        rows = dict((await s.execute(select(message.c.id, message.c.case_id))).all())
    assert {rows[i] for i in case_log["ids"]} == {CASE}
    assert rows[case_log["other"]] == stay_case_id("VT-889123") != CASE


async def test_the_case_api_lists_the_stay_in_order_and_logs_the_view(sessions, case_log, client):
    res = await client.get(f"/api/v1/cases/{CASE}", headers={"authorization": f"Bearer {VIEWER}"})
    assert res.status_code == 200, res.text
    assert res.headers["cache-control"] == "no-store"
    body = res.json()
    assert body["case_id"] == CASE and body["count"] == len(OF_THE_STAY)
    assert [m["id"] for m in body["items"]] == case_log["ids"]  # sent order, not received
    assert [m["event_code"] for m in body["items"]] == [
        "admission-notice",
        "admission-answer",
        "ready-for-discharge",
        "ready-to-receive",
        "discharge-notice",
    ]
    assert all(m["case_id"] == CASE for m in body["items"])
    first = body["items"][0]
    assert {d["destination"] for d in first["deliveries"]} >= {"treserva"}
    assert all(d["state"] and "working_due_at" in d for d in first["deliveries"])
    assert case_log["other"] not in res.text
    # one entry per patient the case's messages name (the fixtures of this stay were written
    # for different test patients; a real stay names one)
    entries = await _case_views(sessions)
    assert {e.pseudonym for e in entries} == case_log["pseudonyms"]
    assert len(entries) == len(case_log["pseudonyms"])
    for entry in entries:
        assert (entry.actor, entry.role, entry.message_id) == (
            "API client monitoring",
            "viewer",
            None,
        )
        assert CASE in entry.reason


async def test_the_case_api_needs_a_key_and_a_case_id_and_logs_no_miss(sessions, client):
    auth = {"authorization": f"Bearer {VIEWER}"}
    assert (await client.get(f"/api/v1/cases/{CASE}")).status_code == 401
    assert (await client.get(f"/api/v1/cases/{CASE}", headers=auth)).status_code == 404
    bad = await client.get("/api/v1/cases/VT-889301-not-a-uuid-but-36-chars!", headers=auth)
    assert bad.status_code == 422
    assert await _case_views(sessions) == []


async def _log_in(http: httpx.AsyncClient, user: str) -> None:
    res = await http.post(
        "/console/login",
        data={"user": user, "password": SANDBOX_PASSWORDS[user], "next": "/console/"},
    )
    assert res.status_code == 303, res.text


async def test_the_console_shows_the_case_as_one_timeline(sessions, case_log, client):
    await _log_in(client, "viewer")
    detail = await client.get(f"/console/messages/{case_log['ids'][2]}")
    assert f'href="/console/cases/{CASE}"' in detail.text  # each message links its case
    page = await client.get(f"/console/cases/{CASE}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    links = [page.text.index(f'href="/console/messages/{i}"') for i in case_log["ids"]]
    assert links == sorted(links)  # every message of the stay, in the order it was sent
    assert case_log["other"] not in page.text
    assert "Ärendets tidslinje" in page.text and "Mottagande enhet" in page.text
    english = await client.get(f"/console/cases/{CASE}?lang=en")
    assert "Case timeline" in english.text and "Receiving unit" in english.text
    views = await _case_views(sessions)
    assert [(v.actor, v.role) for v in views] == [("viewer", "viewer")] * 2 * len(
        case_log["pseudonyms"]
    )
    assert (await client.get(f"/console/cases/{stay_case_id('VT-0')}")).status_code == 404
    assert (await client.get("/console/cases/not-a-case")).status_code == 404
    assert len(await _case_views(sessions)) == len(views)


async def test_a_message_of_no_stay_says_so_on_its_page(sessions, client, clock):
    record = _record(System.TAKECARE, "sip-update", "completed-optional-missing", 0, clock)
    await (await _router(sessions, clock)).handle_batch([record])
    await _log_in(client, "viewer")
    message_id = json.loads(record.value)["entry"][0]["resource"]["id"]
    page = await client.get(f"/console/messages/{message_id}")
    assert page.status_code == 200
    assert "/console/cases/" not in page.text and "hör inte till något vårdtillfälle" in page.text
