"""A sample death during a stay (patienten avliden) as TakeCare pushes it: when, and nothing
more (never a cause of death). Pure: everything takes a ``random.Random``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    takecare_consent_basis,
    takecare_patient,
    takecare_unit,
)


def sample_patient_deceased(
    rng: random.Random,
    *,
    now: datetime,
    encounter_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``encounter_id``: the stay (drawn when None); the death is after the admission."""
    local_now = now.astimezone(STOCKHOLM).replace(microsecond=0)
    admitted = local_now - timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600))
    deceased = local_now - timedelta(minutes=rng.randint(1, 600))
    return {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "occurredAt": local_now.isoformat(timespec="seconds"),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now),
        "encounter": {
            "encounterId": encounter_id or f"VT-{rng.randint(100000, 999999)}",
            "admittedAt": admitted.isoformat(timespec="seconds"),
            "unit": takecare_unit(rng),
        },
        "death": {"deceasedAt": deceased.isoformat(timespec="seconds")},
    }
