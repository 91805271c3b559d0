"""Adapters built as in production (SQL store on a real, migrated database) for attacking."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_takecare.app import OWNER as TAKECARE_OWNER
from services.adapter_takecare.app import create_app as create_takecare
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.app import OWNER as TRESERVA_OWNER
from services.adapter_treserva.app import create_app as create_treserva
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.intake import SqlIntakeStore
from services.messaging.intake_tables import intake_record
from services.messaging.outbox import outbox

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TAKECARE_KEY = "sandbox-takecare-key"
TRESERVA_KEY = "sandbox-treserva-key"
ADMISSION = Path("contracts/fixtures/takecare/admission-notice/personnummer-full.input.json")
TRESERVA_LIST = Path(
    "contracts/fixtures/treserva/medication-list/hemsjukvard-samordningsnummer-dst.input.json"
)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def admission() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(ADMISSION.read_text(encoding="utf-8"))
    return document


@pytest.fixture
def treserva_list() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(TRESERVA_LIST.read_text(encoding="utf-8"))
    return document


@pytest.fixture
def stored(sessions: async_sessionmaker[AsyncSession]) -> Callable[[], Any]:
    """How many intake records and outbox rows the database holds."""

    async def count() -> tuple[int, int]:
        async with sessions() as s:
            records = await s.scalar(select(func.count()).select_from(intake_record))
            rows = await s.scalar(select(func.count()).select_from(outbox))
        return int(records or 0), int(rows or 0)

    return count


@pytest.fixture
async def takecare_app(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """``make(**settings)`` → a client of adapter_takecare with those settings."""
    clients: list[httpx.AsyncClient] = []

    def make(**overrides: Any) -> httpx.AsyncClient:
        app = create_takecare(
            AdapterTakeCareSettings(**overrides),
            store=SqlIntakeStore(sessions, TAKECARE_OWNER),
            sessions=sessions,
            clock=lambda: NOW,
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tc")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def takecare(takecare_app: Callable[..., httpx.AsyncClient]) -> httpx.AsyncClient:
    return takecare_app()


@pytest.fixture
async def treserva(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_treserva(
        AdapterTreservaSettings(),
        store=SqlIntakeStore(sessions, TRESERVA_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tr"
    ) as client:
        yield client
