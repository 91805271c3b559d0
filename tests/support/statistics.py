"""Messages, deliveries and stays seeded straight into SQL with known times, for the statistics."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from services.router.routing.episodes import episode
from services.router.routing.tables import delivery, message

NOW = datetime(2026, 4, 10, 10, 0, tzinfo=UTC)


_ids = itertools.count(1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def add_message(s, event_code: str, received_at: str) -> str:
    message_id = f"00000000-0000-4000-8000-{next(_ids):012d}"
    at = utc(received_at)
    await s.execute(
        message.insert().values(
            id=message_id,
            event_code=event_code,
            source="takecare",
            sent_at=at,
            received_at=at,
            payload="{}",
        )
    )
    return message_id


async def add_delivery(
    s,
    *,
    event_code: str = "admission-notice",
    destination: str = "treserva",
    legal_from: str | None = None,
    due: str | None = None,
    confirmed: str | None = None,
) -> None:
    at = utc(legal_from or "2026-03-30T00:00")
    message_id = await add_message(s, event_code, legal_from or "2026-03-30T00:00")
    await s.execute(
        delivery.insert().values(
            message_id=message_id,
            destination=destination,
            state="confirmed" if confirmed else "sent",
            attempts=1,
            confirm_by=at + timedelta(hours=1),
            confirmed_at=confirmed and utc(confirmed),
            legal_from=legal_from and at,
            legal_due_at=due and utc(due),
            created_at=at,
            updated_at=at,
        )
    )


async def add_stay(s, ready: str | None, discharged: str | None) -> None:
    await s.execute(
        episode.insert().values(
            pseudonym=f"{next(_ids):032x}",
            state="discharged" if discharged else "ready",
            admitted_at=utc("2026-03-20T08:00"),
            ready_at=ready and utc(ready),
            discharged_at=discharged and utc(discharged),
            updated_at=NOW,
        )
    )
