"""Adapters built as in production (SQL store on a real, migrated database) for attacking."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_takecare.app import OWNER as TAKECARE_OWNER
from services.adapter_takecare.app import create_app as create_takecare
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.app import OWNER as TRESERVA_OWNER
from services.adapter_treserva.app import create_app as create_treserva
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.intake_tables import intake_record
from services.messaging.outbox import outbox
from tests.support.adapters import ADMISSION, NOW
from tests.support.pki import Pki, _ca, _leaf, _write

TRESERVA_LIST = Path(
    "contracts/fixtures/treserva/medication-list/hemsjukvard-samordningsnummer-dst.input.json"
)


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
            store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
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
        store=GroupedIntakeStore(sessions, TRESERVA_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tr"
    ) as client:
        yield client


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _ca("carebridge test CA")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = _write(d / "server", *_leaf("127.0.0.1", ca_key, ca, server=True))
    client = _write(d / "client", *_leaf("takecare", ca_key, ca, server=False))
    other_key, other = _ca("someone else's CA")
    stranger = _write(d / "stranger", *_leaf("takecare", other_key, other, server=False))
    return Pki(
        ca=d / "ca.pem",
        server_cert=server,
        server_key=server.with_suffix(".key"),
        client_cert=client,
        client_key=client.with_suffix(".key"),
        stranger_cert=stranger,
        stranger_key=stranger.with_suffix(".key"),
    )
