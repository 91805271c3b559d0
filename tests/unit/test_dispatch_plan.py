"""How SQLite reads the deliveries a batch may dispatch: from the batch's own deliveries or
patients, never by walking every pending delivery (a drain's backlog made that 260 ms per
batch and most of the router's time)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from services.router.deliveries import due_deliveries
from tests.conftest import backend_name

pytestmark = pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite's EXPLAIN QUERY PLAN")

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def plan(engine, query) -> list[str]:
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
    return [str(r[-1]) for r in rows]


async def test_a_results_batch_starts_from_its_patients(engine):
    steps = await plan(engine, due_deliveries("sqlite", NOW, patients={"a" * 32, "b" * 32}))
    assert steps[0].startswith("SEARCH message USING INDEX ix_message_pseudonym"), steps
    assert not any("ix_delivery_due" in s for s in steps), steps


async def test_an_inbound_batch_starts_from_its_deliveries(engine):
    steps = await plan(engine, due_deliveries("sqlite", NOW, only=[1, 2, 3]))
    assert steps[0] == "SEARCH delivery USING INTEGER PRIMARY KEY (rowid=?)", steps


async def test_the_full_scan_goes_by_the_due_index_in_its_order(engine):
    """No sort: the scan stops once it has found ``limit`` deliveries it may send."""
    steps = await plan(engine, due_deliveries("sqlite", NOW, closed={"treserva"}))
    assert steps[0].startswith("SEARCH delivery USING INDEX ix_delivery_due"), steps
    assert not any("TEMP B-TREE" in s for s in steps), steps
