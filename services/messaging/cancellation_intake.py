"""The intake's check of a cancellation (makulering): it must name a message the adapter
accepted from the same sender, for the same patient, and not another cancellation.

A journal names the message it cancels by its own event id and version: the business key the
adapter stored the message under (``intake_record``). The adapter can therefore know, and
says so at once: a cancellation of a message it never accepted, of another patient's message
(which would carry this patient's identity to that message's receivers) or of a cancellation
is refused with 422, rule ``unknown-message``, naming the field and never its value. The
router still checks again (:mod:`services.router.routing.cancels`) for a message that reaches
the inbound topic some other way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contracts import Violation
from services.messaging.envelope import BusinessKey, EventCode
from services.messaging.intake_tables import intake_record

if TYPE_CHECKING:
    from services.messaging.intake import IntakeEntry

UNKNOWN_RULE = "unknown-message"
UNKNOWN_MESSAGE = (
    "names no message this system sent for this patient (a cancellation cannot be cancelled)"
)


@dataclass(frozen=True, slots=True)
class Original:
    """What the intake stored of a message a cancellation names."""

    pseudonym: str
    event_code: str


def unknown_cancelled_violation(path: str) -> Violation:
    return Violation(path, UNKNOWN_RULE, UNKNOWN_MESSAGE)


def refused_as_unknown(entry: IntakeEntry, known: Mapping[BusinessKey, Original]) -> bool:
    """Whether ``entry`` cancels a message not among ``known``, another patient's, or a
    cancellation."""
    if entry.cancels is None:
        return False
    original = known.get(entry.cancels)
    return (
        original is None
        or original.pseudonym != entry.pseudonym
        or original.event_code == EventCode.MESSAGE_CANCELLED.value
    )


async def cancelled_originals(
    session: AsyncSession, entries: Sequence[IntakeEntry]
) -> dict[BusinessKey, Original]:
    """The stored messages ``entries`` cancel: one SELECT, none when none cancels."""
    keys = sorted(
        {e.cancels for e in entries if e.cancels is not None},
        key=str,
    )
    if not keys:
        return {}
    c = intake_record.c
    rows = await session.execute(
        select(c.source_system, c.source_event_id, c.version, c.pseudonym, c.event_code).where(
            tuple_(c.source_system, c.source_event_id, c.version).in_(
                [(k.source, k.source_event_id, k.version) for k in keys]
            )
        )
    )
    return {
        BusinessKey(r.source_system, r.source_event_id, r.version): Original(
            r.pseudonym, r.event_code
        )
        for r in rows
    }
