"""A sample transfer (förflyttning) as TakeCare pushes it: the patient moved from one ward to
another (or to another hospital) during the stay. Pure: everything takes a
``random.Random``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    hospital_units,
    takecare_consent_basis,
    takecare_patient,
)

OTHER_HOSPITALS = (("SE2321000001-KS12", "Karolinska Universitetssjukhuset, Thoraxkirurgi"),)


def sample_transfer(
    rng: random.Random,
    *,
    now: datetime,
    encounter_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``encounter_id``: the stay (drawn when None); the new unit always differs from the old."""
    local_now = now.astimezone(STOCKHOLM).replace(microsecond=0)
    admitted = local_now - timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600))
    moved = local_now - timedelta(minutes=rng.randint(1, 60))
    left, *others = rng.sample(hospital_units(), len(hospital_units()))
    to_hsa, to_name = rng.choice([*others, *OTHER_HOSPITALS])
    return {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "occurredAt": local_now.isoformat(timespec="seconds"),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now),
        "encounter": {
            "encounterId": encounter_id or f"VT-{rng.randint(100000, 999999)}",
            "admittedAt": admitted.isoformat(timespec="seconds"),
            "unit": {"hsaId": left[0], "name": left[1]},
        },
        "transfer": {
            "toUnit": {"hsaId": to_hsa, "name": to_name},
            "transferredAt": moved.isoformat(timespec="seconds"),
        },
    }
