"""Speed of the router's dispatch query against a large backlog, on SQLite and PostgreSQL.

    .venv/bin/python bench/dispatch_speed.py [--pending 120000] [--patients 2000]
                                             [--repeat 10] [--backends sqlite,postgresql]
                                             [--pg-url URL]

A destination outage or a burst leaves a backlog of pending deliveries; while it drains the
router runs ``due_deliveries`` (services.router.routing.deliveries) once per Kafka results
batch, for that batch's patients, and once a second as the tick's full scan. Both must stay cheap
however
large the backlog grows: in the 100k scale step of ``make bench`` the per-patient query was
quadratic in a patient's backlog and took 44 % of the router.

Seeds ``--pending`` pending deliveries (all due, spread over ``--patients`` patients and the
three destinations, with as many confirmed deliveries of the same patients as history) into a
fresh SQLite file and a fresh PostgreSQL database (``cb_bench_<hex>``, dropped afterwards),
both built by the real Alembic migrations, then times the query shapes the router runs, each
in its own transaction (rolled back, so the rows stay pending), on the router's own engine.
A trivial baseline (``SELECT 1``) runs in the same way so that a noisy, shared machine shows
in the ratios. PostgreSQL is ANALYZEd after the seed (autovacuum would do it in production).
A results batch's query is also timed with the generic held-behind test (``by_first=False``,
what both backends ran before) and checked against it: the same rows in the same order.
Writes bench/dispatch_speed.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.timing import BASELINE, scratch_database, summary, table
from services.messaging.db import make_engine, migrate
from services.router.routing.deliveries import due_deliveries
from services.router.routing.tables import delivery, message

OUT = Path(__file__).with_name("dispatch_speed.json")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DESTINATIONS = ("treserva", "takecare", "primary-care")
BATCH = 5_000
Shape = Callable[[str], Any]  # dialect → the query


def rows(pending: int, patients: int, rng: random.Random) -> tuple[list[dict[str, Any]], ...]:
    """Messages and deliveries: a confirmed history, then the backlog, in arrival order."""
    pool = [f"{rng.getrandbits(128):032x}" for _ in range(patients)]
    messages: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for state, count in (("confirmed", pending), ("pending", pending)):
        made = 0
        while made < count:
            mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            at = NOW - timedelta(hours=2) + timedelta(seconds=len(messages) * 0.01)
            messages.append(
                dict(
                    id=mid,
                    event_code="admission-notice",
                    source="takecare",
                    business_key=f"takecare|{mid}|1",
                    pseudonym=rng.choice(pool),
                    sent_at=at,
                    received_at=at,
                    payload="x" * 256,
                )
            )
            for destination in rng.sample(DESTINATIONS, 2)[: count - made]:
                deliveries.append(
                    dict(
                        message_id=mid,
                        destination=destination,
                        state=state,
                        attempts=1 if state == "confirmed" else 0,
                        next_attempt_at=at,
                        confirm_by=at + timedelta(hours=24),
                        confirmed_at=at if state == "confirmed" else None,
                        created_at=at,
                        updated_at=at,
                    )
                )
                made += 1
    return messages, deliveries


async def seed(engine: AsyncEngine, pending: int, patients: int) -> list[str]:
    messages, deliveries = rows(pending, patients, random.Random(20261202))
    started = time.perf_counter()
    async with engine.begin() as conn:
        for i in range(0, len(messages), BATCH):
            await conn.execute(insert(message), messages[i : i + BATCH])
        for i in range(0, len(deliveries), BATCH):
            await conn.execute(insert(delivery), deliveries[i : i + BATCH])
            print(f"\r  seed: {i + BATCH:>9,}/{len(deliveries):,} deliveries", end="", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    # a Kafka results batch's patients: the patients of the 100 oldest pending deliveries
    by_id = {m["id"]: m["pseudonym"] for m in messages}
    backlog = [by_id[d["message_id"]] for d in deliveries if d["state"] == "pending"]
    return list(dict.fromkeys(backlog))[:100]


def _for_patients(dialect: str, *, patients: set[str], by_first: bool) -> Any:
    return due_deliveries(dialect, NOW, patients=patients, by_first=by_first)


def shapes(batch_patients: list[str]) -> dict[str, Shape]:
    """The router's query shapes; a results batch's also with the generic held-behind test
    (``by_first=False``: what both backends ran before), to compare in the same run."""
    found: dict[str, Shape] = {
        "tick: full scan (limit 200)": lambda d: due_deliveries(d, NOW, limit=200),
        "tick: full scan, one destination closed": lambda d: due_deliveries(
            d, NOW, closed={"treserva"}, limit=200
        ),
    }
    for n in (20, 100):
        patients = set(batch_patients[:n])
        found[f"results batch: {n} patients"] = functools.partial(
            _for_patients, patients=patients, by_first=True
        )
        found[f"results batch: {n} patients, generic held test"] = functools.partial(
            _for_patients, patients=patients, by_first=False
        )
    return found


async def measure(
    engine: AsyncEngine, dialect: str, batch_patients: list[str], repeat: int
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    timed: dict[str, Shape] = {BASELINE: lambda _: text("SELECT 1")}
    timed |= shapes(batch_patients)
    for name, shape in timed.items():
        times, found = [], 0
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            async with engine.connect() as conn, conn.begin() as tx:
                found = len((await conn.execute(shape(dialect))).all())
                await tx.rollback()
            if i:  # the first run warms the cache
                times.append((time.perf_counter() - t0) * 1000)
        results[name] = {**summary(times), "rows": found}
        print(f"  {name:<52} {results[name]['median_ms']:9.2f} ms  {found:>4} rows", flush=True)
    # a results batch's query lets through the rows the generic test does, in the same order
    every = shapes(batch_patients)
    for name in [n for n in every if f"{n}, generic held test" in every]:
        async with engine.connect() as conn, conn.begin() as tx:
            ours = [r.id for r in (await conn.execute(every[name](dialect))).all()]
            generic = (await conn.execute(every[f"{name}, generic held test"](dialect))).all()
            await tx.rollback()
        results[name]["same_rows_as_generic"] = ours == [r.id for r in generic]
        if not results[name]["same_rows_as_generic"]:
            print(f"  !! {name}: {len(ours)} rows, the generic test {len(generic)}", flush=True)
    return results


async def bench(url: str, pending: int, patients: int, repeat: int) -> dict[str, Any]:
    await asyncio.to_thread(migrate, url)
    engine = make_engine(url)
    try:
        batch_patients = await seed(engine, pending, patients)
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE message"))
                await conn.execute(text("ANALYZE delivery"))
        queries = await measure(engine, engine.dialect.name, batch_patients, repeat)
        return {"pending": pending, "patients": patients, "queries": queries}
    finally:
        await engine.dispose()


async def bench_postgresql(base_url: str, pending: int, patients: int, repeat: int) -> Any:
    async with scratch_database(base_url) as url:
        return await bench(url, pending, patients, repeat)


async def run(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeat": args.repeat,
        "backends": {},
    }
    wanted = args.backends.split(",")
    if "sqlite" in wanted:
        print("sqlite: migrate, seed", flush=True)
        with tempfile.TemporaryDirectory(prefix="cb-bench-") as workdir:
            url = f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}"
            results["backends"]["sqlite"] = await bench(
                url, args.pending, args.patients, args.repeat
            )
    if "postgresql" in wanted:
        print("postgresql: migrate, seed", flush=True)
        results["backends"]["postgresql"] = await bench_postgresql(
            args.pg_url, args.pending, args.patients, args.repeat
        )
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    wrong = [
        f"{b}: {n}"
        for b, r in results["backends"].items()
        for n, q in r["queries"].items()
        if q.get("same_rows_as_generic") is False
    ]
    print(f"\nwrote {OUT}" + (f"; rows differ from the generic query: {wrong}" if wrong else ""))
    return 1 if wrong else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=120_000)
    parser.add_argument("--patients", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
