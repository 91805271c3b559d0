"""A service's start-up refusals (:mod:`services.messaging.fail_closed`), said plainly.

:func:`settings_or_exit` reads a service's settings, or prints every setting at fault and
exits 2: never a traceback, never a value (the settings hide their input in errors).
:func:`rows_in_clear` is the check a service makes once its database is open: outside the
sandbox it refuses payload rows left in clear (:mod:`services.messaging.sealing`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import sealing
from services.messaging.fail_closed import StartupRefused
from services.messaging.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def settings_or_exit(cls: type[S], *, err: TextIO | None = None) -> S:
    """``cls()``, or the refusals on ``err`` (standard error) and ``SystemExit(2)``."""
    try:
        return cls()
    except ValidationError as exc:
        refused = StartupRefused(cls.SERVICE, refusals(cls, exc))
        print(refused, file=err or sys.stderr, flush=True)
        raise SystemExit(2) from None


def refusals(cls: type[ServiceSettings], exc: ValidationError) -> list[str]:
    """One line per setting at fault, each naming its environment variable."""
    lines: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        cause: Any = (error.get("ctx") or {}).get("error")
        if isinstance(cause, StartupRefused):
            lines += cause.refusals
            continue
        message = error["msg"].removeprefix("Value error, ")
        name = cls.env(str(error["loc"][0])) if error["loc"] else ""
        lines.append(f"{name}: {message}" if name and name not in message else message)
    return lines


async def rows_in_clear(
    settings: ServiceSettings,
    sessions: async_sessionmaker[AsyncSession],
    columns: Sequence[sealing.SealedColumn],
) -> StartupRefused | None:
    """Outside the sandbox: a refusal if the database holds a payload row in clear."""
    if settings.in_sandbox:
        return None
    async with sessions() as session:
        labels = await sealing.unsealed_columns(session, columns)
    if not labels:
        return None
    database = settings.env("database_url")
    return StartupRefused(settings.SERVICE, [sealing.refusal(database, settings.SERVICE, labels)])
