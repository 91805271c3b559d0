"""Message search for the ops API, the console and the CLI: filters and keyset pagination.

Newest first, ordered by ``(received_at, id)``; a page ends with an opaque cursor naming its
last row, and the next page starts strictly after it (``WHERE (received_at, id) < cursor``),
never with OFFSET, so page 50 costs what page 1 costs and rows arriving meanwhile neither
repeat nor vanish. Metadata only, never payloads.

Exceptions::

    ValueError
     └── InvalidCursor     a cursor this module did not write (the API answers 422)

How each filter is served (see the indexes in services/router/routing/tables.py):

* none, a time range: ``ix_message_received`` walked backwards;
* family or source: ``ix_message_event_received`` / ``ix_message_source_received``;
* pseudonym, business key: their own indexes (a handful of rows, sorted);
* destination alone: most messages have one, so walk messages newest first and probe
  ``uq_delivery_message_id_destination`` per row;
* a delivery state other than ``confirmed``: rare (dead letters, unfinished work), so the
  matching deliveries are found first through ``ix_delivery_state_destination`` and only their
  messages are sorted. ``confirmed`` is nearly every delivery: it is probed per message like a
  destination. The choice is made here, from what the states mean, because SQLite keeps no
  statistics to make it from.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.routing.domain import DeliveryState
from services.router.routing.tables import delivery, message

MESSAGE_FIELDS = (
    message.c.id,
    message.c.event_code,
    message.c.source,
    message.c.pseudonym,
    message.c.business_key,
    message.c.sent_at,
    message.c.received_at,
    message.c.version,
    message.c.superseded_by,
    message.c.unrouted_reason,
    message.c.case_id,
)

DELIVERY_FIELDS = (
    delivery.c.id,
    delivery.c.destination,
    delivery.c.state,
    delivery.c.attempts,
    delivery.c.confirm_by,
    delivery.c.sent_at,
    delivery.c.confirmed_at,
    delivery.c.last_error,
    delivery.c.message_id,
    delivery.c.legal_due_at,
    delivery.c.receiver_unit_hsa,
)

# Nearly every delivery ends here; the other states are few, so they are looked up first.
_COMMON_STATES = frozenset({DeliveryState.CONFIRMED.value})


class InvalidCursor(ValueError):
    """The cursor is not one this module wrote (garbled, truncated or from elsewhere)."""


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What to look for; every filter given must match. ``since <= received_at < until``."""

    since: datetime | None = None
    until: datetime | None = None
    event_code: str | None = None
    source: str | None = None
    destination: str | None = None
    state: str | None = None  # a DeliveryState value: a message with any delivery in it
    pseudonym: str | None = None
    business_key: str | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    items: list[dict[str, Any]]  # message metadata, each with its "deliveries"
    next_cursor: str | None  # None on the last page


def iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def row_dict(row: Any) -> dict[str, Any]:
    return {k: iso(v) for k, v in row._mapping.items()}


def encode_cursor(received_at: datetime, message_id: str) -> str:
    raw = json.dumps([received_at.astimezone(UTC).isoformat(), message_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, message_id = json.loads(raw)
        at = datetime.fromisoformat(when)
    except (binascii.Error, ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidCursor("not a cursor from this API") from exc
    if not isinstance(message_id, str) or at.tzinfo is None:
        raise InvalidCursor("not a cursor from this API")
    return at, message_id


def page_statement(
    query: MessageQuery, *, limit: int, after: tuple[datetime, str] | None = None
) -> Select[Any]:
    """The SELECT for one page (``limit`` rows after ``after``); exposed for EXPLAIN."""
    stmt = select(*MESSAGE_FIELDS)
    for column, value in (
        (message.c.event_code, query.event_code),
        (message.c.source, query.source),
        (message.c.pseudonym, query.pseudonym),
        (message.c.business_key, query.business_key),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.since is not None:
        stmt = stmt.where(message.c.received_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(message.c.received_at < query.until)
    if query.state is not None or query.destination is not None:
        wanted = []
        if query.destination is not None:
            wanted.append(delivery.c.destination == query.destination)
        if query.state is not None and query.state not in _COMMON_STATES:
            wanted.append(delivery.c.state == query.state)
            stmt = stmt.where(message.c.id.in_(select(delivery.c.message_id).where(*wanted)))
        else:
            if query.state is not None:
                # ``state || ''``: an expression, so that no index on state is used for the
                # probe (SQLite would otherwise pick ix_delivery_due and walk every confirmed
                # delivery per message); the probe goes through (message_id, destination).
                wanted.append((delivery.c.state + "") == query.state)
            stmt = stmt.where(exists().where(delivery.c.message_id == message.c.id, *wanted))
    if after is not None:
        stmt = stmt.where(tuple_(message.c.received_at, message.c.id) < tuple_(*after))
    return stmt.order_by(message.c.received_at.desc(), message.c.id.desc()).limit(limit)


async def search_messages(
    session: AsyncSession, query: MessageQuery, *, limit: int = 50, cursor: str | None = None
) -> MessagePage:
    """One page of messages matching ``query``, newest first, after ``cursor`` if given."""
    after = decode_cursor(cursor) if cursor is not None else None
    rows = (await session.execute(page_statement(query, limit=limit + 1, after=after))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [row_dict(r) for r in rows]
    by_message: dict[str, list[dict[str, Any]]] = {m["id"]: [] for m in items}
    if items:
        found = await session.execute(
            select(*DELIVERY_FIELDS)
            .where(delivery.c.message_id.in_(list(by_message)))
            .order_by(delivery.c.id)
        )
        for d in found.all():
            by_message[d.message_id].append(row_dict(d))
    for m in items:
        m["deliveries"] = by_message[m["id"]]
    last = rows[-1] if more else None
    return MessagePage(
        items=items,
        next_cursor=encode_cursor(last.received_at, last.id) if last is not None else None,
    )
