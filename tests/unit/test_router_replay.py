"""Dead letters and replay: the dead-letter topic, replay by id and by filter, a fresh
attempt budget, the audit, and no resurrection of a superseded document unless forced."""

import json

import httpx
import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.db import store_keyring
from services.messaging.envelope import ResponseCode
from services.messaging.outbox import open_value, outbox
from services.router.ops import cli
from services.router.ops.app import create_app
from services.router.routing.tables import replay_audit
from services.router.settings import RouterSettings
from tests.support.router import deliveries, inbound, message_id, result, versioned

TOKEN = {"authorization": "Bearer sandbox-ops-token"}


@pytest.fixture
def clock():
    from tests.support.router import Clock

    return Clock()


@pytest.fixture
async def router(sessions, clock):
    import random
    from datetime import timedelta

    from services.router.routing.deliveries import RoutingRules
    from services.router.routing.domain import RetryPolicy, default_policies
    from services.router.routing.handlers import Router

    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
    )
    from tests.support.router import started

    return await started(Router(sessions=sessions, rules=rules, clock=clock))


async def dead(router, record):
    await router.handle_batch([record])
    await router.handle_batch([result(message_id(record), ResponseCode.FATAL_ERROR, why="422")])


@pytest.fixture
async def api(sessions, clock):
    app = create_app(RouterSettings(), sessions=sessions, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r", headers=TOKEN
    ) as client:
        yield client


async def test_a_dead_letter_goes_to_the_dead_letter_topic(router, sessions):
    rec = inbound(seed=3)
    await dead(router, rec)
    async with sessions() as s:
        (row,) = (await s.execute(select(outbox).where(outbox.c.topic == topics.DEAD_LETTER))).all()
        value = open_value(store_keyring(s), row, row.owner)
    assert row.headers["message-id"] == message_id(rec)
    assert row.headers["destination"] == "treserva" and row.headers["reason"] == "422"
    assert value == rec.value.decode()  # the message itself, for a consumer of the DLQ


async def test_replay_by_id_is_audited_and_gets_a_fresh_budget(router, sessions, api, clock):
    rec = inbound(seed=4)
    await dead(router, rec)
    res = await api.post(
        "/api/v1/replays",
        json={"messageIds": [message_id(rec)], "reason": "Treserva fixed", "operator": "Åsa"},
    )
    assert res.status_code == 200 and res.json()["replayed"] == 1
    (d,) = await deliveries(sessions)
    assert (d.state, d.attempts_at_replay) == ("pending", 1)
    await router.tick()
    for attempt in (2, 3, 4):  # max_attempts 3 again after the replay
        (d,) = await deliveries(sessions)
        assert (d.state, d.attempts) == ("dispatched", attempt)
        await router.handle_batch(
            [result(message_id(rec), ResponseCode.TRANSIENT_ERROR, attempt=attempt)]
        )
        clock.advance(20)
        await router.tick()
        (d,) = await deliveries(sessions)
    assert d.state == "dead_letter" and d.attempts == 4  # 1 before + 3 after the replay
    audit = (await api.get("/api/v1/replays")).json()["items"]
    # the body's "operator" is not who acted: the key's client is
    assert audit[0]["actor"] == "API client ops" and audit[0]["outcome"] == "replayed"


async def test_a_superseded_document_is_refused_unless_forced(router, sessions, api):
    newer, older = versioned(3), versioned(2)
    await router.handle_batch([newer])
    await router.handle_batch([result(message_id(newer), ResponseCode.OK)])
    await dead(router, older)
    body = {"messageIds": [message_id(older)], "reason": "test", "operator": "ops"}
    refused = (await api.post("/api/v1/replays", json=body)).json()
    assert refused["replayed"] == 0
    assert refused["items"][0]["detail"] == f"superseded by {message_id(newer)}"
    forced = (await api.post("/api/v1/replays", json={**body, "force": True})).json()
    assert forced["replayed"] == 1
    async with sessions() as s:
        outcomes = [(r.forced, r.outcome) for r in (await s.execute(select(replay_audit))).all()]
    assert outcomes == [(False, f"superseded by {message_id(newer)}"), (True, "replayed")]


async def test_replay_by_filter_and_refusing_an_unbounded_request(router, api):
    for seed in (5, 6):
        await dead(router, inbound(seed=seed, patient=str(seed) * 32))
    empty = await api.post("/api/v1/replays", json={"reason": "all", "operator": "ops"})
    assert empty.status_code == 422
    by_filter = await api.post(
        "/api/v1/replays",
        json={
            "destination": "treserva",
            "event": "admission-notice",
            "reason": "Treserva is back",
            "operator": "o",
        },
    )
    assert by_filter.json()["replayed"] == 2
    unauthenticated = await api.post(
        "/api/v1/replays",
        json={"destination": "treserva", "reason": "xyz", "operator": "o"},
        headers={"authorization": "Bearer nope"},
    )
    assert unauthenticated.status_code == 401


def test_the_cli_pages_through_a_filter_and_reports_refusals(capsys):
    pages = [
        {
            "replayed": 2,
            "refused": 1,
            "items": [
                {
                    "deliveryId": 1,
                    "messageId": "m1",
                    "destination": "treserva",
                    "replayed": True,
                    "detail": "replayed",
                },
                {
                    "deliveryId": 2,
                    "messageId": "m2",
                    "destination": "treserva",
                    "replayed": True,
                    "detail": "replayed",
                },
                {
                    "deliveryId": 3,
                    "messageId": "m3",
                    "destination": "treserva",
                    "replayed": False,
                    "detail": "superseded by m9",
                },
            ],
        },
        {
            "replayed": 0,
            "refused": 1,
            "items": [
                {
                    "deliveryId": 3,
                    "messageId": "m3",
                    "destination": "treserva",
                    "replayed": False,
                    "detail": "superseded by m9",
                },
            ],
        },
    ]
    seen = []

    def handler(request):
        if request.method == "GET":  # the total for the progress bar
            assert request.url.path == "/api/v1/replays/candidates"
            assert request.url.params["destination"] == "treserva"
            return httpx.Response(200, json={"count": 3})
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=pages[len(seen) - 1])

    code = cli.main(
        ["replay", "--destination", "treserva", "--reason", "back up"],
        transport=httpx.MockTransport(handler),
    )
    out = capsys.readouterr().out
    assert code == 1  # something was refused
    assert len(seen) == 2 and "operator" not in seen[0]
    assert "refused m3 → treserva: superseded by m9" in out and "done: 2 replayed, 1 refused" in out
