"""The stays whose consent the patient withdrew, as the adapter keeps them: a withdrawal
(family ``consent-withdrawal``) is stored with its intake record and outbox row in one
transaction, and every later document of the same stay is refused at the intake (422, rule
``consent-withdrawn``). Documents that name no stay (a SIP, a list without one) are not
affected; the router holds any message whose Consent is not active all the same.

A stay is keyed by a keyed pseudonym of the source and the stay id (:func:`stay_key`), never
by the stay id or a patient identifier in clear. A document that races its stay's withdrawal
(both accepted at once) may pass: "later" means accepted after the withdrawal committed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.contracts import Violation
from services.messaging.intake_tables import consent_withdrawal

if TYPE_CHECKING:
    from services.messaging.intake import IntakeEntry

WITHDRAWN_RULE = "consent-withdrawn"
WITHDRAWN_MESSAGE = "the patient withdrew consent for this stay: nothing more of it is sent"


def stay_key(key: str, source: str, stay_id: str) -> str:
    """Keyed, stable pseudonym of a source's stay: hex HMAC-SHA256, 32 characters."""
    digest = hmac.new(key.encode(), f"stay:{source}:{stay_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def withdrawn_violation(path: str) -> Violation:
    return Violation(path, WITHDRAWN_RULE, WITHDRAWN_MESSAGE)


def refused_for_withdrawal(entry: IntakeEntry, withdrawn: Collection[str]) -> bool:
    """Whether ``entry`` is a new document of a stay among ``withdrawn`` (a withdrawal of
    it again is not: the receivers may be told twice, nothing more of the stay is sent)."""
    return entry.stay is not None and not entry.withdraws and entry.stay in withdrawn


async def withdrawn_stays(
    sessions: async_sessionmaker[AsyncSession], entries: Sequence[IntakeEntry]
) -> set[str]:
    async with sessions() as session:
        return await stored_withdrawals(session, entries)


async def stored_withdrawals(session: AsyncSession, entries: Sequence[IntakeEntry]) -> set[str]:
    """The stays of ``entries`` withdrawn before: one SELECT, none when no entry names one."""
    stays = {e.stay for e in entries if e.stay is not None}
    if not stays:
        return set()
    found = await session.execute(
        select(consent_withdrawal.c.stay).where(consent_withdrawal.c.stay.in_(sorted(stays)))
    )
    return {str(row.stay) for row in found}


async def record_withdrawals(
    session: AsyncSession, entries: Sequence[IntakeEntry], stored: Collection[str] | None = None
) -> None:
    """Store the stays that ``entries`` (new intake records) withdraw, in ``session``'s
    transaction; a stay withdrawn before (``stored``, or looked up when None) or twice in
    ``entries`` is kept as it was."""
    rows: dict[str, dict[str, object]] = {}
    for entry in entries:
        if entry.withdraws and entry.stay is not None and entry.stay not in rows:
            rows[entry.stay] = dict(
                stay=entry.stay,
                source_system=entry.key.source,
                message_id=entry.message_id,
                withdrawn_at=entry.received_at,
            )
    if not rows:
        return
    if stored is None:
        stored = await stored_withdrawals(session, entries)
    for stay in stored:
        rows.pop(stay, None)
    if rows:
        await session.execute(consent_withdrawal.insert(), list(rows.values()))
