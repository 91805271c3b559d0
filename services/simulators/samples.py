"""Sample TakeCare admission events: pure (takes a ``random.Random`` and ``now``), valid
against ``contracts/takecare/admission-notice.schema.json``.

Patients use only Skatteverket's published test personnummer and samordningsnummer.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

TEST_IDENTIFIERS: tuple[str, ...] = (
    "201701012393",
    "191212121212",  # personnummer
    "191401682396",
    "202601612381",  # samordningsnummer
)

_PEOPLE = (
    ("Tolvansson", "Tolvan"),
    ("Öberg", "Åsa"),
    ("Lärkström", "Märta"),
    ("Söderqvist", "Göran"),
    ("Ångström", "Björn"),
    ("Nyström", "Elsa"),
)
_ADDRESSES = (
    ("Strandgatan 12", "621 56", "Visby"),
    ("Hamngatan 4", "624 48", "Slite"),
    ("Storgatan 9", "623 50", "Hemse"),
    ("Kungsgårdsvägen 3", "622 54", "Roma"),
)
_UNITS = (
    ("SE2321000222-MED3", "Medicinavdelning 3, Visby lasarett"),
    ("SE2321000222-AKUT", "Akutvårdsavdelningen"),
    ("SE2321000222-ORTO", "Ortopedavdelningen"),
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

STOCKHOLM_WINTER = timezone(timedelta(hours=1))


def sample_admission(
    rng: random.Random, *, now: datetime, event_id: str | None = None
) -> dict[str, Any]:
    family, given = rng.choice(_PEOPLE)
    street, postal, city = rng.choice(_ADDRESSES)
    hsa_id, unit_name = rng.choice(_UNITS)
    local_now = now.astimezone(STOCKHOLM_WINTER)
    admitted = local_now - timedelta(minutes=rng.randint(5, 120))
    protected = rng.random() < 0.1
    patient: dict[str, Any] = {
        "personalIdentityNumber": rng.choice(TEST_IDENTIFIERS),
        "familyName": family,
        "givenName": given,
    }
    if protected:
        patient["protectedIdentity"] = True
    else:
        patient["registeredAddress"] = {"streetAddress": street, "postalCode": postal, "city": city}
    event: dict[str, Any] = {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "version": 1,
        "eventType": "admission",
        "occurredAt": local_now.isoformat(timespec="seconds"),
        "patient": patient,
        "encounter": {
            "encounterId": f"VT-{rng.randint(100000, 999999)}",
            "admittedAt": admitted.isoformat(timespec="seconds"),
            "unit": {"hsaId": hsa_id, "name": unit_name},
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
