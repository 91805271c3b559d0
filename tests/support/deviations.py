"""Deviations: a stored message and delivery to report on, the facts of a deviation, and
what an export must match (its schema) and never contain (a personnummer)."""

import re
from datetime import UTC, datetime, timedelta

from services.router.deviations.records import (
    DeviationKind,
)

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


PSEUDONYM = "3f2a9c0d4b5e6f708192a3b4c5d6e7f8"


SENDER = "SE2321000222-AKUT"


RECEIVER = "SE2120000803-HSJV"


async def add_delivery(session, message_id: str, destination: str = "treserva") -> int:
    """A message and one delivery of it, as the router stores them."""
    from services.router.routing.tables import delivery, message

    await session.execute(
        message.insert().values(
            id=message_id,
            event_code="admission-notice",
            source="takecare",
            pseudonym=PSEUDONYM,
            sent_at=T0,
            received_at=T0,
            payload="{}",
        )
    )
    found = await session.execute(
        delivery.insert()
        .returning(delivery.c.id)
        .values(
            message_id=message_id,
            destination=destination,
            state="sent",
            attempts=1,
            confirm_by=T0 + timedelta(minutes=15),
            created_at=T0,
            updated_at=T0,
        )
    )
    return int(found.scalar_one())


def facts(**changes):
    found = {
        "kind": DeviationKind.NOT_CONFIRMED_IN_TIME,
        "family": "admission-notice",
        "source": "takecare",
        "destination": "treserva",
        "detected_at": T0 + timedelta(minutes=15),
        "message_id": "a1b2c3d4-0000-4000-8000-00000000000a",
        "sender_unit_hsa": SENDER,
        "receiver_unit_hsa": RECEIVER,
        "pseudonym": PSEUDONYM,
        "occurred_at": T0 - timedelta(hours=1),
        "due_at": T0 + timedelta(minutes=15),
        "description": "Inskrivningsmeddelandet bekräftades inte i tid av Treserva.",
    }
    found.update(changes)
    return found


SCHEMA = "deviations/deviation.schema.json"


# personnummer or samordningsnummer shape with a plausible date; letters around it excluded so
# the organisation number inside an HSA-id (month digits 20 and up) is not one either
PERSONNUMMER = re.compile(
    r"(?<![0-9A-Za-z])(?:19|20)?[0-9]{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12][0-9]|3[01]|6[1-9]|[78][0-9]|9[01])[-+]?[0-9]{4}(?![0-9])"
)
