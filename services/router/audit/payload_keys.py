"""Key rotation for payloads at rest: re-seal every stored payload that is plaintext (written
before encryption) or sealed under an older key, under the keyring's current key, in
batches walked by message id (keyset), each batch its own transaction. A pruned payload is
left alone. Subscription secrets (sealed with the subscription id as associated data) are
re-sealed by the first batch (they are few). Once nothing remains, the old key may leave
``ROUTER_PAYLOAD_KEYS``; the outbox holds rows under it for the re-publish window
(``count_stale_outbox``).

The CLI's ``rotate-payload-keys`` drives it through ``POST /api/v1/payload-keys/rotate``
with a progress bar; see docs/security.md, Payloads at rest and key rotation.
:data:`SEALED_COLUMNS` are what the router holds sealed, for the start-up check of rows in
clear (services.messaging.sealing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.outbox import outbox, sealed_column
from services.messaging.payload_crypto import PREFIX, Keyring
from services.messaging.sealing import SealedColumn
from services.router.routing.deliveries import OUTBOX_OWNER
from services.router.routing.tables import (
    MESSAGE_UNSEALED,
    PRUNED_PREFIX,
    SUBSCRIPTION_UNSEALED,
    message,
    subscription,
)


def _row_id(row: Any) -> str:
    return str(row.id)  # a payload and a subscription secret are bound to their row's id


SEALED_COLUMNS = (
    SealedColumn("message.payload", message, "payload", MESSAGE_UNSEALED, _row_id),
    SealedColumn("subscription.secret", subscription, "secret", SUBSCRIPTION_UNSEALED, _row_id),
    sealed_column(OUTBOX_OWNER),
)


def _stale(keyring: Keyring) -> ColumnElement[bool]:
    current = message.c.payload.startswith(f"{PREFIX}{keyring.current}:")
    return ~current & ~message.c.payload.startswith(PRUNED_PREFIX)


def _stale_secret(keyring: Keyring) -> ColumnElement[bool]:
    return subscription.c.secret.is_not(None) & ~subscription.c.secret.startswith(
        f"{PREFIX}{keyring.current}:"
    )


async def count_stale(session: AsyncSession, keyring: Keyring) -> int:
    """Payloads and subscription secrets not yet under the current key (the progress
    bar's total)."""
    query = select(func.count()).select_from(message).where(_stale(keyring))
    secrets = select(func.count()).select_from(subscription).where(_stale_secret(keyring))
    return int(await session.scalar(query) or 0) + int(await session.scalar(secrets) or 0)


async def count_stale_outbox(session: AsyncSession, keyring: Keyring, owner: str) -> int:
    """The owner's outbox rows not under the current key: they are kept (and may be
    re-published) for the replay window, so the old key stays in the ring until this is 0."""
    query = (
        select(func.count())
        .select_from(outbox)
        .where(outbox.c.owner == owner, ~outbox.c.payload.startswith(f"{PREFIX}{keyring.current}:"))
    )
    return int(await session.scalar(query) or 0)


async def reseal_secrets(session: AsyncSession, keyring: Keyring) -> int:
    """Re-seal every subscription secret that is plain or under an older key."""
    rows = (
        await session.execute(
            select(subscription.c.id, subscription.c.secret)
            .where(_stale_secret(keyring))
            .with_for_update(skip_locked=True)
        )
    ).all()
    await _reseal(session, keyring, subscription.c.secret, [(r.id, r.secret) for r in rows])
    return len(rows)


async def _reseal(
    session: AsyncSession, keyring: Keyring, column: Column[Any], rows: list[tuple[str, str]]
) -> None:
    """Seal each (id, stored value) of ``column`` again under the current key, bound to its
    row's id; a row changed since it was read is left as it now is."""
    table = column.table
    for row_id, stored in rows:
        plain = keyring.open(stored, message_id=row_id)
        await session.execute(
            update(table)
            .where(table.c.id == row_id, column == stored)
            .values({column.name: keyring.seal(plain, message_id=row_id)})
        )


@dataclass(frozen=True, slots=True)
class ResealBatch:
    resealed: int
    last_id: str | None  # pass back as ``after``; None: nothing was left after the cursor


async def reseal_batch(
    session: AsyncSession, keyring: Keyring, *, after: str = "", limit: int = 200
) -> ResealBatch:
    """Re-seal up to ``limit`` stale payloads with ids after ``after``, under the current key.
    A payload that does not open (an unknown key) raises: rotation stops loudly. The first
    batch (``after`` empty) re-seals the subscription secrets too."""
    secrets = await reseal_secrets(session, keyring) if not after else 0
    rows = (
        await session.execute(
            select(message.c.id, message.c.payload)
            .where(message.c.id > after, _stale(keyring))
            .order_by(message.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    await _reseal(session, keyring, message.c.payload, [(r.id, r.payload) for r in rows])
    return ResealBatch(len(rows) + secrets, rows[-1].id if rows else None)
