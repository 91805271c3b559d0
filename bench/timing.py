"""What the query benchmarks share: a scratch PostgreSQL database, the median and p95 of a
series of timings, and the table of both backends against their ``SELECT 1`` baseline."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

BASELINE = "baseline: SELECT 1"


@asynccontextmanager
async def scratch_database(base_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database (``cb_bench_<hex>``) beside ``base_url``'s, dropped
    afterwards even if the benchmark fails."""
    base = make_url(base_url)
    name = f"cb_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username, password=base.password,
        database=base.database,
    )  # fmt: skip
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def summary(times_ms: list[float]) -> dict[str, float]:
    """Median and p95 (nearest rank) of timed runs, in ms."""
    times = sorted(times_ms)
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 2),
    }


def table(results: dict[str, Any]) -> str:
    """Markdown: a row per query, a column per backend, × the backend's ``SELECT 1``."""
    backends = list(results["backends"])
    head = "| query | " + " | ".join(f"{b} median / p95 ms (× SELECT 1)" for b in backends) + " |"
    lines = [head, "|---" * (len(backends) + 1) + "|"]
    for name in next(iter(results["backends"].values()))["queries"]:
        cells = []
        for b in backends:
            q = results["backends"][b]["queries"]
            base, r = q[BASELINE]["median_ms"], q[name]
            cells.append(f"{r['median_ms']:.1f} / {r['p95_ms']:.1f} (×{r['median_ms'] / base:.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
