"""Sample cancellations (makulering) as TakeCare and Treserva send them: pure (take a
``random.Random`` and ``now``), valid against ``contracts/takecare/message-cancelled`` and
``contracts/treserva/message-cancelled``.

A cancellation names a message its sender sent before, for the same patient: the adapter
refuses (422) one it never accepted. So a simulator that is asked to emit one is given the
document it cancels (``original``, the sender's native document as it was POSTed): its id
and its patient are taken from it. Without one the sample names a made-up message, which is
what the adapter's refusal is tested with."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    HOSPITAL_UNITS,
    MUNICIPAL_UNITS,
    takecare_patient,
    treserva_brukare,
)

_HOSPITAL_STAFF = (
    ("Karin Söderlund", "SE2321000222-P7Q1"),
    ("Örjan Lindgård", "SE2321000222-L0K3"),
)
_MUNICIPAL_STAFF = (
    ("Åsa Lindqvist", "SE2120000803-P1234"),
    ("Jörgen Åkesson", "SE2120000803-S2K9"),
)
REASONS = (
    "Skickat i misstag",
    "Skickat på fel patient",
    "Fel version publicerad, ersätts av en ny",
    "Uppgifterna gällde ett annat vårdtillfälle",
)
# the business key's id of a TakeCare / Treserva document: its document id when versioned
_TAKECARE_IDS = ("sipId", "listId", "eventId")
_TRESERVA_IDS = ("sipId", "listaId", "meddelandeId")


def _id_and_version(original: dict[str, Any], fields: tuple[str, ...]) -> tuple[str, int]:
    found = next(original[f] for f in fields if isinstance(original.get(f), str))
    version = original.get("version")
    return found, version if isinstance(version, int) else 1


def sample_takecare_cancellation(
    rng: random.Random, *, now: datetime, original: dict[str, Any] | None = None
) -> dict[str, Any]:
    """TakeCare cancels ``original`` (one of its own documents), or a made-up message."""
    name, hsa_id = rng.choice(_HOSPITAL_STAFF)
    event_id, version = (
        _id_and_version(original, _TAKECARE_IDS)
        if original is not None
        else (f"tc-{rng.randrange(10**9):09d}", 1)
    )
    patient = original["patient"] if original is not None else takecare_patient(rng)
    doc: dict[str, Any] = {
        "eventId": f"tc-mak-{rng.randrange(10**9):09d}",
        "patient": patient,
        "cancellation": {
            "eventId": event_id,
            "reason": rng.choice(REASONS),
            "cancelledAt": (now - timedelta(minutes=rng.randint(0, 30))).isoformat(
                timespec="seconds"
            ),
            "cancelledBy": {
                "name": name,
                "hsaId": hsa_id,
                "unitHsaId": rng.choice(HOSPITAL_UNITS)[0],
            },
        },
    }
    if version != 1:
        doc["cancellation"]["version"] = version
    stay = (original or {}).get("encounter", {}).get("encounterId")
    if isinstance(stay, str):
        doc["encounterId"] = stay
    return doc


def sample_treserva_cancellation(
    rng: random.Random, *, now: datetime, original: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Treserva cancels ``original`` (one of its own documents), or a made-up message."""
    name, hsa_id = rng.choice(_MUNICIPAL_STAFF)
    meddelande_id, version = (
        _id_and_version(original, _TRESERVA_IDS)
        if original is not None
        else (f"trs-{rng.randrange(10**9):09d}", 1)
    )
    doc: dict[str, Any] = {
        "meddelandeId": f"trs-mak-{rng.randrange(10**9):09d}",
        "brukare": original["brukare"] if original is not None else treserva_brukare(rng),
        "makulering": {
            "meddelandeId": meddelande_id,
            "makuleringsorsak": rng.choice(REASONS),
            "makulerad": (now - timedelta(minutes=rng.randint(0, 30))).isoformat(
                timespec="seconds"
            ),
            "makuleradAv": {
                "namn": name,
                "hsaId": hsa_id,
                "enhetHsaId": rng.choice(MUNICIPAL_UNITS)[0],
            },
        },
    }
    if version != 1:
        doc["makulering"]["version"] = version
    arende = (original or {}).get("arendeId")
    if isinstance(arende, str):
        doc["arendeId"] = arende
    return doc
