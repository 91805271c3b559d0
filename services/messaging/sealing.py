"""Rows left in clear at rest: payloads (and subscription secrets) written before the broker
sealed them (:mod:`services.messaging.payload_crypto`).

Outside the sandbox a service refuses to start while its database holds one
(:func:`unsealed_columns`, naming each column and the command that seals them); ``python -m
services.seal_payloads <service>`` seals them in place (:func:`seal_batch`), with the
service's own settings, while the service is stopped.

The check runs at every start, so it must not read every payload: each large column has a
partial index of its rows in clear (migration 0027), whose predicate is
:func:`unsealed_where`'s text. A query that repeats that text word for word reads the index
(SQLite matches a partial index's terms literally, so no bound parameters in it): the check
costs the same on ten rows as on ten million, and the index stays empty once all is sealed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.payload_crypto import PREFIX, Keyring

SEAL_COMMAND = "python -m services.seal_payloads"


def unsealed_where(column: str, *, markers: Sequence[str] = ()) -> str:
    """SQL text: ``column`` holds a value in clear, neither sealed (``enc:v1:…``) nor one of
    ``markers`` (such as a pruned payload's ``pruned:v1:…``). NULL is not in clear."""
    prefixes = (PREFIX, *markers)
    for prefix in prefixes:  # spliced into SQL: only these characters, no LIKE wildcards
        if not re.fullmatch(r"[a-z0-9:]+", prefix):
            raise ValueError(f"not a marker prefix: {prefix!r}")
    return " AND ".join(f"{column} NOT LIKE '{prefix}%'" for prefix in prefixes)


@dataclass(frozen=True)
class SealedColumn:
    """A column sealed at rest: where its rows in clear are, and what each row's value is
    bound to (the associated data it is sealed with)."""

    label: str  # "message.payload": what a refusal names
    table: Table  # with an ``id`` primary key
    column: str
    unsealed: str  # unsealed_where(column, …): the partial index's predicate, if it has one
    bound_to: Callable[[Any], str]  # a row → its associated data
    scope: ColumnElement[bool] | None = None  # the rows that are this service's

    def in_clear(self) -> ColumnElement[bool]:
        found: ColumnElement[bool] = and_(text(self.unsealed))
        return found if self.scope is None else and_(self.scope, found)

    def probe(self) -> Select[Any]:
        """Whether a value is in clear: one probe of the partial index, never a scan."""
        return select(literal(1)).select_from(self.table).where(self.in_clear()).limit(1)


async def unsealed_columns(session: AsyncSession, columns: Sequence[SealedColumn]) -> list[str]:
    """The labels of the columns that hold a value in clear (one index probe each)."""
    found = []
    for column in columns:
        if await session.scalar(column.probe()) is not None:
            found.append(column.label)
    return found


async def seal_batch(
    session: AsyncSession, keyring: Keyring, column: SealedColumn, *, limit: int = 500
) -> int:
    """Seal up to ``limit`` values in clear under the keyring's current key; how many were.
    A row changed since it was read is left as it now is (the next batch sees it again)."""
    table, name = column.table, column.column
    rows = (await session.execute(select(table).where(column.in_clear()).limit(limit))).all()
    for row in rows:
        stored = getattr(row, name)
        await session.execute(
            update(table)
            .where(table.c.id == row.id, table.c[name] == stored)
            .values({name: keyring.seal(stored, message_id=column.bound_to(row))})
        )
    return len(rows)


def refusal(database_setting: str, service: str, labels: Sequence[str]) -> str:
    """The start-up refusal for rows in clear in ``labels``."""
    return (
        f"{database_setting}: the database holds payload rows in clear ({', '.join(labels)}); "
        f"stop the service and seal them with `{SEAL_COMMAND} {service}` (the service's own "
        "settings, PAYLOAD_KEYS included), then start it again"
    )
