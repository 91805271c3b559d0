"""The cancels relation: a cancellation (makulering, event ``message-cancelled``) goes to
exactly the receivers of the message it cancels, and stops what of that message is not
delivered yet.

Routing. The catalogue only says who may send a cancellation; where it goes is where the
cancelled message went: one delivery per destination the original had a delivery to (a
journal, primary care, a webhook subscriber), addressed to the same receiving unit. A
receiver the original never reached (its message was held for want of a basis, say) never
hears of it, so a cancellation needs no basis of its own
(:mod:`services.messaging.cancellation`).

Stopping. Each delivery of the original that has not reached its receiver (``pending``,
retrying, ``dispatched``, or a dead letter an operator might replay) moves to ``cancelled``
(:mod:`services.router.routing.domain`): it is not sent again, and no confirmation deadline,
legal deadline or re-send runs for it any more. One already ``sent`` or ``confirmed`` is left
as it is: its receiver holds it and gets the cancellation like any message. A receiver
whose copy was stopped still gets the cancellation (an attempt whose outcome never came may
have reached it); a journal files a cancellation of a message it does not hold as done.

Unknown. The adapter refuses a cancellation of a message it never accepted (422 at the
intake, :mod:`services.messaging.cancellation_intake`); the router checks again, for a
message that reached the inbound topic some other way. A cancellation the router cannot tie
to a message it holds from the same sender for the same patient goes where the catalogue
would send it, and each of those deliveries is dead-lettered at once with the reason and a
critical incident: never dropped in silence, never guessed at.

The original is normally stored before its cancellation: both are keyed by the patient on
the inbound topic, so they arrive in order, and one earlier in the same batch counts
(:meth:`CancelBook.note`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.cancellation import cancelled_message_id
from services.messaging.envelope import Envelope, EventCode
from services.messaging.fhir_parts import TranslationError
from services.router.routing.addressing import Address
from services.router.routing.tables import delivery, message
from services.router.subscriptions.matching import Subscription

UNREADABLE = "cancellation refused: it does not say which message it cancels"
UNKNOWN = "cancellation refused: the router holds no message with the id it cancels"
OTHER_SENDER = "cancellation refused: the message it cancels is another sender's"
OTHER_PATIENT = "cancellation refused: the message it cancels is another patient's"
OF_A_CANCELLATION = "cancellation refused: a cancellation cannot be cancelled"
NOWHERE = "not routed: the message it cancels was delivered nowhere"


def is_cancellation(env: Envelope) -> bool:
    return env.event_code == EventCode.MESSAGE_CANCELLED.value


@dataclass(frozen=True, slots=True)
class Original:
    """A message a cancellation names, as the router holds it."""

    pseudonym: str | None
    event_code: str
    source: str
    destinations: tuple[str, ...]  # of its deliveries


@dataclass(frozen=True, slots=True)
class Plan:
    """Where one cancellation goes: the original's destinations, or (``refused``) the
    catalogue's, each dead-lettered with the reason."""

    original_id: str | None
    destinations: tuple[Subscription, ...]
    refused: str | None = None
    unrouted: str | None = None  # stored, delivered nowhere, and why


@dataclass
class CancelBook:
    """The messages a batch's cancellations name: those stored before (one statement,
    :meth:`load`) and those earlier in the batch (:meth:`note`), with the unit each
    delivery of theirs was addressed to."""

    targets: dict[str, str | None]  # cancellation id → the id it cancels (None: unreadable)
    originals: dict[str, Original]
    units: dict[tuple[str, str], str | None] = field(default_factory=dict)

    @classmethod
    async def load(
        cls, session: AsyncSession, batch: Sequence[tuple[Envelope, bytes]]
    ) -> CancelBook:
        targets = {env.message_id: _target(value) for env, value in batch if is_cancellation(env)}
        wanted = sorted({t for t in targets.values() if t is not None})
        book = cls(targets, {})
        if not wanted:
            return book
        rows = await session.execute(
            select(
                message.c.id,
                message.c.pseudonym,
                message.c.event_code,
                message.c.source,
                delivery.c.destination,
                delivery.c.receiver_unit_hsa,
            )
            .select_from(message.outerjoin(delivery, delivery.c.message_id == message.c.id))
            .where(message.c.id.in_(wanted))
            .order_by(message.c.id, delivery.c.id)
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            dests = found.setdefault(row.id, [])
            book.originals[row.id] = Original(row.pseudonym, row.event_code, row.source, ())
            if row.destination is not None:
                dests.append(row.destination)
                book.units[row.id, row.destination] = row.receiver_unit_hsa
        for message_id, dests in found.items():
            o = book.originals[message_id]
            book.originals[message_id] = Original(o.pseudonym, o.event_code, o.source, tuple(dests))
        return book

    def note(self, env: Envelope, pseudonym: str | None, destinations: Sequence[str]) -> None:
        """A message of this batch, which a cancellation later in it may name."""
        if env.message_id in self.targets.values():
            self.originals[env.message_id] = Original(
                pseudonym, env.event_code, env.source_system, tuple(destinations)
            )

    def note_unit(self, message_id: str, destination: str, unit_hsa: str | None) -> None:
        """The unit a delivery of this batch was addressed to."""
        if message_id in self.originals:
            self.units[message_id, destination] = unit_hsa

    def plan(
        self,
        env: Envelope,
        pseudonym: str | None,
        subscriptions: Sequence[Subscription],
        catalogue: Sequence[Subscription],
    ) -> Plan:
        """Where the cancellation ``env`` goes. ``catalogue``: where the family's routes
        would send it, for a refusal's dead letters."""
        target = self.targets.get(env.message_id)
        refused = self._refusal(env, pseudonym, target)
        if refused is not None or target is None:
            return Plan(target, tuple(catalogue), refused=refused or UNREADABLE)
        original = self.originals[target]
        destinations = tuple(
            s
            for s in subscriptions
            if s.active and s.id != env.source_system and s.id in original.destinations
        )
        return Plan(target, destinations, unrouted=None if destinations else NOWHERE)

    def address(self, plan: Plan, destination: str) -> Address:
        """The unit a cancellation's delivery to ``destination`` goes to: the original's."""
        if plan.refused is not None or plan.original_id is None:
            return Address(refused=plan.refused)
        return Address(unit_hsa=self.units.get((plan.original_id, destination)))

    def _refusal(self, env: Envelope, pseudonym: str | None, target: str | None) -> str | None:
        if target is None:
            return UNREADABLE
        original = self.originals.get(target)
        if original is None:
            return UNKNOWN
        if original.source != env.source_system:
            return OTHER_SENDER
        if original.pseudonym != pseudonym:
            return OTHER_PATIENT
        if original.event_code == EventCode.MESSAGE_CANCELLED.value:
            return OF_A_CANCELLATION
        return None


def _target(value: bytes) -> str | None:
    try:
        doc = json.loads(value)
        return cancelled_message_id(doc) if isinstance(doc, dict) else None
    except (ValueError, TranslationError):
        return None


def stopped_originals(plans: Mapping[str, Plan]) -> dict[str, str]:
    """Cancelled message id → the id of the cancellation that stops it, for the plans that
    were not refused."""
    return {
        p.original_id: cancellation_id
        for cancellation_id, p in plans.items()
        if p.refused is None and p.original_id is not None
    }
