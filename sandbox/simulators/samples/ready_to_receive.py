"""Sample messages of the municipality that it can receive the patient (kan ta emot), as
Treserva sends them: pure (take a ``random.Random`` and ``now``), valid against
``contracts/treserva/ready-to-receive``. :func:`ready_to_receive_for` answers a
ready-for-discharge notice Treserva stored (the simulator's automatic answer)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    treserva_brukare,
    treserva_enhet,
    treserva_samtyckesgrund,
)


def ready_to_receive_for(
    notice: dict[str, Any], rng: random.Random, *, now: datetime
) -> dict[str, Any]:
    """Treserva can receive the patient of ``notice`` (as the broker delivered it) from a day
    0 to 3 days after ``now``, Swedish date."""
    day = now.astimezone(STOCKHOLM).date() + timedelta(days=rng.randint(0, 3))
    return {
        "meddelandeId": f"trs-kte-{rng.randrange(10**9):09d}",
        "vardtillfalleId": notice["vardtillfalle"]["id"],
        "kanTaEmotFran": day.isoformat(),
        "svarPaMeddelandeId": notice["meddelandeId"],
        "brukare": notice["brukare"],
        "enhet": treserva_enhet(rng),
        "samtyckesgrund": treserva_samtyckesgrund(now),
    }


def sample_treserva_ready_to_receive(
    rng: random.Random, *, now: datetime, stay: str | None = None
) -> dict[str, Any]:
    """A made-up message that answers no particular notice; ``stay`` the vardtillfalle id."""
    notice = {
        "meddelandeId": "",
        "vardtillfalle": {"id": stay or f"VT-{rng.randrange(100000, 999999)}"},
        "brukare": treserva_brukare(rng),
    }
    doc = ready_to_receive_for(notice, rng, now=now)
    del doc["svarPaMeddelandeId"]
    return doc
