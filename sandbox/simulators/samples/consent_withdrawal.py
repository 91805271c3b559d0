"""A sample consent withdrawal (återkallat samtycke) as TakeCare pushes it: the patient
withdrew, for one stay, the consent the samples' other documents carry. Pure: everything
takes a ``random.Random``."""

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


def sample_consent_withdrawal(
    rng: random.Random,
    *,
    now: datetime,
    encounter_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``encounter_id``: the stay whose consent is withdrawn (drawn when None)."""
    local_now = now.astimezone(STOCKHOLM).replace(microsecond=0)
    admitted = local_now - timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600))
    withdrawn = local_now - timedelta(minutes=rng.randint(1, 30))
    return {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "occurredAt": local_now.isoformat(timespec="seconds"),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now)
        | {"withdrawnAt": withdrawn.isoformat(timespec="seconds")},
        "encounter": {
            "encounterId": encounter_id or f"VT-{rng.randint(100000, 999999)}",
            "admittedAt": admitted.isoformat(timespec="seconds"),
            "unit": takecare_unit(rng),
        },
    }
