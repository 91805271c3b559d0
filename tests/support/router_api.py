"""The router API's ops token, a valid subscription body, and the number of subscriptions stored."""

from __future__ import annotations

from sqlalchemy import func, select

from services.router.routing.tables import subscription
from services.router.subscriptions.endpoints import FakeResolver

TOKEN = {"authorization": "Bearer sandbox-ops-token"}


SUBSCRIPTION = {
    "name": "Regionens kommunikationsplattform",
    "criteria": {"events": ["admission-notice"]},
    "channel": {"type": "rest-hook", "endpoint": "https://platform.example.se/hooks/cb"},
    "secret": "platform-secret-0123456789",
}


async def _subscriptions(sessions) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(subscription)) or 0)


PLATFORM_ADDRESS = "93.184.215.14"  # a public address: what platform.example.se resolves to


def platform_resolver() -> FakeResolver:
    """Resolves the test subscriptions' host to a public address, and nothing else: a unit
    test never asks DNS."""
    return FakeResolver.of({"platform.example.se": [PLATFORM_ADDRESS]})
