"""A results batch dispatches each of its patients' first unresolved delivery per
destination, read once per patient, instead of testing every candidate against all earlier
deliveries of its patient (quadratic in a patient's backlog: 44 % of the router in the 100k
scale step on SQLite, 0.9 s for a batch of 20 patients at 120,000 pending on PostgreSQL in
bench/dispatch_speed.py). Both tests must let the same rows through, on both backends."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql

from services.router.routing.deliveries import due_deliveries
from services.router.routing.domain import DeliveryState
from services.router.routing.tables import delivery, message
from tests.support.database import backend_name

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def test_a_results_batch_lets_through_what_the_held_behind_test_does(engine):
    """The patients' first unresolved deliveries are exactly the candidates that the generic
    held-behind test lets through, in the same order, on this backend."""
    dialect = engine.dialect.name
    rng = random.Random(8)
    states = [s.value for s in DeliveryState]
    patients = [f"{i:032x}" for i in range(12)]
    async with engine.begin() as conn:
        for n in range(240):
            message_id = f"00000000-0000-4000-8000-{n:012x}"
            await conn.execute(
                insert(message).values(
                    id=message_id,
                    event_code="admission-notice",
                    source="takecare",
                    pseudonym=rng.choice(patients),
                    sent_at=NOW,
                    received_at=NOW,
                    payload="{}",
                )
            )
            for destination in rng.sample(["treserva", "takecare", "primary-care"], 2):
                await conn.execute(
                    insert(delivery).values(
                        message_id=message_id,
                        destination=destination,
                        state=rng.choices(states, weights=[6, 2, 1, 4, 1, 1])[0],
                        attempts=0,
                        next_attempt_at=NOW + timedelta(seconds=rng.randint(-60, 30)),
                        confirm_by=NOW,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
    found = 0
    async with engine.connect() as conn:
        pending_due = (
            (
                await conn.execute(
                    select(delivery.c.id).where(
                        delivery.c.state == "pending", delivery.c.next_attempt_at <= NOW
                    )
                )
            )
            .scalars()
            .all()
        )
        for k in range(30):
            chosen = set(rng.sample(patients, rng.randint(1, len(patients))))
            closed = set(rng.sample(["treserva", "takecare", "primary-care"], k % 3))
            ids = {}
            for by_first in (True, False):
                query = due_deliveries(
                    dialect, NOW, closed=closed, patients=chosen, limit=500, by_first=by_first
                )
                ids[by_first] = (await conn.execute(query)).scalars().all()
            assert ids[True] == ids[False], (chosen, closed)
            found += len(ids[True])
    assert found > 0  # some were let through
    async with engine.connect() as conn:  # and for all patients, most due ones are held back
        let_through = (
            (await conn.execute(due_deliveries(dialect, NOW, patients=set(patients), limit=500)))
            .scalars()
            .all()
        )
    assert 0 < len(let_through) < len(pending_due) / 2, (len(let_through), len(pending_due))


def test_by_first_needs_the_patients():
    with pytest.raises(ValueError, match="patients is required"):
        due_deliveries("postgresql", NOW, by_first=True)


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's EXPLAIN")
async def test_postgresql_reads_the_patients_deliveries_once(engine):
    """No anti-join testing each candidate against its patient's earlier deliveries."""
    query = due_deliveries("postgresql", NOW, patients={"a" * 32, "b" * 32})
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        plan = "\n".join(r[0] for r in (await conn.execute(text(f"EXPLAIN {sql}"))).all())
    assert "Anti Join" not in plan, plan
    assert "ix_message_pseudonym" in plan, plan
