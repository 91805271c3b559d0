"""Subscriptions in SQL: load the active ones for routing, keep the catalogue's rows in step
with the family catalogue, and the reads and writes of the subscription API.

Every function takes an open session; the caller owns the transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import store_keyring
from services.messaging.payload_crypto import PayloadCryptoError, key_id_of
from services.router.routing.tables import subscription
from services.router.subscriptions.matching import (
    CATALOGUE,
    ChannelType,
    Criteria,
    Subscription,
    SubscriptionStatus,
    delivery_order,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """What the webhook sender needs of one subscription, secret included."""

    id: str
    endpoint: str
    secret: str | None
    channel_type: ChannelType
    status: SubscriptionStatus
    secret_unreadable: bool = False  # sealed under a key no longer in ROUTER_PAYLOAD_KEYS

    @property
    def deliverable(self) -> bool:
        return (
            self.status is SubscriptionStatus.ACTIVE
            and self.channel_type is ChannelType.REST_HOOK
            and bool(self.secret)
        )


def _from_row(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        criteria=Criteria.from_json(row.criteria),
        channel_type=ChannelType(row.channel_type),
        endpoint=row.endpoint,
        status=SubscriptionStatus(row.status),
        managed_by=row.managed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        activated_by=row.activated_by,
    )


_PUBLIC = [c for c in subscription.c if c.name != "secret"]


async def load_active(session: AsyncSession) -> list[Subscription]:
    """Active subscriptions in :func:`delivery_order` (the order deliveries are made in)."""
    rows = (
        await session.execute(
            select(*_PUBLIC).where(subscription.c.status == SubscriptionStatus.ACTIVE.value)
        )
    ).all()
    return sorted((_from_row(r) for r in rows), key=delivery_order)


async def list_all(session: AsyncSession) -> list[Subscription]:
    rows = (
        await session.execute(
            select(*_PUBLIC).order_by(subscription.c.created_at, subscription.c.id)
        )
    ).all()
    return [_from_row(r) for r in rows]


async def get(session: AsyncSession, subscription_id: str) -> Subscription | None:
    row = (
        await session.execute(select(*_PUBLIC).where(subscription.c.id == subscription_id))
    ).first()
    return None if row is None else _from_row(row)


async def webhook_target(session: AsyncSession, subscription_id: str) -> WebhookTarget | None:
    row = (
        await session.execute(
            select(
                subscription.c.id,
                subscription.c.endpoint,
                subscription.c.secret,
                subscription.c.channel_type,
                subscription.c.status,
            ).where(subscription.c.id == subscription_id)
        )
    ).first()
    if row is None:
        return None
    secret, unreadable = None, False
    if row.secret is not None:
        try:
            secret = open_secret(session, row.id, row.secret)
        except PayloadCryptoError as exc:
            unreadable = True
            log.error(
                "subscription secret does not open",
                extra={
                    "subscription": row.id,
                    "key_id": key_id_of(row.secret),
                    "error": type(exc).__name__,
                },
            )
    return WebhookTarget(
        row.id,
        row.endpoint,
        secret,
        ChannelType(row.channel_type),
        SubscriptionStatus(row.status),
        secret_unreadable=unreadable,
    )


def seal_secret(session: AsyncSession, subscription_id: str, secret: str) -> str:
    """The secret as stored: sealed with the store's keyring, bound to the subscription id
    (a sealed secret copied to another subscription does not open)."""
    return store_keyring(session).seal(secret, message_id=subscription_id)


def open_secret(session: AsyncSession, subscription_id: str, stored: str) -> str:
    """The secret of a stored value; a plain value (written before sealing) as it is."""
    return store_keyring(session).open(stored, message_id=subscription_id)


def new_id() -> str:
    return f"sub-{secrets.token_hex(8)}"


async def create_rest_hook(
    session: AsyncSession,
    *,
    name: str,
    criteria: Criteria,
    endpoint: str,
    secret: str,
    created_by: str,
    now: datetime,
) -> Subscription:
    """A new rest-hook subscription, ``pending``: it receives nothing until a different
    admin activates it (:func:`activate`)."""
    created = Subscription(
        id=new_id(),
        name=name,
        criteria=criteria,
        channel_type=ChannelType.REST_HOOK,
        endpoint=endpoint,
        status=SubscriptionStatus.PENDING,
        created_at=now,
        updated_at=now,
        created_by=created_by,
    )
    await session.execute(
        subscription.insert().values(
            id=created.id,
            name=name,
            criteria=criteria.to_json(),
            channel_type=created.channel_type.value,
            endpoint=endpoint,
            secret=seal_secret(session, created.id, secret),
            status=created.status.value,
            managed_by=None,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
    )
    log.info("subscription created", extra={"subscription": created.id})
    return created


async def activate(
    session: AsyncSession, subscription_id: str, activated_by: str, now: datetime
) -> bool:
    """``pending`` → ``active``, naming the second admin; False if it was not pending (a
    concurrent activation got there first) or ``activated_by`` is the admin who created it
    (the two-admin rule holds here, whoever calls; the API answers that case with its own
    403 first)."""
    result = await session.execute(
        update(subscription)
        .where(
            subscription.c.id == subscription_id,
            subscription.c.status == SubscriptionStatus.PENDING.value,
            subscription.c.created_by.is_not(None),
            subscription.c.created_by != activated_by,
        )
        .values(status=SubscriptionStatus.ACTIVE.value, activated_by=activated_by, updated_at=now)
    )
    done = bool(getattr(result, "rowcount", 0))
    if done:
        log.info("subscription activated", extra={"subscription": subscription_id})
    return done


async def set_status(
    session: AsyncSession, subscription_id: str, status: SubscriptionStatus, now: datetime
) -> None:
    await session.execute(
        update(subscription)
        .where(subscription.c.id == subscription_id, subscription.c.status != status.value)
        .values(status=status.value, updated_at=now)
    )
    log.info(
        "subscription status set",
        extra={"subscription": subscription_id, "status": status.value},
    )


def _insert_ignoring_conflict(session: AsyncSession, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: another router replica may be starting too."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(subscription).values(**values).on_conflict_do_nothing(index_elements=["id"])


async def sync_catalogue(
    session: AsyncSession, wanted: Sequence[Subscription], now: datetime
) -> int:
    """Make the catalogue-managed rows equal ``wanted``: insert missing ones, update changed
    ones, switch off those the catalogue no longer has. Returns how many rows changed."""
    existing = {
        row.id: row
        for row in (
            await session.execute(
                select(subscription).where(
                    subscription.c.id.in_([w.id for w in wanted])
                    | (subscription.c.managed_by == CATALOGUE)
                )
            )
        ).all()
    }
    changed = 0
    for want in wanted:
        values = {
            "name": want.name,
            "criteria": want.criteria.to_json(),
            "channel_type": want.channel_type.value,
            "endpoint": want.endpoint,
            "secret": None,
            "status": SubscriptionStatus.ACTIVE.value,
            "managed_by": CATALOGUE,
        }
        row = existing.get(want.id)
        if row is None:
            await session.execute(
                _insert_ignoring_conflict(
                    session, {"id": want.id, **values, "created_at": now, "updated_at": now}
                )
            )
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            await session.execute(
                update(subscription)
                .where(subscription.c.id == want.id)
                .values(**values, updated_at=now)
            )
            changed += 1
    gone = [
        row.id
        for row in existing.values()
        if row.managed_by == CATALOGUE
        and row.id not in {w.id for w in wanted}
        and row.status != SubscriptionStatus.OFF.value
    ]
    if gone:
        await session.execute(
            update(subscription)
            .where(subscription.c.id.in_(gone))
            .values(status=SubscriptionStatus.OFF.value, updated_at=now)
        )
        changed += len(gone)
    if changed:
        log.info("catalogue subscriptions written", extra={"changed": changed})
    return changed
