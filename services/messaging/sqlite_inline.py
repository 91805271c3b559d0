"""SQLite for SQLAlchemy's asyncio engine, without aiosqlite's worker thread.

aiosqlite runs every call on a thread of its own: each statement is queued to it, and its
result comes back through ``call_soon_threadsafe``, two thread hand-offs and an event-loop
wake-up for work that takes SQLite microseconds. Profiles of the broker under load showed
that hand-off (``SimpleQueue.put_nowait`` fighting for the GIL, the loop's self-pipe) as the
largest single cost in the router and the adapters.

:class:`InlineConnection` keeps aiosqlite's interface, which SQLAlchemy's ``aiosqlite``
dialect drives, but runs each call at once on the caller's thread. That blocks the event
loop for as long as SQLite works, which is fine under the embedded default's rules:

- one process per database file, one connection per process (``make_engine``), so SQLite
  never waits for a lock held by another connection of ours;
- WAL with ``synchronous=NORMAL``: a commit does not wait for the disk.

A second process writing the same file (an operator's CLI command) can make a statement wait
for SQLite's busy handler; it waits on the loop, for as long as that command's transaction
lasts. Production runs on PostgreSQL (asyncpg), where none of this applies.

It relies on two private methods of aiosqlite 0.22 (``_execute``, ``_connect``);
``pyproject.toml`` pins that series and ``tests/unit/test_sqlite_inline.py`` checks it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its worker thread, which SQLAlchemy's dialect also
    uses directly (to set ``isolation_level``): the call runs as it is queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the caller's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:  # no worker thread to start
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def creator(database: str, *, timeout: float) -> Callable[[], Awaitable[InlineConnection]]:
    """``create_async_engine(async_creator=…)``: a new :class:`InlineConnection` to
    ``database``, with ``timeout`` seconds for SQLite's busy handler."""

    async def connect() -> InlineConnection:
        def connector() -> sqlite3.Connection:
            return sqlite3.connect(database, timeout=timeout, check_same_thread=False)

        return await InlineConnection(connector, 64)._connect()

    return connect
