"""Speed of the ops queries (message search and the dashboard) at a year's volume.

    .venv/bin/python bench/query_speed.py [--deliveries 1000000] [--repeat 20]
                                          [--backends sqlite,postgresql] [--pg-url URL]

Seeds ``--deliveries`` delivery rows with their messages (about 540k messages: hospital
messages go to Treserva and primary care, municipal ones to TakeCare; see
services.messaging.families) into a fresh SQLite file and a fresh PostgreSQL database
(``cb_bench_<hex>``, dropped afterwards), both built by the real Alembic migrations. The data
is synthetic: received times spread over a year, a realistic family mix, pseudonyms drawn from
50,000 random 32-hex strings (never a personnummer), deliveries mostly confirmed, 1 % dead
letters over the whole year and unfinished work only in the last two days. Payloads are 256
bytes of filler (real bundles are larger; only a scan of the message table would feel it).

Every query goes through the router's own functions (``search_messages``, ``state_counts``,
``destination_health``) on the router's own engine (``make_engine``), one session per call as
the API does, warm cache, ``--repeat`` timed runs after one untimed. A trivial baseline
(``SELECT 1`` and a primary-key lookup) runs in the same session so that a noisy, shared
machine shows up in the ratios. PostgreSQL is ANALYZEd after the seed (autovacuum would do it
in production); SQLite is not, because the router never runs ANALYZE. Writes
bench/query_speed.json and prints a table; the goal is < 200 ms median per query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.timing import scratch_database, summary, table
from services.messaging.db import make_engine, migrate, session_factory
from services.messaging.envelope import EventCode, System
from services.messaging.families import destinations
from services.router.ops.dashboard import overview
from services.router.ops.message_search import MessageQuery, search_messages
from services.router.ops.queries import destination_health, state_counts
from services.router.routing.tables import message

OUT = Path(__file__).with_name("query_speed.json")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
BATCH = 50_000
# (source, event code, weight): what a region's year of care transitions roughly looks like
MIX = (
    (System.TAKECARE, EventCode.ADMISSION_NOTICE, 22),
    (System.TAKECARE, EventCode.ADMISSION_NOTICE_UPDATED, 8),
    (System.TAKECARE, EventCode.ADMISSION_NOTICE_CANCELLED, 2),
    (System.TAKECARE, EventCode.READY_FOR_DISCHARGE, 16),
    (System.TAKECARE, EventCode.READY_FOR_DISCHARGE_WITHDRAWN, 1),
    (System.TAKECARE, EventCode.DISCHARGE_NOTICE, 16),
    (System.TAKECARE, EventCode.MEDICATION_LIST, 12),
    (System.TAKECARE, EventCode.SIP_INVITATION, 5),
    (System.TRESERVA, EventCode.SIP_CREATED, 5),
    (System.TRESERVA, EventCode.SIP_UPDATED, 5),
    (System.TRESERVA, EventCode.SIP_COMPLETED, 3),
    (System.TRESERVA, EventCode.MEDICATION_LIST, 5),
)
MESSAGE_COLUMNS = (
    "id", "event_code", "source", "business_key", "pseudonym", "sent_at", "received_at",
    "payload",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "message_id", "destination", "state", "attempts", "confirm_by", "sent_at", "confirmed_at",
    "created_at", "updated_at", "attempts_at_replay", "legal_stage",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Seed:
    """Facts of the seeded data the queries need (an existing pseudonym and business key)."""

    messages: int
    deliveries: int
    pseudonym: str
    business_key: str
    message_id: str


def generate(deliveries: int, rng: random.Random) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """Messages in arrival order, each with its delivery rows (naive UTC times)."""
    pool = [f"{rng.getrandbits(128):032x}" for _ in range(50_000)]
    weights = [w for *_, w in MIX]
    filler = "x" * 256
    start = (NOW - YEAR).replace(tzinfo=None)
    count = int(deliveries / 1.6) + 1  # ~1.85 deliveries each; the surplus is cut
    offsets = sorted(rng.random() * YEAR.total_seconds() for _ in range(count))
    made = 0
    for offset in offsets:
        if made >= deliveries:
            return
        source, event, _ = rng.choices(MIX, weights)[0]
        received = start + timedelta(seconds=offset)
        recent = (NOW.replace(tzinfo=None) - received) < timedelta(days=2)
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        row = (
            mid, event.value, source.value, f"{source.value}|{mid}|1", rng.choice(pool),
            received - timedelta(seconds=1), received, filler,
        )  # fmt: skip
        out = []
        for destination in destinations(event.value, source.value)[: deliveries - made]:
            roll = rng.random()
            if recent and roll < 0.3:
                state = rng.choice(("pending", "dispatched", "sent"))
            elif roll > 0.99:
                state = "dead_letter"
            else:
                state = "confirmed"
            done = received + timedelta(seconds=rng.uniform(1, 90))
            out.append(
                (
                    mid, destination.value, state, 1, received + timedelta(hours=24),
                    done if state in ("sent", "confirmed") else None,
                    done if state == "confirmed" else None,
                    received, done, 0, 0,
                )
            )  # fmt: skip
            made += 1
        yield row, out


def progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r  {label}: {done:>9,}/{total:,} deliveries ({rate:,.0f}/s)", end="", flush=True)


def batches(deliveries: int) -> Iterator[tuple[list[tuple[Any, ...]], list[Any]]]:
    rng = random.Random(20261201)
    messages: list[tuple[Any, ...]] = []
    rows: list[Any] = []
    for m, ds in generate(deliveries, rng):
        messages.append(m)
        rows += ds
        if len(rows) >= BATCH:
            yield messages, rows
            messages, rows = [], []
    if rows:
        yield messages, rows


def _sqlite_time(value: datetime | None) -> str | None:
    # SQLAlchemy's storage format for DateTime on SQLite
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def seed_sqlite(path: str, deliveries: int) -> Seed:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # the seed only: the router's engine sets NORMAL
    m_sql = f"INSERT INTO message ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * 8)})"  # noqa: S608
    d_sql = f"INSERT INTO delivery ({', '.join(DELIVERY_COLUMNS)}) VALUES ({', '.join('?' * 11)})"  # noqa: S608
    started, n_m, n_d = time.perf_counter(), 0, 0
    last: tuple[Any, ...] = ()
    for messages, rows in batches(deliveries):
        conn.executemany(
            m_sql, [(*m[:5], _sqlite_time(m[5]), _sqlite_time(m[6]), m[7]) for m in messages]
        )
        conn.executemany(
            d_sql,
            [(*d[:4], *(_sqlite_time(t) for t in d[4:9]), *d[9:]) for d in rows],
        )
        conn.commit()
        n_m, n_d, last = n_m + len(messages), n_d + len(rows), messages[len(messages) // 2]
        progress("sqlite", n_d, deliveries, started)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.close()
    print(f"  ({time.perf_counter() - started:.0f} s)")
    return Seed(n_m, n_d, last[4], last[3], last[0])


async def seed_postgresql(url: str, deliveries: int) -> Seed:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, database=parsed.database,
    )  # fmt: skip
    started, n_m, n_d = time.perf_counter(), 0, 0
    last: tuple[Any, ...] = ()
    try:
        for messages, rows in batches(deliveries):
            await conn.copy_records_to_table("message", records=messages, columns=MESSAGE_COLUMNS)
            await conn.copy_records_to_table("delivery", records=rows, columns=DELIVERY_COLUMNS)
            n_m, n_d, last = n_m + len(messages), n_d + len(rows), messages[len(messages) // 2]
            progress("postgresql", n_d, deliveries, started)
        print(f"  ({time.perf_counter() - started:.0f} s), ANALYZE", flush=True)
        await conn.execute("ANALYZE message")
        await conn.execute("ANALYZE delivery")
    finally:
        await conn.close()
    return Seed(n_m, n_d, last[4], last[3], last[0])


Query = Callable[[AsyncSession], Awaitable[Any]]


async def cursor_at_page(sessions: async_sessionmaker[AsyncSession], page: int) -> str | None:
    cursor = None
    async with sessions() as s:
        for _ in range(page - 1):
            cursor = (await search_messages(s, MessageQuery(), cursor=cursor)).next_cursor
    return cursor


def queries(seed: Seed, page50: str | None) -> dict[str, Query]:
    day = NOW - timedelta(days=180)

    def search(query: MessageQuery, cursor: str | None = None) -> Query:
        async def run(s: AsyncSession) -> Any:
            page = await search_messages(s, query, limit=50, cursor=cursor)
            return len(page.items)

        return run

    async def select_1(s: AsyncSession) -> Any:
        return (await s.execute(text("SELECT 1"))).scalar()

    async def by_key(s: AsyncSession) -> Any:
        return (await s.execute(select(message.c.id).where(message.c.id == seed.message_id))).all()

    return {
        "baseline: SELECT 1": select_1,
        "baseline: message by primary key": by_key,
        "first page, no filter": search(MessageQuery()),
        "page 50 (cursor)": search(MessageQuery(), page50),
        "family admission-notice": search(MessageQuery(event_code="admission-notice")),
        "family ready-for-discharge-withdrawn (rare)": search(
            MessageQuery(event_code="ready-for-discharge-withdrawn")
        ),
        "source treserva": search(MessageQuery(source="treserva")),
        "destination primary-care": search(MessageQuery(destination="primary-care")),
        "state dead_letter": search(MessageQuery(state="dead_letter")),
        "state pending": search(MessageQuery(state="pending")),
        "state confirmed": search(MessageQuery(state="confirmed")),
        "pseudonym": search(MessageQuery(pseudonym=seed.pseudonym)),
        "business key": search(MessageQuery(business_key=seed.business_key)),
        "one day (180 days ago)": search(MessageQuery(since=day, until=day + timedelta(days=1))),
        "combined: family+destination+dead_letter+90 d": search(
            MessageQuery(
                since=NOW - timedelta(days=90),
                event_code="admission-notice",
                destination="treserva",
                state="dead_letter",
            )
        ),
        "combined: source+destination+confirmed+30 d": search(
            MessageQuery(
                since=NOW - timedelta(days=30),
                source="takecare",
                destination="primary-care",
                state="confirmed",
            )
        ),
        "dashboard: overview (last 24 h)": lambda s: overview(s, NOW),
        "dashboard: state_counts": state_counts,
        "dashboard: destination_health": destination_health,
    }


async def measure(url: str, seed: Seed, repeat: int) -> dict[str, dict[str, float]]:
    engine = make_engine(url)
    sessions = session_factory(engine)
    try:
        page50 = await cursor_at_page(sessions, 50)
        results: dict[str, dict[str, float]] = {}
        for name, run in queries(seed, page50).items():
            times = []
            for i in range(repeat + 1):
                t0 = time.perf_counter()
                async with sessions() as s:
                    await run(s)
                if i:  # the first run warms the cache
                    times.append((time.perf_counter() - t0) * 1000)
            results[name] = summary(times)
            print(f"  {name:<48} {results[name]['median_ms']:8.2f} ms", flush=True)
        return results
    finally:
        await engine.dispose()


async def bench_sqlite(deliveries: int, repeat: int, workdir: Path) -> dict[str, Any]:
    path = workdir / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate, url)
    seed = await asyncio.to_thread(seed_sqlite, str(path), deliveries)
    return {"seed": asdict(seed), "queries": await measure(url, seed, repeat)}


async def bench_postgresql(base_url: str, deliveries: int, repeat: int) -> dict[str, Any]:
    async with scratch_database(base_url) as url:
        await asyncio.to_thread(migrate, url)
        seed = await seed_postgresql(url, deliveries)
        return {"seed": asdict(seed), "queries": await measure(url, seed, repeat)}


async def run(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {
        "deliveries": args.deliveries,
        "repeat": args.repeat,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backends": {},
    }
    wanted = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as workdir:
        if "sqlite" in wanted:
            print("sqlite: migrate, seed", flush=True)
            results["backends"]["sqlite"] = await bench_sqlite(
                args.deliveries, args.repeat, Path(workdir)
            )
    if "postgresql" in wanted:
        print("postgresql: migrate, seed", flush=True)
        results["backends"]["postgresql"] = await bench_postgresql(
            args.pg_url, args.deliveries, args.repeat
        )
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    slow = [
        f"{b}: {n}"
        for b, r in results["backends"].items()
        for n, q in r["queries"].items()
        if q["median_ms"] >= 200
    ]
    print(f"\nwrote {OUT}; " + (f"over 200 ms: {', '.join(slow)}" if slow else "all under 200 ms"))
    return 1 if slow else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
