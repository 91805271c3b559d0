"""Sample read receipts (läskvittens) as Treserva and TakeCare send them: pure (take a
``random.Random`` and ``now``), valid against ``contracts/treserva/read-receipt`` and
``contracts/takecare/read-receipt``. :func:`read_receipt_for` is Treserva's receipt of a
document it stored, :func:`takecare_read_receipt_for` TakeCare's (the simulators' automatic
ones); both echo the case id the broker set on the document (``arendeId``, ``caseId``), so
the receipt joins the stay's case although it names no stay."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    hospital_units,
    municipal_units,
    takecare_consent_basis,
    takecare_patient,
    treserva_brukare,
    treserva_samtyckesgrund,
)

_MUNICIPAL_READERS = (
    ("Åsa Lindqvist", "SE2120000803-P1234"),
    ("Jörgen Åkesson", "SE2120000803-S2K9"),
)
_HOSPITAL_READERS = (
    ("Karin Söderlund", "SE2321000222-P7Q1"),
    ("Örjan Lindgård", "SE2321000222-L0K3"),
)


def read_receipt_for(
    record: dict[str, Any], rng: random.Random, *, now: datetime
) -> dict[str, Any]:
    """Treserva's read receipt of a document the broker delivered (``meddelandeId``,
    ``brukare``), read ``now``."""
    name, hsa_id = rng.choice(_MUNICIPAL_READERS)
    receipt: dict[str, Any] = {
        "meddelandeId": f"trs-lk-{rng.randrange(10**9):09d}",
        "lastMeddelandeId": record["meddelandeId"],
        "lastTidpunkt": now.isoformat(timespec="seconds"),
        "brukare": record["brukare"],
        "lasare": {"namn": name, "hsaId": hsa_id, "enhetHsaId": rng.choice(municipal_units())[0]},
        "samtyckesgrund": treserva_samtyckesgrund(now),
    }
    if isinstance(record.get("arendeId"), str):
        receipt["arendeId"] = record["arendeId"]
    return receipt


def takecare_read_receipt_for(
    record: dict[str, Any], rng: random.Random, *, now: datetime
) -> dict[str, Any]:
    """TakeCare's read receipt of a document the broker delivered to it (``eventId``,
    ``patient``: the municipality's answer, SIP, medication list …), read ``now``."""
    name, hsa_id = rng.choice(_HOSPITAL_READERS)
    receipt: dict[str, Any] = {
        "eventId": f"tc-lk-{rng.randrange(10**9):09d}",
        "readMessageId": record["eventId"],
        "readAt": now.isoformat(timespec="seconds"),
        "patient": record["patient"],
        "reader": {"name": name, "hsaId": hsa_id, "unitHsaId": rng.choice(hospital_units())[0]},
        "consentBasis": takecare_consent_basis(now),
    }
    if isinstance(record.get("caseId"), str):
        receipt["caseId"] = record["caseId"]
    return receipt


def sample_treserva_read_receipt(
    rng: random.Random, *, now: datetime, read: str | None = None
) -> dict[str, Any]:
    """A made-up read receipt; ``read`` the message id of the message read."""
    record = {"meddelandeId": read or _message_id(rng), "brukare": treserva_brukare(rng)}
    return read_receipt_for(record, rng, now=now - timedelta(minutes=rng.randint(0, 90)))


def sample_takecare_read_receipt(
    rng: random.Random, *, now: datetime, read: str | None = None
) -> dict[str, Any]:
    name, hsa_id = rng.choice(_HOSPITAL_READERS)
    read_at = now - timedelta(minutes=rng.randint(0, 90))
    return {
        "eventId": f"tc-lk-{rng.randrange(10**9):09d}",
        "readMessageId": read or _message_id(rng),
        "readAt": read_at.isoformat(timespec="seconds"),
        "patient": takecare_patient(rng),
        "reader": {"name": name, "hsaId": hsa_id, "unitHsaId": rng.choice(hospital_units())[0]},
        "consentBasis": takecare_consent_basis(read_at),
    }


def _message_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=5))
