"""Sample TakeCare admission events: pure (takes a ``random.Random`` and ``now``), valid
against ``contracts/takecare/admission-notice.schema.json``."""

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

_REASONS = (
    "Pneumoni, nedsatt allmäntillstånd",
    "Fall i hemmet, höftfraktur",
    "Hjärtsvikt, ökade ödem",
    "Förvirring, misstänkt urinvägsinfektion",
)
_HOUSING = (
    "Bor ensam i lägenhet, hiss finns",
    "Bor med make i villa, trappor till övervåning",
    "Särskilt boende, Åkerbo",
)
_SOCIAL = (
    "Dottern i Slite hjälper till med inköp",
    "Ingen anhörig på ön",
    "Hemtjänst fyra gånger per dag sedan våren",
)
_ASSESSMENTS = (
    "Behöver hjälp med på- och avklädning och läkemedelsöverlämning",
    "Klarar förflyttning med rollator, behöver tillsyn nattetid",
)


def sample_admission(
    rng: random.Random, *, now: datetime, event_id: str | None = None
) -> dict[str, Any]:
    local_now = now.astimezone(STOCKHOLM)
    admitted = local_now - timedelta(minutes=rng.randint(5, 120))
    event: dict[str, Any] = {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "version": 1,
        "eventType": "admission",
        "occurredAt": local_now.isoformat(timespec="seconds"),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now),
        "encounter": {
            "encounterId": f"VT-{rng.randint(100000, 999999)}",
            "admittedAt": admitted.isoformat(timespec="seconds"),
            "unit": takecare_unit(rng),
        },
        "expectedDischargeAt": (admitted + timedelta(days=rng.randint(2, 10)))
        .replace(hour=12, minute=0, second=0, microsecond=0)
        .isoformat(timespec="seconds"),
        "admissionReason": rng.choice(_REASONS),
    }
    for field, options in (
        ("housingSituation", _HOUSING),
        ("socialSituation", _SOCIAL),
        ("careNeedsAssessment", _ASSESSMENTS),
    ):
        if rng.random() < 0.8:
            event[field] = rng.choice(options)
    return event
