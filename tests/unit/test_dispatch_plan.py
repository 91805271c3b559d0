"""How SQLite reads the deliveries a batch may dispatch: from the batch's own deliveries or
patients, never by walking every pending delivery (a drain's backlog made that 260 ms per
batch and most of the router's time), and for a batch's patients without testing each
candidate against all of its patient's earlier deliveries (quadratic in a patient's backlog:
44 % of the router in the 100k scale step)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite

from services.router.routing.deliveries import due_deliveries
from services.router.routing.tables import deviation
from tests.support.database import backend_name

pytestmark = pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite's EXPLAIN QUERY PLAN")

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def plan(engine, query) -> list[str]:
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
    return [str(r[-1]) for r in rows]


async def test_a_results_batch_starts_from_its_patients(engine):
    steps = await plan(engine, due_deliveries("sqlite", NOW, patients={"a" * 32, "b" * 32}))
    assert any(s.startswith("SEARCH message USING INDEX ix_message_pseudonym") for s in steps)
    assert not any("ix_delivery_due" in s or "ix_delivery_state" in s for s in steps), steps
    # each patient's deliveries are read once, not once more for every candidate
    assert not any("CORRELATED" in s for s in steps), steps


async def test_an_inbound_batch_starts_from_its_deliveries(engine):
    steps = await plan(engine, due_deliveries("sqlite", NOW, only=[1, 2, 3]))
    assert steps[0] == "SEARCH delivery USING INTEGER PRIMARY KEY (rowid=?)", steps


async def test_the_full_scan_goes_by_the_due_index_in_its_order(engine):
    """No sort: the scan stops once it has found ``limit`` deliveries it may send."""
    steps = await plan(engine, due_deliveries("sqlite", NOW, closed={"treserva"}))
    assert steps[0].startswith("SEARCH delivery USING INDEX ix_delivery_due"), steps
    assert not any("TEMP B-TREE" in s for s in steps), steps


async def test_a_confirmation_finds_its_deviations_by_the_delivery(engine):
    """close_deviation runs on every confirmation; without its index it read the whole
    deviation table (14 ms at 28,000 deviations in the 100k scale step)."""
    steps = await plan(
        engine,
        select(deviation.c.id).where(
            deviation.c.delivery_id == 1, deviation.c.resolved_at.is_(None)
        ),
    )
    assert steps == ["SEARCH deviation USING INDEX ix_deviation_delivery_id (delivery_id=?)"]
