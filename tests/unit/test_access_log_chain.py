"""The access log is hash-chained: changing, removing or reordering an entry is found by
verify_chain, by the API and offline in an export; concurrent writers keep one chain."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from services.router.audit.access_log import (
    GENESIS,
    Access,
    AccessKind,
    ChainProblem,
    access_log,
    check_chain,
    record_access,
    verify_chain,
)
from services.router.audit.access_log_export import read_csv, read_jsonl
from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.database import backend_name

pytestmark = pytest.mark.security

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
AUTH = {"authorization": "Bearer sandbox-ops-token"}


def entry(n: int) -> Access:
    return Access(
        actor=f"Åsa Öberg {n}",
        role="operator",
        kind=AccessKind.PAYLOAD_VIEW,
        reason=f"patient phoned, case {n}",
        pseudonym="0" * 31 + str(n % 10),
        message_id=f"m-{n}",
    )


async def write(sessions, count: int) -> None:
    for n in range(count):
        async with sessions.begin() as s:
            await record_access(s, entry(n), now=T0 + timedelta(minutes=n))


async def tamper(sessions, statement) -> None:
    """What someone with the database's owner rights could do: get past the append-only
    triggers (PostgreSQL: replica mode; SQLite: drop them) and change the table."""
    async with sessions.begin() as s:
        if backend_name() == "postgresql":
            await s.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            await s.execute(text("DROP TRIGGER IF EXISTS access_log_no_update"))
            await s.execute(text("DROP TRIGGER IF EXISTS access_log_no_delete"))
        await s.execute(statement)


async def report(sessions):
    async with sessions() as s:
        return await verify_chain(s)


async def test_entries_are_chained_from_genesis(sessions):
    await write(sessions, 4)
    async with sessions() as s:
        rows = (await s.execute(select(access_log).order_by(access_log.c.seq))).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    found = await report(sessions)
    assert found.ok and found.checked == 4 and found.tail_hash == rows[-1].hash


async def test_a_changed_reason_is_found_at_its_row(sessions):
    await write(sessions, 5)
    await tamper(sessions, update(access_log).where(access_log.c.seq == 3).values(reason="nothing"))
    found = await report(sessions)
    assert (found.ok, found.first_bad_seq, found.problem) == (False, 3, ChainProblem.TAMPERED)
    assert found.checked == 2


async def test_a_removed_row_is_found(sessions):
    await write(sessions, 5)
    await tamper(sessions, delete(access_log).where(access_log.c.seq == 2))
    found = await report(sessions)
    assert (found.ok, found.first_bad_seq, found.problem) == (False, 2, ChainProblem.MISSING)


async def test_a_rehashed_row_still_breaks_the_next_link(sessions):
    """Recomputing the changed row's own hash does not help: the next row names the old one."""
    await write(sessions, 4)
    async with sessions() as s:
        row = (await s.execute(select(access_log).where(access_log.c.seq == 2))).one()
        from services.router.audit.access_log import entry_hash

    fields = {**row._mapping, "reason": "rewritten"}
    await tamper(
        sessions,
        update(access_log)
        .where(access_log.c.seq == 2)
        .values(reason="rewritten", hash=entry_hash(fields, row.prev_hash)),
    )
    found = await report(sessions)
    assert (found.first_bad_seq, found.problem) == (3, ChainProblem.LINK)


async def test_the_api_verifies_and_exports_for_offline_checking(sessions):
    await write(sessions, 3)
    app = create_app(RouterSettings(), sessions=sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=AUTH
    ) as client:
        ok = (await client.get("/api/v1/access-log/verify")).json()
        assert ok["ok"] is True and ok["checked"] == 3 and ok["retentionDays"] >= 5 * 365
        jsonl = await client.get("/api/v1/access-log/export.jsonl")
        csv = await client.get("/api/v1/access-log/export.csv")
        assert jsonl.status_code == csv.status_code == 200
        offline = check_chain(read_jsonl(jsonl.text))
        assert offline.ok and offline.tail_hash == ok["tailHash"]
        assert check_chain(read_csv(csv.text)).tail_hash == ok["tailHash"]

        await tamper(
            sessions, update(access_log).where(access_log.c.seq == 1).values(actor="someone else")
        )
        bad = (await client.get("/api/v1/access-log/verify")).json()
        assert (bad["ok"], bad["firstBadSeq"], bad["problem"]) == (False, 1, "tampered")
        assert check_chain(read_jsonl(jsonl.text)).ok  # the auditor's copy still proves it
        unauthenticated = await client.get(
            "/api/v1/access-log/verify", headers={"authorization": ""}
        )
        assert unauthenticated.status_code == 401


def test_an_edited_export_fails_offline():
    good = [
        {
            "seq": 1,
            "at": "2026-11-30T08:00:00.000000Z",
            "actor": "a",
            "role": "operator",
            "kind": "payload-view",
            "pseudonym": None,
            "message_id": "m",
            "reason": "why",
            "prev_hash": GENESIS,
        },
    ]
    from services.router.audit.access_log import entry_hash

    good[0]["hash"] = entry_hash(good[0], GENESIS)
    assert check_chain(good).ok
    edited = [{**good[0], "reason": "why not"}]
    assert check_chain(edited).problem is ChainProblem.TAMPERED


@pytest.mark.skipif(backend_name() != "postgresql", reason="row locking is PostgreSQL's")
async def test_concurrent_writers_keep_one_chain(sessions):
    async def writer(w: int) -> None:
        for n in range(10):
            async with sessions.begin() as s:
                await record_access(s, entry(w * 100 + n), now=T0)

    await asyncio.gather(*(writer(w) for w in range(6)))
    found = await report(sessions)
    assert found.ok and found.checked == 60


async def test_the_migration_chains_entries_written_before_it(tmp_path):
    """Upgrading from 0015 chains the existing rows in id order; the chain then verifies."""
    from alembic import command
    from sqlalchemy import insert

    from services.messaging.db import alembic_config, make_engine, session_factory

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0015")
    engine = make_engine(url)
    try:  # rows as the router wrote them before 0017: no seq, no hashes
        async with engine.begin() as conn:
            for n in range(3):
                await conn.execute(
                    insert(access_log).values(
                        at=T0 + timedelta(minutes=n),
                        actor="Åsa",
                        role="operator",
                        kind="payload-view",
                        pseudonym=None,
                        message_id=f"m-{n}",
                        reason="före kedjan",
                    )
                )
    finally:
        await engine.dispose()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    engine = make_engine(url)
    try:
        found = await report(session_factory(engine))
        assert found.ok and found.checked == 3
        async with session_factory(engine).begin() as s:
            await record_access(s, entry(9), now=T0 + timedelta(hours=1))
        assert (await report(session_factory(engine))).checked == 4
    finally:
        await engine.dispose()


async def test_the_database_refuses_to_change_or_remove_an_entry(sessions):
    await write(sessions, 2)
    for statement in (
        update(access_log).where(access_log.c.seq == 1).values(reason="x"),
        delete(access_log).where(access_log.c.seq == 2),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sessions.begin() as s:
                await s.execute(statement)
    assert (await report(sessions)).checked == 2
