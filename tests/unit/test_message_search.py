"""Message search (services/router/ops/message_search.py): every filter, keyset pagination that
walks every row exactly once in order (ties on received_at included), cursors refused with a
422 over the API, and an index (not a sort) behind the newest-first page on SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from services.router.ops.app import create_app
from services.router.ops.message_search import (
    InvalidCursor,
    MessageQuery,
    decode_cursor,
    encode_cursor,
    page_statement,
    search_messages,
)
from services.router.routing.tables import delivery, message
from services.router.settings import RouterSettings
from tests.support.database import backend_name

TOKEN = {"authorization": "Bearer sandbox-ops-token"}
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
FAMILIES = ("admission-notice", "discharge-notice", "medication-list")
STATES = ("confirmed", "confirmed", "dead_letter", "pending", "sent")


@dataclass(frozen=True)
class Seeded:
    id: str
    received_at: datetime
    event_code: str
    source: str
    pseudonym: str
    business_key: str
    deliveries: dict[str, str]  # destination → state


def _facts() -> list[Seeded]:
    """31 messages, three at a time sharing one received_at (ties), each with one or two
    deliveries in a mix of states."""
    out = []
    for n in range(31):
        deliveries = {"treserva": STATES[n % 5]}
        if n % 3 != 2:
            deliveries["primary-care"] = STATES[(n + 2) % 5]
        out.append(
            Seeded(
                id=f"00000000-0000-4000-8000-{n * 7919 % 1000:012d}",  # id order ≠ insert order
                received_at=T0 + timedelta(hours=n // 3),
                event_code=FAMILIES[n % 3],
                source="treserva" if n % 4 == 0 else "takecare",
                pseudonym=f"{n % 6:032x}",
                business_key=f"takecare|ev-{n}|1",
                deliveries=deliveries,
            )
        )
    return out


FACTS = _facts()


def newest_first(rows: list[Seeded]) -> list[str]:
    return [r.id for r in sorted(rows, key=lambda r: (r.received_at, r.id), reverse=True)]


@pytest.fixture
async def seeded(sessions):
    async with sessions.begin() as s:
        for f in FACTS:
            await s.execute(
                message.insert().values(
                    id=f.id,
                    event_code=f.event_code,
                    source=f.source,
                    pseudonym=f.pseudonym,
                    business_key=f.business_key,
                    sent_at=f.received_at,
                    received_at=f.received_at,
                    payload="{}",
                )
            )
            for destination, state in f.deliveries.items():
                await s.execute(
                    delivery.insert().values(
                        message_id=f.id,
                        destination=destination,
                        state=state,
                        attempts=1,
                        confirm_by=f.received_at + timedelta(minutes=15),
                        created_at=f.received_at,
                        updated_at=f.received_at,
                    )
                )
    return FACTS


async def walk(sessions, query: MessageQuery, limit: int) -> list[str]:
    """Every page until the cursor runs out; each page at most ``limit`` long."""
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        async with sessions() as s:
            page = await search_messages(s, query, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += [m["id"] for m in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    pytest.fail("pagination never ended")


CASES = {
    "nothing": (MessageQuery(), lambda f: True),
    "family": (
        MessageQuery(event_code="discharge-notice"),
        lambda f: f.event_code == "discharge-notice",
    ),
    "source": (MessageQuery(source="treserva"), lambda f: f.source == "treserva"),
    "destination": (
        MessageQuery(destination="primary-care"),
        lambda f: "primary-care" in f.deliveries,
    ),
    "state dead_letter": (
        MessageQuery(state="dead_letter"),
        lambda f: "dead_letter" in f.deliveries.values(),
    ),
    "state confirmed": (
        MessageQuery(state="confirmed"),
        lambda f: "confirmed" in f.deliveries.values(),
    ),
    "destination in state": (
        MessageQuery(destination="treserva", state="pending"),
        lambda f: f.deliveries.get("treserva") == "pending",
    ),
    "pseudonym": (MessageQuery(pseudonym=f"{2:032x}"), lambda f: f.pseudonym == f"{2:032x}"),
    "business key": (
        MessageQuery(business_key="takecare|ev-7|1"),
        lambda f: f.business_key == "takecare|ev-7|1",
    ),
    "time range": (
        MessageQuery(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5)),
        lambda f: T0 + timedelta(hours=2) <= f.received_at < T0 + timedelta(hours=5),
    ),
    "combined": (
        MessageQuery(
            since=T0 + timedelta(hours=1),
            event_code="admission-notice",
            source="takecare",
            destination="treserva",
            state="confirmed",
        ),
        lambda f: (
            f.received_at >= T0 + timedelta(hours=1)
            and f.event_code == "admission-notice"
            and f.source == "takecare"
            and f.deliveries.get("treserva") == "confirmed"
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_filter_finds_exactly_its_messages_newest_first(sessions, seeded, case):
    query, keep = CASES[case]
    expected = newest_first([f for f in seeded if keep(f)])
    assert expected, "the seed must give every filter something to find"
    async with sessions() as s:
        page = await search_messages(s, query, limit=100)
    assert [m["id"] for m in page.items] == expected
    assert page.next_cursor is None


@pytest.mark.parametrize("case", ["nothing", "state dead_letter", "destination", "combined"])
@pytest.mark.parametrize("limit", [1, 4, 31])
async def test_cursors_walk_every_row_once_in_order_across_ties(sessions, seeded, case, limit):
    query, keep = CASES[case]
    assert await walk(sessions, query, limit) == newest_first([f for f in seeded if keep(f)])


async def test_each_item_carries_its_deliveries(sessions, seeded):
    async with sessions() as s:
        page = await search_messages(s, MessageQuery(business_key="takecare|ev-0|1"))
    (item,) = page.items
    assert {d["destination"]: d["state"] for d in item["deliveries"]} == FACTS[0].deliveries
    assert item["received_at"] == FACTS[0].received_at.isoformat()
    assert "payload" not in item


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        encode_cursor(T0, "x")[:-3],
        "WzEsMl0",  # [1,2]
        "WyIyMDI2LTExLTAxVDA4OjAwOjAwIiwgIngiXQ",  # a naive time
    ],
)
def test_a_cursor_this_module_did_not_write_is_refused(cursor):
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_a_cursor_round_trips():
    assert decode_cursor(encode_cursor(T0, "abc")) == (T0, "abc")


@pytest.fixture
async def api(sessions):
    app = create_app(RouterSettings(), sessions=sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=TOKEN
    ) as client:
        yield client


async def test_the_api_pages_with_next_and_refuses_a_bad_cursor(api, seeded):
    params = {"destination": "treserva", "state": "dead_letter", "limit": 2}
    seen, cursor = [], None
    while True:
        res = await api.get(
            "/api/v1/messages", params=params | ({"cursor": cursor} if cursor else {})
        )
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["count"] == len(body["items"])
        seen += [m["id"] for m in body["items"]]
        if (cursor := body["next"]) is None:
            break
    assert seen == newest_first([f for f in seeded if f.deliveries["treserva"] == "dead_letter"])
    res = await api.get("/api/v1/messages", params={"cursor": "not-a-cursor"})
    assert res.status_code == 422 and "cursor" in res.text


async def test_the_api_takes_every_filter_and_the_old_parameters(api, seeded):
    res = await api.get(
        "/api/v1/messages", params={"limit": 3, "state": "pending", "event": "medication-list"}
    )
    assert res.status_code == 200
    expected = newest_first(
        [
            f
            for f in seeded
            if f.event_code == "medication-list" and "pending" in f.deliveries.values()
        ]
    )
    assert [m["id"] for m in res.json()["items"]] == expected[:3]
    res = await api.get(
        "/api/v1/messages",
        params={
            "since": (T0 + timedelta(hours=3)).isoformat(),
            "until": (T0 + timedelta(hours=4)).isoformat(),
            "source": "takecare",
            "pseudonym": FACTS[10].pseudonym,
            "businessKey": FACTS[10].business_key,
        },
    )
    assert [m["id"] for m in res.json()["items"]] == [FACTS[10].id]
    assert res.json()["next"] is None
    assert (await api.get("/api/v1/messages", params={"state": "lost"})).status_code == 422
    naive = {"since": "2026-11-01T08:00:00"}
    assert (await api.get("/api/v1/messages", params=naive)).status_code == 422
    assert (await api.get("/api/v1/messages", headers={"authorization": ""})).status_code == 401


@pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite's EXPLAIN QUERY PLAN")
async def test_the_newest_first_page_reads_an_index_not_a_sort(engine):
    sql = str(
        page_statement(MessageQuery(), limit=51).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
    )

    async def plan() -> str:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
        return "\n".join(str(r[-1]) for r in rows)

    with_index = await plan()
    assert "USING INDEX ix_message_received" in with_index, with_index
    assert "TEMP B-TREE" not in with_index, with_index
    async with engine.begin() as conn:  # the same check without the index must fail
        await conn.execute(text("DROP INDEX ix_message_received"))
    await engine.dispose()  # drop cached statements along with the connection
    assert "USE TEMP B-TREE FOR ORDER BY" in await plan()
