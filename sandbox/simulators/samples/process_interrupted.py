"""A sample process interruption (avbrott i utskrivningsprocessen) as TakeCare pushes it: the
planning for one stay's discharge is interrupted, with a reason and sometimes a note. Pure:
everything takes a ``random.Random``."""

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

REASONS = ("condition-worsened", "declined-municipal-services", "other")
NOTES = (
    "Försämrad, åter till intensivvård. Planeringen återupptas när läget är stabilt.",
    "Patienten vill inte ha hemtjänst; anhöriga hjälper till hemma.",
    "Planeringen pausas i väntan på ny bedömning.",
)


def sample_process_interrupted(
    rng: random.Random,
    *,
    now: datetime,
    encounter_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``encounter_id``: the stay whose planning is interrupted (drawn when None)."""
    local_now = now.astimezone(STOCKHOLM).replace(microsecond=0)
    admitted = local_now - timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600))
    interrupted = local_now - timedelta(minutes=rng.randint(1, 60))
    interruption: dict[str, Any] = {
        "reason": rng.choice(REASONS),
        "interruptedAt": interrupted.isoformat(timespec="seconds"),
    }
    if rng.random() < 0.7:
        interruption["note"] = rng.choice(NOTES)
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
        "interruption": interruption,
    }
