"""Sample answers of the municipality to an admission notice (svar på inskrivningsmeddelande),
as Treserva sends them: pure (take a ``random.Random`` and ``now``), valid against
``contracts/treserva/admission-answer``. :func:`answer_to` answers a notice Treserva stored
(the simulator's automatic answer); :func:`sample_treserva_admission_answer` makes one up."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    treserva_brukare,
    treserva_enhet,
    treserva_samtyckesgrund,
)

SERVICES = (
    "hemtjanst",
    "hemsjukvard",
    "sarskilt-boende",
    "korttidsboende",
    "dagverksamhet",
    "trygghetslarm",
)
_CONTACTS = (
    ("Karin Ek", "Biståndshandläggare", "0498-26 92 00", None),
    ("Åsa Lindqvist", "Sjuksköterska, hemsjukvården", "0498-26 90 00", "SE2120000803-P1234"),
    ("Jörgen Åkesson", "Enhetschef, hemtjänsten", "+46 498 26 91 10", "SE2120000803-S2K9"),
)


def answer_to(notice: dict[str, Any], rng: random.Random, *, now: datetime) -> dict[str, Any]:
    """Treserva's answer to the admission notice ``notice`` (as the broker delivered it)."""
    return {
        "meddelandeId": f"trs-svar-{rng.randrange(10**9):09d}",
        "inskrivningsmeddelandeId": notice["meddelandeId"],
        "vardtillfalleId": notice["vardtillfalle"]["id"],
        "brukare": notice["brukare"],
        "enhet": treserva_enhet(rng),
        "insatser": _services(rng, now=now),
        "kontaktperson": _contact(rng),
        "samtyckesgrund": treserva_samtyckesgrund(now),
    }


def sample_treserva_admission_answer(
    rng: random.Random, *, now: datetime, answers: str | None = None, stay: str | None = None
) -> dict[str, Any]:
    """A made-up answer; ``answers`` the notice's message id, ``stay`` its vardtillfalle id."""
    notice = {
        "meddelandeId": answers or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "vardtillfalle": {"id": stay or f"VT-{rng.randrange(100000, 999999)}"},
        "brukare": treserva_brukare(rng),
    }
    return answer_to(notice, rng, now=now)


def _services(rng: random.Random, *, now: datetime) -> list[dict[str, Any]]:
    chosen = rng.sample(SERVICES, rng.randint(0, 3))
    return [
        {"insats": code}
        | (
            {"sedan": (now - timedelta(days=rng.randint(10, 900))).date().isoformat()}
            if rng.random() < 0.7
            else {}
        )
        for code in chosen
    ]


def _contact(rng: random.Random) -> dict[str, str]:
    name, role, phone, hsa_id = rng.choice(_CONTACTS)
    contact = {"namn": name, "roll": role, "telefon": phone}
    if hsa_id is not None:
        contact["hsaId"] = hsa_id
    return contact
