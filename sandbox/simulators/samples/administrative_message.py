"""Sample administrative messages (administrativt meddelande) as TakeCare and Treserva send
them: free text about a stay between the hospital unit and the municipal unit. Pure (take a
``random.Random`` and ``now``), valid against ``contracts/takecare/administrative-message`` and
``contracts/treserva/administrative-message``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    hospital_units,
    municipal_units,
    takecare_consent_basis,
    takecare_patient,
    treserva_brukare,
    treserva_samtyckesgrund,
)

_HOSPITAL_WRITERS = (
    ("Karin Lindqvist", "SE2321000222-P4711"),
    ("Örjan Lindgård", "SE2321000222-L0K3"),
)
_MUNICIPAL_WRITERS = (
    ("Åsa Lindqvist", "SE2120000803-P1234"),
    ("Jörgen Åkesson", "SE2120000803-S2K9"),
)
_HOSPITAL_TEXTS = (
    ("Hjälpmedel inför hemgång", "Behöver patienten rollator hemma? Hör av er före torsdag."),
    ("Anhörigkontakt", "Dottern nås bäst efter klockan 16, hon har nyckel till lägenheten."),
)
_MUNICIPAL_TEXTS = (
    ("Sv: Hjälpmedel", "Rollatorn finns hemma. Vi behöver veta tid för hemgång senast i morgon."),
    ("Fråga om kost", "Hemtjänsten undrar om patienten har specialkost efter vårdtiden."),
)


def _sent(rng: random.Random, now: datetime) -> str:
    sent = now.astimezone(STOCKHOLM).replace(microsecond=0)
    return (sent - timedelta(minutes=rng.randint(0, 90))).isoformat(timespec="seconds")


def sample_takecare_administrative_message(
    rng: random.Random, *, now: datetime, encounter_id: str | None = None
) -> dict[str, Any]:
    name, hsa_id = rng.choice(_HOSPITAL_WRITERS)
    subject, text = rng.choice(_HOSPITAL_TEXTS)
    return {
        "consentBasis": takecare_consent_basis(now),
        "eventId": f"tc-am-{rng.getrandbits(48):012x}",
        "sentAt": _sent(rng, now),
        "patient": takecare_patient(rng),
        "encounterId": encounter_id or f"VT-{rng.randint(100000, 999999)}",
        "subject": subject,
        "text": text,
        "sender": {"name": name, "hsaId": hsa_id, "unitHsaId": rng.choice(hospital_units())[0]},
    }


def sample_treserva_administrative_message(
    rng: random.Random, *, now: datetime, encounter_id: str | None = None
) -> dict[str, Any]:
    name, hsa_id = rng.choice(_MUNICIPAL_WRITERS)
    subject, text = rng.choice(_MUNICIPAL_TEXTS)
    return {
        "samtyckesgrund": treserva_samtyckesgrund(now),
        "meddelandeId": f"trs-am-{rng.randrange(10**9):09d}",
        "skickat": _sent(rng, now),
        "brukare": treserva_brukare(rng),
        "vardtillfalleId": encounter_id or f"VT-{rng.randint(100000, 999999)}",
        "amne": subject,
        "text": text,
        "avsandare": {
            "namn": name,
            "hsaId": hsa_id,
            "enhetHsaId": rng.choice(municipal_units())[0],
        },
    }
